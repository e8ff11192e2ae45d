"""Agents and their tokens: creating, listing, deactivating. Owns its transactions."""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import cache

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import Agent
from app.models import agents as agent_models
from app.models.agents import ROLES
from app.services.errors import Conflict, DomainError, Invalid, NotFound
from app.services.tokens import issue_token, revoke_tokens

# What the agent functions raise (the CLI catches it): every domain error, each with its code —
# invalid_email, invalid_name, invalid_role, password_too_short, email_taken, agent_not_found,
# last_admin.
AgentError = DomainError

PASSWORD_MIN_CHARS = 10


def _password_too_short() -> Invalid:
    return Invalid(
        f"The password must have at least {PASSWORD_MIN_CHARS} characters.",
        field="password",
        code="password_too_short",
    )


def _invalid_role() -> Invalid:
    return Invalid(f"role must be one of {', '.join(ROLES)}.", field="role", code="invalid_role")


def find_agent(email: str) -> Agent | None:
    if "\x00" in email:  # PostgreSQL refuses NUL in text; no address has one
        return None
    return db.session.execute(select(Agent).where(func.lower(Agent.email) == email.strip().lower())).scalar()


def create_agent(email: str, name: str, password: str, role: str = "agent") -> Agent:
    email = email.strip()
    if "@" not in email or "\x00" in email or len(email) > 254:
        raise Invalid(f"{email!r} is not an email address.", field="email", code="invalid_email")
    if "\x00" in name:
        raise Invalid("The name must not contain NUL characters.", field="name", code="invalid_name")
    if role not in ROLES:
        raise _invalid_role()
    if len(password) < PASSWORD_MIN_CHARS:
        raise _password_too_short()
    if find_agent(email) is not None:
        raise Conflict(f"An agent with the email {email} already exists.", code="email_taken")
    agent = Agent(email=email, name=name.strip() or email, role=role, active=True)
    agent.set_password(password)
    db.session.add(agent)
    db.session.commit()
    return agent


def ensure_first_admin() -> tuple[Agent, str] | None:
    """Create an admin when there is no agent at all; returns it with its one-time password."""
    if db.session.execute(select(Agent.id).limit(1)).first() is not None:
        return None
    password = secrets.token_urlsafe(12)
    return create_agent("admin@example.com", "Admin", password, role="admin"), password


def create_token(email: str, name: str = "", ttl_days: int | None = None) -> str:
    agent = find_agent(email)
    if agent is None or not agent.active:
        raise NotFound(f"No active agent with the email {email}.", code="agent_not_found")
    token = issue_token(db.session, agent, name=name, ttl=timedelta(days=ttl_days) if ttl_days else None)
    db.session.commit()
    return token


def list_agents() -> list[Agent]:
    return list(db.session.execute(select(Agent).order_by(Agent.id)).scalars())


def deactivate_agent(email: str) -> Agent:
    agent = find_agent(email)
    if agent is None:
        raise NotFound(f"No agent with the email {email}.", code="agent_not_found")
    agent.active = False
    agent.end_sessions()
    revoke_tokens(db.session, agent)
    db.session.commit()
    return agent


@cache
def _dummy_password_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16), method=agent_models.PASSWORD_HASH_METHOD)


def authenticate(email: str, password: str) -> Agent | None:
    """The active agent with this email and password, or None (same answer for every failure).

    One password hash is checked on every path, a dummy one of the same algorithm and cost for
    an unknown email: a failure takes as long whether the address has an account or not.
    """
    agent = find_agent(email)
    password_hash = agent.password_hash if agent is not None else _dummy_password_hash()
    if not check_password_hash(password_hash, password) or agent is None or not agent.active:
        return None
    return agent


# --- administration from the admin page ---------------------------------------------------


def get_agent(agent_id: int) -> Agent | None:
    return db.session.get(Agent, agent_id)


def _other_active_admins(agent: Agent) -> int:
    return db.session.execute(
        select(func.count())
        .select_from(Agent)
        .where(Agent.role == "admin", Agent.active.is_(True), Agent.id != agent.id)
    ).scalar_one()


def set_role(agent: Agent, role: str) -> Agent:
    """Change an agent's role; the last active admin cannot stop being one."""
    if role not in ROLES:
        raise _invalid_role()
    if agent.role == "admin" and role != "admin" and agent.active and _other_active_admins(agent) == 0:
        raise Conflict("The last active admin cannot stop being an admin.", code="last_admin")
    agent.role = role
    agent.end_sessions()
    db.session.commit()
    return agent


def set_active(agent: Agent, active: bool) -> Agent:
    """Deactivate (tokens revoked, sessions end on their next request) or reactivate an agent."""
    if not active and agent.role == "admin" and agent.active and _other_active_admins(agent) == 0:
        raise Conflict("The last active admin cannot be deactivated.", code="last_admin")
    agent.active = active
    agent.end_sessions()
    if not active:
        revoke_tokens(db.session, agent)
    db.session.commit()
    return agent


def reset_password(agent: Agent, password: str | None = None) -> str:
    """Set a new password (a generated one when none is given); returns it to be shown once."""
    password = password or secrets.token_urlsafe(12)
    if len(password) < PASSWORD_MIN_CHARS:
        raise _password_too_short()
    agent.set_password(password)
    revoke_tokens(db.session, agent)
    db.session.commit()
    return password

"""API tokens: created for an agent, stored hashed, checked on every API request; and the one
reading of an `Authorization: Bearer` header (the API guard, the rate limits and /metrics)."""

from __future__ import annotations

import functools
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Select, bindparam, or_, select, update

from app.extensions import DbSession
from app.models import Agent, ApiToken
from app.models.agents import hash_token

TOKEN_PREFIX = "wai_"


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (the scheme in any case, spaces
    around the token ignored), or None when the header is not that. The API guard and the rate
    limits both read the header through this, so they agree on what one token is."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def issue_token(session: DbSession, agent: Agent, name: str = "", ttl: timedelta | None = None) -> str:
    """Create a token for `agent`; returns the clear token (shown once, never stored)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + ttl if ttl else None
    session.add(ApiToken(agent_id=agent.id, token_hash=hash_token(token), name=name, expires_at=expires_at))
    return token


@functools.cache
def _token_lookup() -> Select[Agent]:
    """Built once (it runs on every API request); the hash and the time are bound per call."""
    return (
        select(Agent)
        .join(ApiToken, ApiToken.agent_id == Agent.id)
        .where(
            ApiToken.token_hash == bindparam("token_hash"),
            ApiToken.revoked_at.is_(None),
            or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > bindparam("now")),
            Agent.active.is_(True),
        )
    )


def agent_for_token(session: DbSession, token: str) -> Agent | None:
    """The active agent owning an unrevoked, unexpired token, in one statement."""
    return session.execute(
        _token_lookup(), {"token_hash": hash_token(token), "now": datetime.now(UTC)}
    ).scalar_one_or_none()


def revoke_tokens(session: DbSession, agent: Agent) -> int:
    result = cast(
        "CursorResult[Any]",
        session.execute(
            update(ApiToken)
            .where(ApiToken.agent_id == agent.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        ),
    )
    return result.rowcount or 0

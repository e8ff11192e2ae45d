"""Agents (the people answering) and their API tokens."""

from __future__ import annotations

import hashlib
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import Model

ROLES = ("admin", "agent")
# Which new customer messages the browser notifies an agent of: those in conversations assigned
# to them or to nobody, or in every conversation.
NOTIFY_SCOPES = ("mine_and_unassigned", "all")
# Werkzeug's default (scrypt, about 0.1 s of CPU per hash or check: the point). The tests set a
# cheap one: they hash and check passwords hundreds of times, and a stored hash names its method.
PASSWORD_HASH_METHOD = "scrypt"


class Agent(UserMixin, Model):
    __tablename__ = "agents"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'agent')", name="role"),
        # Emails are unique regardless of case.
        Index("uq_agents_email_lower", sql_text("lower(email)"), unique=True),
        CheckConstraint("language IS NULL OR language IN ('es', 'en')", name="language"),
        CheckConstraint("notify_scope IN ('mine_and_unassigned', 'all')", name="notify_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16), default="agent", server_default="agent")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Put into the session cookie at login and compared on every request (app/auth/sessions.py):
    # bumping it ends every session of the agent at once, wherever its cookie is.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The agent's preferences (app/i18n.py reads the first two; NULL follows the browser).
    language: Mapped[str | None] = mapped_column(String(8))
    time_zone: Mapped[str | None] = mapped_column(Text)
    notify_desktop: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    notify_sound: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    notify_scope: Mapped[str] = mapped_column(
        String(24), default="mine_and_unassigned", server_default="mine_and_unassigned"
    )

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="agent", lazy="raise")

    def set_password(self, password: str) -> None:
        """A new password also ends every session opened with the old one."""
        self.password_hash = generate_password_hash(password, method=PASSWORD_HASH_METHOD)
        self.end_sessions()

    def end_sessions(self) -> None:
        """Every session cookie issued to this agent so far stops working (committed by the caller)."""
        self.session_generation = (self.session_generation or 0) + 1

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_active(self) -> bool:  # Flask-Login: inactive agents cannot log in
        return self.active


def hash_token(token: str) -> str:
    """Tokens are stored as SHA-256 digests; the clear token is shown once at creation."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ApiToken(Model):
    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_agent_id", "agent_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    agent: Mapped[Agent] = relationship(back_populates="tokens", lazy="raise")

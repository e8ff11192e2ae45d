"""Mentions: an agent named with `@` in a private note (app/whatsapp/mentions.py finds them)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, UniqueConstraint, func
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model


class Mention(Model):
    """One agent mentioned in one note, recorded in the note's own transaction; `read_at` is set
    when that agent marks it read."""

    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("message_id", "agent_id"),
        # An agent's list (unread first, newest first) and their unread count.
        Index("ix_mentions_agent", "agent_id", sql_text("id DESC")),
        Index("ix_mentions_agent_unread", "agent_id", "id", postgresql_where=sql_text("read_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("messages.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

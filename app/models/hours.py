"""Business hours (one settings row) and the automatic replies owed to customers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model

AUTO_REPLY_KINDS = ("away", "greeting")
# pending: owed (a job sends it; the sweep queues it when no job is alive); sending: claimed, its
# message stored (never sent again, whatever happens next); sent: Graph accepted it; failed:
# Graph refused it (the message keeps Meta's error); skipped: no longer worth sending (the
# 24-hour window closed, an agent answered first, the setting was switched off).
AUTO_REPLY_STATES = ("pending", "sending", "sent", "failed", "skipped")


class BusinessHours(Model):
    """The one row of settings (`id = 1`): the schedule in the API's shape (parsed by
    app/whatsapp/business_hours.py), the away message and the optional greeting."""

    __tablename__ = "business_hours"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time_zone: Mapped[str] = mapped_column(Text)
    week: Mapped[dict[str, Any]] = mapped_column(JSONB)
    holidays: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default=sql_text("'[]'::jsonb"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    away_message: Mapped[str] = mapped_column(Text, default="", server_default="")
    greeting_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    greeting_message: Mapped[str] = mapped_column(Text, default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))


class AutoReply(Model):
    """An automatic reply owed to a conversation, recorded in the transaction that stored the
    customer's message. UNIQUE (conversation, kind, period_start) makes it once per closed
    period (a greeting's period is the epoch: once ever)."""

    __tablename__ = "auto_replies"
    __table_args__ = (
        UniqueConstraint("conversation_id", "kind", "period_start"),
        CheckConstraint("kind IN ('away', 'greeting')", name="kind"),
        CheckConstraint("state IN ('pending', 'sending', 'sent', 'failed', 'skipped')", name="state"),
        # The sweep's work list.
        Index("ix_auto_replies_pending", "id", postgresql_where=sql_text("state = 'pending'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The customer's message that made it owed, and the outbound message that answered it.
    message_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("messages.id", ondelete="SET NULL"))
    reply_message_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("messages.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

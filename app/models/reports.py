"""The facts the reports read, recorded when they happen (app/services/report_facts.py) so a
report never scans the messages: what happened to a conversation (`conversation_events`) and
how many messages and events each hour saw (`report_hours`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model

# opened: the conversation's first message; reopened: resolved → open or pending (a customer's
# message or an agent); resolved: → resolved (`seconds` since it was opened or reopened);
# first_response: the team's first reply to a waiting customer (`seconds` wall-clock and
# `business_seconds` within business hours since the customer's first unanswered message).
EVENT_KINDS = ("opened", "reopened", "resolved", "first_response")
# What the hour counters count: visible messages by direction, and the events by kind.
HOUR_METRICS = ("in", "out", *EVENT_KINDS)
# The hour counters are split in this many rows per hour and metric (by conversation id), so
# concurrent deliveries of different conversations do not queue on one counter row.
HOUR_SHARDS = 4


class ConversationEvent(Model):
    __tablename__ = "conversation_events"
    __table_args__ = (
        CheckConstraint("kind IN ('opened', 'reopened', 'resolved', 'first_response')", name="kind"),
        # The report's range scans, one kind at a time, reading only the index.
        Index(
            "ix_conversation_events_kind_at",
            "kind",
            "at",
            postgresql_include=["id", "seconds", "business_seconds", "agent_id", "assignee_id"],
        ),
        Index("ix_conversation_events_conversation_id", "conversation_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Who did it: the replying agent (first_response), the agent who changed the status; NULL for
    # the customer, an echo from the phone or the system.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    # The conversation's assignee at that moment (after the change, for an assignment made with it).
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    seconds: Mapped[float | None] = mapped_column(Double)
    business_seconds: Mapped[float | None] = mapped_column(Double)


class ReportHour(Model):
    """Per UTC hour: visible messages (no notes, reactions, edits or deletions) by direction
    (`metric` `in` / `out`), and the events of `conversation_events` by kind."""

    __tablename__ = "report_hours"
    __table_args__ = (
        CheckConstraint("metric IN ('in', 'out', 'opened', 'reopened', 'resolved', 'first_response')", name="metric"),
    )

    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    metric: Mapped[str] = mapped_column(String(16), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

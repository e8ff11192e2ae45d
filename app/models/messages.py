"""Messages, inbound and outbound, one row per WhatsApp message id (`wamid`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model

DIRECTIONS = ("in", "out")
# pending: stored, Graph not answered yet; accepted: Graph gave it a wamid; then Meta's ticks.
DELIVERY_STATUSES = ("pending", "accepted", "sent", "delivered", "read", "played", "failed")
# Event-like types that change another message instead of being shown as a bubble of their own.
HIDDEN_TYPES = ("reaction", "edit", "revoke")
# Private notes: shown to agents in the thread, never sent, never the conversation's preview.
NOTE_TYPE = "note"
# What happened to the conversation, shown in the thread as a line of its own (direction `out`,
# sender `system`, no text; `payload` says what: {"event": "snoozed", "until": ISO | null} or
# {"event": "woke", "by": "time" | "customer" | "agent"}; `agent_id` who did it). Like a note it
# is never sent, never the preview and never moves the unread count, the window or the sort.
EVENT_TYPE = "event"
# Our own copy of an inbound media file (app/jobs/media.py fetches it, app/storage/ keeps it):
# pending: owed (a job fetches it; the sweep re-enqueues it when no job is alive); stored: kept;
# expired: Meta no longer had it; corrupt: its sha256 never matched the webhook's; failed: Graph
# kept failing; pruned: removed after MEDIA_RETENTION_DAYS. NULL: nothing to keep.
MEDIA_STATES = ("pending", "stored", "expired", "corrupt", "failed", "pruned")
# What full-text search reads of a message (app/services/search.py): its text or caption and its
# document's file name (`_`, `-` and `.` as spaces, so "factura_marzo.pdf" is three words), as
# Spanish without accents (the `es_unaccent` configuration of migration 0007).
SEARCH_VECTOR_SQL = (
    "to_tsvector('es_unaccent'::regconfig, coalesce(text, '') || ' ' || "
    "translate(coalesce(media_filename, ''), '._-', '   '))"
)


class Message(Model):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint("sender IN ('customer', 'agent', 'system')", name="sender"),
        CheckConstraint(
            "status IS NULL OR status IN ('pending', 'accepted', 'sent', 'delivered', 'read', 'played', 'failed')",
            name="status",
        ),
        # The thread, newest first, and the seed's (conversation_id, sent_at) lookups.
        Index("ix_messages_conversation_sent", "conversation_id", "sent_at", "id"),
        Index(
            "ix_messages_reaction_target",
            "reaction_to_wamid",
            postgresql_where=sql_text("reaction_to_wamid IS NOT NULL"),
        ),
        # Marking a conversation read touches only its unread inbound messages.
        Index(
            "ix_messages_conversation_unread",
            "conversation_id",
            postgresql_where=sql_text("direction = 'in' AND NOT is_read"),
        ),
        Index("ix_messages_agent_id", "agent_id", postgresql_where=sql_text("agent_id IS NOT NULL")),
        CheckConstraint(
            "media_state IS NULL OR media_state IN ('pending', 'stored', 'expired', 'corrupt', 'failed', 'pruned')",
            name="media_state",
        ),
        # The sweep's work list (media still owed) and the retention prune's (files kept).
        Index("ix_messages_media_pending", "id", postgresql_where=sql_text("media_state = 'pending'")),
        Index("ix_messages_media_stored", "media_stored_at", postgresql_where=sql_text("media_state = 'stored'")),
        # Full-text search (migration 0007).
        Index("ix_messages_search", "search_vector", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    wamid: Mapped[str | None] = mapped_column(Text, unique=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))
    sender: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    type: Mapped[str] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    media_id: Mapped[str | None] = mapped_column(Text)
    media_mime_type: Mapped[str | None] = mapped_column(Text)
    media_sha256: Mapped[str | None] = mapped_column(Text)
    media_filename: Mapped[str | None] = mapped_column(Text)
    media_state: Mapped[str | None] = mapped_column(String(16))
    media_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # While a worker downloads the file: no other worker claims it before this time.
    media_claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    media_storage_key: Mapped[str | None] = mapped_column(Text)
    media_stored_sha256: Mapped[str | None] = mapped_column(Text)  # hex digest of our copy (the ETag)
    media_size: Mapped[int | None] = mapped_column(BigInteger)
    media_content_type: Mapped[str | None] = mapped_column(Text)  # what Graph said when we fetched it
    media_stored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    media_error: Mapped[str | None] = mapped_column(Text)
    latitude: Mapped[float | None] = mapped_column(Double)
    longitude: Mapped[float | None] = mapped_column(Double)
    location_name: Mapped[str | None] = mapped_column(Text)
    location_address: Mapped[str | None] = mapped_column(Text)
    reply_to_wamid: Mapped[str | None] = mapped_column(Text)
    forwarded: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    reaction_to_wamid: Mapped[str | None] = mapped_column(Text)
    reaction_emoji: Mapped[str | None] = mapped_column(Text)
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Meta's timestamp (the customer's clock for inbound); orders the thread and the 24 h window.
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    status: Mapped[str | None] = mapped_column(String(16))
    status_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_title: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[str | None] = mapped_column(Text)
    template_name: Mapped[str | None] = mapped_column(Text)
    template_language: Mapped[str | None] = mapped_column(Text)
    is_read: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # The message object as Meta sent it: type-specific fields and unknown future types.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=sql_text("'{}'::jsonb"))
    # Kept by PostgreSQL from `text` and `media_filename` (a stored generated column: computed
    # once per write, read by search without recomputing; never loaded with the message).
    search_vector: Mapped[Any] = mapped_column(TSVECTOR, Computed(SEARCH_VECTOR_SQL, persisted=True), deferred=True)

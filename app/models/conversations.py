"""Business numbers, contacts and conversations (one per business number + contact)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model

# The one list of statuses: the CHECK constraint, the API's schemas and the pages read it.
# `snoozed`: out of the open tabs until `snoozed_until` (the wake job) or the customer's next
# message (ingest), whichever comes first; then `open` again (app/services/snooze.py).
CONVERSATION_STATUSES = ("open", "pending", "resolved", "snoozed")
STATUS_CHECK_SQL = "status IN (" + ", ".join(f"'{status}'" for status in CONVERSATION_STATUSES) + ")"
# The team's notes about a contact, and their custom attributes (key → value), at most.
MAX_NOTES_CHARS = 10_000
MAX_ATTRIBUTES = 30
MAX_ATTRIBUTE_KEY_CHARS = 64
MAX_ATTRIBUTE_VALUE_CHARS = 1000
MAX_DISPLAY_NAME_CHARS = 200


class BusinessNumber(Model):
    __tablename__ = "business_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_number_id: Mapped[str] = mapped_column(Text, unique=True)
    display_phone_number: Mapped[str | None] = mapped_column(Text)
    waba_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Contact(Model):
    """A WhatsApp user. Keyed by `wa_id` when Meta sends it, else by the business-scoped `user_id`.

    `profile_name` is WhatsApp's (the name the person set, updated by every webhook);
    `display_name`, `notes` and `attributes` are the team's, edited in the contact profile and
    never overwritten by a webhook.
    """

    __tablename__ = "contacts"
    __table_args__ = (
        CheckConstraint("wa_id IS NOT NULL OR user_id IS NOT NULL", name="has_identity"),
        CheckConstraint(f"char_length(notes) <= {MAX_NOTES_CHARS}", name="notes_length"),
        CheckConstraint("jsonb_typeof(attributes) = 'object'", name="attributes_object"),
        Index("uq_contacts_wa_id", "wa_id", unique=True, postgresql_where=text("wa_id IS NOT NULL")),
        Index("uq_contacts_user_id", "user_id", unique=True, postgresql_where=text("user_id IS NOT NULL")),
        # Search by name or number (`q` on the conversation list); the expression is
        # app/services/conversations.py's _search_expression().
        Index(
            "ix_contacts_search_trgm",
            text("(coalesce(display_name, '') || ' ' || coalesce(profile_name, '') || ' ' || coalesce(wa_id, ''))"),
            postgresql_using="gin",
            postgresql_ops={"": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    wa_id: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text)
    profile_name: Mapped[str | None] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Conversation(Model):
    """The thread between one business number and one contact.

    The list endpoint reads only this table and rows it points at by primary key:
    `last_message_id`, `last_agent_message_id`, `unread_count` and
    `last_customer_message_at` are maintained by the services that write messages, in the
    same transaction, so listing costs the same at ten thousand or a million messages.
    """

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("business_number_id", "contact_id"),
        CheckConstraint(STATUS_CHECK_SQL, name="status"),
        # A wake-up time only while snoozed (NULL while snoozed: until the customer writes).
        CheckConstraint("snoozed_until IS NULL OR status = 'snoozed'", name="snoozed_until_only_snoozed"),
        CheckConstraint("unread_count >= 0", name="unread_not_negative"),
        Index("ix_conversations_activity", text("last_activity_at DESC"), text("id DESC")),
        Index("ix_conversations_status_activity", "status", text("last_activity_at DESC"), text("id DESC")),
        Index(
            "ix_conversations_assignee_activity",
            "assignee_id",
            text("last_activity_at DESC"),
            text("id DESC"),
        ),
        Index("ix_conversations_updated_at", "updated_at"),
        # The browser notifications' feed (app/services/notifications.py): the few unread ones.
        Index(
            "ix_conversations_unread_activity",
            text("last_activity_at DESC"),
            text("id DESC"),
            postgresql_where=text("unread_count > 0"),
        ),
        Index("ix_conversations_contact_id", "contact_id"),
        # The wake job's work list: conversations snoozed until a time, by that time.
        Index("ix_conversations_snoozed_until", "snoozed_until", postgresql_where=text("status = 'snoozed'")),
        # The reports' backlog: open conversations whose customer waits for an answer.
        Index(
            "ix_conversations_awaiting_reply",
            "awaiting_reply_since",
            postgresql_where=text("awaiting_reply_since IS NOT NULL AND status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    business_number_id: Mapped[int] = mapped_column(ForeignKey("business_numbers.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    last_activity_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_message_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("messages.id", use_alter=True, ondelete="SET NULL")
    )
    last_message_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_agent_message_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("messages.id", use_alter=True, ondelete="SET NULL")
    )
    last_customer_message_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    unread_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # While `status` is 'snoozed': when it wakes up by itself; NULL = when the customer writes.
    snoozed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Kept by touch_conversation() and the status changes for the reports (app/services/report_facts.py):
    # when the current open period began (the first message, or the last reopening; NULL before any
    # message), and the customer's first message the team has not answered yet (NULL when answered
    # or resolved).
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    awaiting_reply_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    contact: Mapped[Contact] = relationship(lazy="raise")
    business_number: Mapped[BusinessNumber] = relationship(lazy="raise")

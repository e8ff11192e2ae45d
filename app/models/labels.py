"""Labels agents put on conversations ("factura", "urgente"…), defined by admins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Text, func
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model

LABEL_COLOR_PATTERN = r"^#[0-9a-f]{6}$"  # stored lower-case
MAX_LABEL_NAME_CHARS = 40


class Label(Model):
    """A label: its name is unique whatever the case, its colour `#rrggbb`."""

    __tablename__ = "labels"
    __table_args__ = (
        Index("uq_labels_name_lower", sql_text("lower(name)"), unique=True),
        CheckConstraint("color ~ '^#[0-9a-f]{6}$'", name="color_hex"),
        CheckConstraint(f"char_length(name) BETWEEN 1 AND {MAX_LABEL_NAME_CHARS}", name="name_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    color: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))


class ConversationLabel(Model):
    """A label on a conversation. The primary key (conversation, label) serves each row's labels;
    `ix_conversation_labels_label` serves the list's `label=` filter."""

    __tablename__ = "conversation_labels"
    __table_args__ = (Index("ix_conversation_labels_label", "label_id", "conversation_id"),)

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))

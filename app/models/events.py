"""What Meta posted: raw webhook deliveries and the status events they carried."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, Text, UniqueConstraint, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model


class WebhookDelivery(Model):
    """One raw POST body, kept `RAW_DELIVERY_RETENTION_DAYS` for audit and replay.

    Identical bodies (Meta's retries) share one row and count `attempts`.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_last_received_at", "last_received_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    outcome: Mapped[str] = mapped_column(Text)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))


class StatusEvent(Model):
    """Every delivery status Meta reported, whether or not its message is known yet.

    A status that arrives before its message (Meta does not order webhooks) waits here and
    is applied when the message is stored.
    """

    __tablename__ = "status_events"
    __table_args__ = (UniqueConstraint("wamid", "status"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    wamid: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recipient_id: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_title: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

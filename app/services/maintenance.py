"""Housekeeping: raw webhook deliveries are kept for a limited time (default 30 days)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete

from app.extensions import db
from app.models import WebhookDelivery


def prune_deliveries(older_than_days: int) -> int:
    """Delete raw deliveries last received more than `older_than_days` ago. Messages stay."""
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    result = cast(
        "CursorResult[Any]",
        db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.last_received_at < cutoff)),
    )
    db.session.commit()
    return result.rowcount or 0

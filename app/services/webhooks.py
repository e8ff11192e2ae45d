"""Receiving a webhook delivery: the one transaction that makes Meta's POST durable."""

from __future__ import annotations

import structlog

from app.extensions import db
from app.metrics import MESSAGES_INGESTED, STATUSES_RECEIVED, WEBHOOK_DELIVERIES
from app.whatsapp.ingest import IngestResult, ingest_delivery
from app.whatsapp.payloads import parse_delivery

log = structlog.get_logger(__name__)


def receive_delivery(body: bytes, data: dict) -> IngestResult:  # type: ignore[type-arg]
    """Store the raw delivery and everything in it, then commit.

    Raises SQLAlchemy's OperationalError / TimeoutError when the database is unreachable or
    the pool is exhausted; the caller answers 503 and Meta delivers again later.
    """
    parsed = parse_delivery(data)
    try:
        result = ingest_delivery(db.session, body, parsed)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    WEBHOOK_DELIVERIES.labels(outcome=result.outcome).inc()
    for message_type, count in result.stored_types.items():
        MESSAGES_INGESTED.labels(type=message_type).inc(count)
    for status, count in result.received_statuses.items():
        STATUSES_RECEIVED.labels(status=status).inc(count)
    log.info(
        "webhook delivery",
        delivery_id=result.delivery_id,
        outcome=result.outcome,
        messages_stored=result.messages_stored,
        messages_duplicate=result.messages_duplicate,
        statuses_applied=result.statuses_applied,
        statuses_waiting=result.statuses_waiting,
        problems=len(result.problems),
    )
    return result

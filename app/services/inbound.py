"""Inbound deliveries from Meta: the one transaction that makes a webhook POST durable.

The webhook blueprint (`app/webhook/views.py`) checks the signature and decodes the body,
then hands it here. `receive_delivery()` parses it (`app/whatsapp/payloads.py`: pure, no Flask,
no database), stores it (`app/services/ingest.py`: idempotent, never commits), commits once,
runs it again when PostgreSQL aborts it in a deadlock, counts it in the metrics and puts its outcome
and counts on the request's access line. `refused()` counts the deliveries the blueprint turned away.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError

from app.cache import bump_inbox_later
from app.extensions import db
from app.jobs import defer_owed
from app.metrics import MESSAGES_INGESTED, STATUSES_RECEIVED, WEBHOOK_DELIVERIES
from app.prepared import STALE_SQLSTATES
from app.services.ingest import IngestResult, ingest_delivery
from app.whatsapp.payloads import parse_delivery

log = structlog.get_logger(__name__)

# Two deliveries touching the same conversations in another order (a batch and Meta's reordered
# retry of it) can deadlock; PostgreSQL aborts one. Running it again then succeeds. So it does
# when a prepared statement of the delivery's was gone or could no longer run (app/prepared.py):
# the error forgot it on that connection, and the retry prepares it again.
RETRYABLE_SQLSTATES = ("40P01", "40001", *STALE_SQLSTATES)  # deadlock_detected, serialization_failure
ATTEMPTS = 3


def _retryable(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "pgcode", None) in RETRYABLE_SQLSTATES


def refused(outcome: str) -> None:
    """Count a delivery refused before parsing (`missing_signature`, `bad_signature`, `invalid_body`)."""
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()


def receive_delivery(body: bytes, data: dict[str, Any]) -> IngestResult:
    """Store the raw delivery and everything in it, then commit.

    Raises SQLAlchemy's OperationalError / TimeoutError when the database is unreachable or
    the pool is exhausted; the caller answers 503 and Meta delivers again later.
    """
    parsed = parse_delivery(data)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            result = ingest_delivery(db.session, body, parsed)
            # The downloads and automatic replies the new rows owe, queued in this transaction
            # (the webhook never calls Graph itself); what this misses stays `pending` for the sweep.
            defer_owed(result.media_owed, result.replies_owed)
            bump_inbox_later(db.session)  # deliveries come in bursts: one bump for a burst
            db.session.commit()
            break
        except DBAPIError as exc:
            db.session.rollback()
            if not _retryable(exc) or attempt == ATTEMPTS:
                raise
            log.warning("webhook delivery retried", attempt=attempt, sqlstate=getattr(exc.orig, "pgcode", None))
        except Exception:
            db.session.rollback()
            raise
    WEBHOOK_DELIVERIES.labels(outcome=result.outcome).inc()
    for message_type, count in result.stored_types.items():
        MESSAGES_INGESTED.labels(type=message_type).inc(count)
    for status, count in result.received_statuses.items():
        STATUSES_RECEIVED.labels(status=status).inc(count)
    # On the request's access line (app/observability.py), not a line of its own: one line per delivery.
    structlog.contextvars.bind_contextvars(
        delivery_id=result.delivery_id,
        outcome=result.outcome,
        messages_stored=result.messages_stored,
        messages_duplicate=result.messages_duplicate,
        statuses_applied=result.statuses_applied,
        statuses_waiting=result.statuses_waiting,
        problems=len(result.problems),
    )
    return result

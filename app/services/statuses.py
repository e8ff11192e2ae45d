"""Delivery statuses (Meta's ticks) on our outbound messages: kept once, applied forward only.

Every status Meta reports is kept in `status_events` (one row per wamid and status, whatever
the order or the number of redeliveries). It moves its message's `status` only forward, by
`app.whatsapp.rules.STATUS_RANK`, compared in SQL in the same UPDATE (so concurrent deliveries
can never move a tick backwards). A status that arrives before its message — before the echo
is ingested, or before Graph has answered the send with the wamid — waits in `status_events`
and is applied by `apply_waiting_statuses()` when the message gets its wamid.

Used by ingest (statuses in a delivery, echoes) and sending (Graph's answer). Nothing here
commits: the caller's transaction does.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import ColumnElement, SQLColumnExpression, case, func, select, update
from sqlalchemy.dialects.postgresql import insert

from app.extensions import DbSession
from app.models import Message, StatusEvent
from app.whatsapp.payloads import KNOWN_STATUSES, ParsedStatus
from app.whatsapp.rules import STATUS_RANK


def status_rank_sql(column: SQLColumnExpression[str | None]) -> ColumnElement[int]:
    """SQL expression giving the rank of a message's current status (NULL counts as pending)."""
    return case(STATUS_RANK, value=func.coalesce(column, "pending"), else_=0)


def record_status(session: DbSession, status: ParsedStatus) -> bool | None:
    """Keep one status Meta reported and apply it to its message.

    True: applied (or its message already had a later status); False: its message is not
    stored yet, the status waits; None: not a status this app knows (kept, never applied).
    """
    occurred_at = status.occurred_at or datetime.now(UTC)
    error = status.error
    session.execute(
        insert(StatusEvent)
        .values(
            wamid=status.wamid,
            status=status.status,
            occurred_at=occurred_at,
            recipient_id=status.recipient_id,
            error_code=error.code if error else None,
            error_title=error.title if error else None,
            error_details=error.details if error else None,
            payload=status.payload,
        )
        .on_conflict_do_nothing(index_elements=[StatusEvent.wamid, StatusEvent.status])
    )
    if status.status not in KNOWN_STATUSES:
        return None
    return apply_status(
        session,
        status.wamid,
        status.status,
        occurred_at,
        error.code if error else None,
        error.title if error else None,
        error.details if error else None,
    )


def apply_status(
    session: DbSession,
    wamid: str,
    status: str,
    occurred_at: datetime,
    error_code: int | None,
    error_title: str | None,
    error_details: str | None,
) -> bool:
    """Move an outbound message's status forward; never backwards. True when a row matched."""
    values: dict[str, object] = {"status": status, "status_at": occurred_at}
    if status == "failed":
        values.update(error_code=error_code, error_title=error_title, error_details=error_details)
    updated = session.execute(
        update(Message)
        .where(
            Message.wamid == wamid,
            Message.direction == "out",
            status_rank_sql(Message.status) < STATUS_RANK[status],
        )
        .values(**values)
        .returning(Message.id)
    ).first()
    if updated is not None:
        return True
    return session.execute(select(Message.id).where(Message.wamid == wamid)).first() is not None


def apply_waiting_statuses(session: DbSession, wamid: str) -> None:
    """Apply statuses that arrived before their message (stored in `status_events`)."""
    events = session.execute(
        select(StatusEvent).where(StatusEvent.wamid == wamid, StatusEvent.status.in_(KNOWN_STATUSES))
    ).scalars()
    best = max(events, key=lambda e: STATUS_RANK[e.status], default=None)
    if best is not None:
        apply_status(
            session, wamid, best.status, best.occurred_at, best.error_code, best.error_title, best.error_details
        )

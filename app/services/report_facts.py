"""The facts the reports read (app/services/reports.py), recorded in the transaction that makes
them true, so a report reads a few thousand event rows and hour counters instead of scanning a
million messages. Nothing here commits.

- Every visible message (not a note, reaction, edit or deletion) adds one to its UTC hour's
  counter in `report_hours` (metric `in` or `out`; in the statement that moves its summary,
  `count_message`), and every event below to its kind's.
- `touch_conversation()` (app/services/summaries.py) hands over the conversation's values from
  before the message: its first visible message records `opened`; a customer's message on a
  resolved conversation records `reopened`; the team's reply (an agent's, or an echo of one sent
  from the phone; not an automatic reply) to a waiting customer records `first_response` with
  the wait since the customer's first unanswered message, wall-clock and within business hours
  (app/whatsapp/business_hours.py's `business_seconds`, by the hours in force at that moment).
  A reply counts when it is stored, before Graph answers: a send that then fails was still
  the agent's answer (a retry is not another one).
- The status changes (app/services/conversation_actions.py) record `resolved` (with the seconds
  since the conversation was opened or last reopened) and `reopened`, set-based for any number
  of conversations (`INSERT … SELECT` over the locked rows, before their UPDATE); resolving ends
  a running wait without a first response (the customer's "thanks!" needs no answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    CTE,
    ColumnElement,
    DateTime,
    Double,
    Integer,
    String,
    Table,
    bindparam,
    extract,
    func,
    insert,
    literal,
    null,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.cache import note_write
from app.extensions import DbSession
from app.models import Conversation, ConversationEvent, ReportHour
from app.models.reports import HOUR_SHARDS
from app.prepared import PREPARED
from app.services import business_hours
from app.whatsapp.business_hours import business_seconds

_hours = cast(Table, ReportHour.__table__)
_events = cast(Table, ConversationEvent.__table__)
_conversations = cast(Table, Conversation.__table__)

# Adds `count` to the counters named (one row per metric; a statement never names one twice).
COUNT_HOURS = (
    pg_insert(_hours)
    .values(hour=bindparam("p_hour"), metric=bindparam("p_metric"), shard=bindparam("p_shard"), count=bindparam("p_n"))
    .on_conflict_do_update(
        index_elements=[_hours.c.hour, _hours.c.metric, _hours.c.shard],
        set_={"count": _hours.c.count + pg_insert(_hours).excluded.count},
    )
)


_EVENT_COLUMNS = ("conversation_id", "kind", "at", "agent_id", "assignee_id", "seconds", "business_seconds")
# One event and its kind's counter in one statement (bound parameters e_<column> and COUNT_HOURS').
RECORD_EVENT = COUNT_HOURS.add_cte(
    insert(_events).values({name: bindparam(f"e_{name}") for name in _EVENT_COLUMNS}).cte("event")
)


def count_message(conversation_id: Any, *guards: ColumnElement[bool]) -> CTE:
    """The message's own counter (metric: its direction, `p_metric`; hour `p_hour`, shard
    `p_shard`), as a CTE of the statement that moves its conversation's summary
    (app/services/summaries.py): one statement less per message. Counted only when the
    conversation exists, as the summary UPDATE it rides with (and `guards` hold)."""
    exists = select(_conversations.c.id).where(_conversations.c.id == conversation_id).exists()
    rows = select(
        bindparam("p_hour", type_=DateTime(timezone=True)),
        bindparam("p_metric", type_=String),
        bindparam("p_shard", type_=Integer),
        literal(1, type_=Integer),
    ).where(exists, *guards)
    statement = pg_insert(_hours).from_select(["hour", "metric", "shard", "count"], rows)
    return statement.on_conflict_do_update(
        index_elements=[_hours.c.hour, _hours.c.metric, _hours.c.shard],
        set_={"count": _hours.c.count + statement.excluded.count},
    ).cte("counted")


def count_message_params(conversation_id: int, direction: str, sent_at: datetime) -> dict[str, Any]:
    """The bound parameters of `count_message`."""
    return {"p_hour": hour_of(sent_at), "p_metric": direction, "p_shard": conversation_id % HOUR_SHARDS}


@dataclass(frozen=True)
class Before:
    """A conversation's values just before a message moved its summary."""

    status: str
    opened_at: datetime | None
    awaiting_reply_since: datetime | None
    assignee_id: int | None


def hour_of(at: datetime) -> datetime:
    """The UTC hour an instant falls in (the counters' key)."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def message_stored(
    session: DbSession,
    conversation_id: int,
    before: Before,
    *,
    from_customer: bool,
    team_reply: bool,
    agent_id: int | None,
    sent_at: datetime,
) -> None:
    """Record what a visible message just stored means for the reports (see the module); the
    message's own counter (its direction) was added by the summary's statement (`count_message`)."""
    events: list[dict[str, Any]] = []

    def event(kind: str, **values: Any) -> None:
        events.append(
            {
                "conversation_id": conversation_id,
                "kind": kind,
                "at": sent_at,
                "agent_id": agent_id,
                "assignee_id": before.assignee_id,
                "seconds": None,
                "business_seconds": None,
                **values,
            }
        )

    if before.opened_at is None:
        event("opened", agent_id=None if from_customer else agent_id)
    elif from_customer and before.status == "resolved":
        event("reopened", agent_id=None)
    if team_reply and before.awaiting_reply_since is not None:
        since = before.awaiting_reply_since
        schedule = business_hours.load(session).schedule
        event(
            "first_response",
            seconds=max(0.0, (sent_at - since).total_seconds()),
            business_seconds=business_seconds(schedule, since, sent_at),
        )
    if events:
        # On the session's Connection, one statement per event (almost always one): the webhook's
        # hot path. The write is noted for the caches by hand (app/cache.py).
        connection = session.connection()
        hour, shard = hour_of(sent_at), conversation_id % HOUR_SHARDS
        for e in events:
            counter = {"p_hour": hour, "p_metric": e["kind"], "p_shard": shard, "p_n": 1}
            values = {**{f"e_{name}": value for name, value in e.items()}, **counter}
            connection.execute(
                RECORD_EVENT, values, execution_options=PREPARED
            )  # returns nothing: no result to outdate
        note_write(session, _events.name)


def status_changed(
    session: DbSession,
    conversation_ids: list[int],
    status: str,
    agent_id: int | None,
    *,
    assign: bool = False,
    assignee: int | None = None,
) -> None:
    """Record `resolved` or `reopened` for those of the (locked) conversations whose status this
    change moves, in one statement, before their UPDATE. With `assign`, the assignee they will
    have is `assignee` (the change assigns too); otherwise their current one."""
    c = cast(Table, Conversation.__table__).c
    now = func.now()
    if status == "resolved":
        kind = "resolved"
        moved = c.status != "resolved"
        seconds: Any = func.greatest(0, extract("epoch", now - func.coalesce(c.opened_at, c.created_at)))
    else:
        kind = "reopened"
        moved = c.status == "resolved"
        seconds = sql_cast(null(), Double)
    rows = select(
        c.id,
        literal(kind),
        now,
        literal(agent_id, type_=Integer),
        literal(assignee, type_=Integer) if assign else c.assignee_id,
        seconds,
    ).where(c.id.in_(conversation_ids), moved)
    inserted = (
        insert(_events)
        .from_select(["conversation_id", "kind", "at", "agent_id", "assignee_id", "seconds"], rows)
        .returning(_events.c.conversation_id, _events.c.at)
        .cte("inserted")
    )
    # The hour counters in the same statement: one row per shard the conversations fall in.
    hour = func.date_trunc("hour", inserted.c.at, "UTC")
    shard = inserted.c.conversation_id % HOUR_SHARDS
    counts = select(hour, literal(kind), shard, func.count()).group_by(hour, shard)
    statement = pg_insert(_hours).from_select(["hour", "metric", "shard", "count"], counts)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[_hours.c.hour, _hours.c.metric, _hours.c.shard],
            set_={"count": _hours.c.count + statement.excluded.count},
        )
    )

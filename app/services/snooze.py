"""Snoozed conversations: the thread's record of a snooze, and waking them up.

A conversation is snoozed by a triage (`conversation_actions.update_conversations` with status
`snoozed`, alone or in bulk); it wakes up — status `open` again, `snoozed_until` NULL — in one
of three ways, each leaving an event in the thread (a message of type `event`, see
`app/models/messages.py`):

- its time comes: `wake_due()`, run every minute by the `snooze.wake` job (app/jobs/snooze.py),
  one set-based statement that is idempotent (a conversation already awake no longer matches;
  two runs at once serialise on the rows' locks, and the second finds nothing);
- the customer writes: the webhook's own transaction, in the summary's UPDATE
  (`app/services/summaries.py`, the same rule that reopens a resolved conversation);
- an agent sets another status (`conversation_actions`).

`insert_events` builds the INSERT … SELECT the three share; nothing here but `wake_due`
commits.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Insert,
    Integer,
    Select,
    Table,
    false,
    func,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import Conversation, Message
from app.models.messages import EVENT_TYPE

log = logging.getLogger(__name__)

SNOOZED = "snoozed"
WOKE_BY_TIME = "time"
WOKE_BY_CUSTOMER = "customer"
WOKE_BY_AGENT = "agent"

_messages = cast(Table, Message.__table__)
_EVENT_COLUMNS = (
    "conversation_id",
    "direction",
    "sender",
    "type",
    "agent_id",
    "payload",
    "sent_at",
    "is_read",
    "forwarded",
    "media_attempts",
)


def snoozed_payload(until: datetime | None) -> Any:
    """The payload of a "snoozed" event (`until` in UTC ISO 8601, or null: until the customer writes)."""
    return func.jsonb_build_object("event", "snoozed", "until", until.astimezone(UTC).isoformat() if until else None)


def woke_payload(by: str) -> Any:
    """The payload of a "woke" event: `by` the time, the customer or an agent."""
    return func.jsonb_build_object("event", "woke", "by", by)


def at_time(value: datetime) -> ColumnElement[datetime]:
    return literal(value, DateTime(timezone=True))


def by_agent(agent_id: int | None) -> ColumnElement[Any]:
    return literal(agent_id, Integer)


def insert_events(
    conversation_ids: Select[Any], payload: Any, *, agent_id: ColumnElement[Any], sent_at: ColumnElement[datetime]
) -> Insert:
    """One event per conversation id that `conversation_ids` yields (INSERT … SELECT); `agent_id`
    and `sent_at` are SQL expressions (`by_agent`, `at_time`, or bound parameters)."""
    ids = conversation_ids.subquery("event_conversations")
    return insert(_messages).from_select(
        list(_EVENT_COLUMNS),
        select(
            ids.c[0],
            literal("out"),
            literal("system"),
            literal(EVENT_TYPE),
            agent_id,
            payload,
            sent_at,
            true(),
            false(),
            literal(0, Integer),
        ),
    )


def wake_due(now: datetime | None = None) -> int:
    """Wake every conversation whose `snoozed_until` has passed (by `now`, default the current
    time): back to `open`, a "woke" event in each thread, one statement, committed. How many woke."""
    at = now or datetime.now(UTC)
    due = (
        update(Conversation)
        .where(Conversation.status == SNOOZED, Conversation.snoozed_until <= at)
        .values(status="open", snoozed_until=None, updated_at=func.now())
        .returning(Conversation.id.label("id"))
        .cte("woke")
    )
    statement = (
        insert_events(select(due.c.id), woke_payload(WOKE_BY_TIME), agent_id=by_agent(None), sent_at=at_time(at))
        .add_cte(due)
        .returning(_messages.c.conversation_id)
    )
    woke = len(db.session.execute(statement).all())  # (an INSERT's rowcount is not reliable)
    db.session.commit()
    if woke:
        log.info("snooze: %d conversations woke up", woke)
    return woke

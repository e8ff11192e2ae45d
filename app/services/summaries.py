"""What a new message does to its conversation's summary columns: the one rule.

The conversation list reads only `conversations` (see `Conversation`), so every path that
stores a message — ingest (inbound messages and echoes of our own), sending (an agent's reply,
stored as pending) and private notes — moves the summary through `touch_conversation()`, in
the same transaction as the message, with one UPDATE:

- `last_activity_at`: the newest time anything happened, for every message but a note (the
  list is sorted by it; a note or triage never reorders the list);
- `last_message_id` / `last_message_at`, the preview: the newest *visible* message by its
  `sent_at` (Meta's clock for inbound); reactions, edits, revocations and notes never become it;
- for a customer's visible message: `unread_count` + 1, `last_customer_message_at` (the
  24-hour window runs from it), a resolved conversation reopens and a snoozed one wakes up
  (`snoozed_until` cleared, and a "woke" event in the thread, inserted by the same statement);
- for our own visible outbound message (an agent's reply or an echo, not an automatic reply):
  `last_agent_message_id`;
- `updated_at` always (it invalidates the cached list);
- for the reports (app/services/report_facts.py records the facts from the values the UPDATE
  returns): `opened_at` (the first visible message; a customer's message reopening a resolved
  conversation restarts it) and `awaiting_reply_since` (a customer's visible message starts the
  wait if none is running; the team's visible reply ends it).

The UPDATE is set-based and commutative (`greatest`, `CASE`): deliveries may arrive out of
order and the summary still ends up exact. The statements are built once per kind of message
and run with bound parameters (the ingest benchmark's hot path). Nothing here commits.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Connection,
    DateTime,
    Integer,
    Table,
    Update,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)

from app.cache import note_write
from app.extensions import DbSession
from app.models import Conversation
from app.models.messages import EVENT_TYPE, HIDDEN_TYPES, NOTE_TYPE
from app.prepared import PREPARED
from app.services import report_facts
from app.services.snooze import SNOOZED, WOKE_BY_CUSTOMER, by_agent, insert_events, woke_payload

_conversations = cast(Table, Conversation.__table__)


@dataclass(frozen=True)
class Effect:
    """Which summary columns a message moves (see the module's docstring)."""

    activity: bool  # last_activity_at
    preview: bool  # last_message_id / last_message_at
    customer: bool  # unread_count, last_customer_message_at, reopening
    agent: bool  # last_agent_message_id


def effect_of(message_type: str, sender: str, direction: str) -> Effect:
    """The rule: which columns a message of this type, sender and direction moves."""
    if message_type in (NOTE_TYPE, EVENT_TYPE):
        return Effect(activity=False, preview=False, customer=False, agent=False)
    visible = message_type not in HIDDEN_TYPES
    from_customer = sender == "customer"
    return Effect(
        activity=True,
        preview=visible,
        customer=visible and from_customer,
        # An automatic reply (sender 'system') is not the team's answer.
        agent=visible and sender == "agent" and direction == "out",
    )


@functools.cache
def touch_statement(effect: Effect, counted: bool = False, stored: CTE | None = None) -> Update:
    """The UPDATE for one kind of message; bound parameters `p_conversation_id`,
    `p_message_id` and `p_sent_at` (those a kind does not use are ignored). With `counted` (a
    visible message whose facts are recorded), the message's hour counter is added by the same
    statement (`report_facts.count_message`: `p_hour`, `p_metric`, `p_shard`).

    With `stored` (a CTE of `INSERT … ON CONFLICT DO NOTHING RETURNING id`), the message is
    inserted by the same statement and its id is the stored one, not `p_message_id`: nothing
    moves when it was already stored (no row then), and the statement returns `message_id`."""
    c = _conversations.c
    sent_at = bindparam("p_sent_at", type_=DateTime(timezone=True))
    message_id: ColumnElement[Any] = bindparam("p_message_id", type_=BigInteger)
    # Everything the statement writes besides the message waits for it (and reads it first, so
    # a "woke" event's id follows the message's, as when it was written by a later statement).
    guards: tuple[ColumnElement[bool], ...] = ()
    returned: tuple[ColumnElement[Any], ...] = ()
    if stored is not None:
        message_id = select(stored.c.id).scalar_subquery()
        guards = (select(stored.c.id).exists(),)
        returned = (message_id.label("message_id"),)
    values: dict[str, object] = {}
    if effect.activity:
        values["last_activity_at"] = func.greatest(c.last_activity_at, sent_at)
    values["updated_at"] = func.now()
    if effect.preview:
        newer = (c.last_message_at.is_(None)) | (c.last_message_at <= sent_at)
        values["last_message_id"] = case((newer, message_id), else_=c.last_message_id)
        values["last_message_at"] = func.greatest(func.coalesce(c.last_message_at, sent_at), sent_at)
    if effect.customer:
        values["unread_count"] = c.unread_count + 1
        # The 24-hour window runs from the customer's own messages, by Meta's clock.
        values["last_customer_message_at"] = func.greatest(func.coalesce(c.last_customer_message_at, sent_at), sent_at)
        # Not `in_()`: its list is rendered into the SQL at each execution (a post-compile parameter).
        values["status"] = case((or_(c.status == "resolved", c.status == SNOOZED), "open"), else_=c.status)
        values["snoozed_until"] = None
    if effect.agent:  # never with `customer`: see effect_of
        values["last_agent_message_id"] = message_id
    conversation_id = bindparam("p_conversation_id", type_=Integer)
    if not effect.preview:
        return update(_conversations).where(c.id == conversation_id, *guards).values(**values).returning(*returned)
    # A visible message: the reports need the values before the change, read from the same
    # row locked in the same statement (UPDATE … FROM (SELECT … FOR NO KEY UPDATE) RETURNING
    # old.*). NO KEY, the lock the UPDATE itself takes: FOR UPDATE would conflict with the key
    # share lock each concurrent message insert holds on its conversation (a deadlock).
    old = (
        select(c.id, c.status, c.opened_at, c.awaiting_reply_since)
        .where(c.id == conversation_id)
        .with_for_update(key_share=True)
        .subquery("old")
    )
    if effect.customer:
        values["opened_at"] = case((c.status == "resolved", sent_at), else_=func.coalesce(c.opened_at, sent_at))
        values["awaiting_reply_since"] = func.coalesce(c.awaiting_reply_since, sent_at)
    else:
        values["opened_at"] = func.coalesce(c.opened_at, sent_at)
    if effect.agent:
        values["awaiting_reply_since"] = None
    statement = (
        update(_conversations)
        .where(c.id == old.c.id, *guards)
        .values(**values)
        .returning(old.c.status, old.c.opened_at, old.c.awaiting_reply_since, c.assignee_id, *returned)
    )
    if effect.customer:
        # The statement's snapshot still sees the status before this UPDATE: a snoozed
        # conversation gets its "woke" event, after the message in the thread (and after the
        # snooze, also when Meta's timestamp, in whole seconds, is older: a late delivery).
        woke = insert_events(
            select(c.id).where(c.id == conversation_id, c.status == SNOOZED, *guards),
            woke_payload(WOKE_BY_CUSTOMER),
            agent_id=by_agent(None),
            sent_at=func.greatest(sent_at, func.now()),
        ).cte("woke")
        statement = statement.add_cte(woke)
    if counted:
        statement = statement.add_cte(report_facts.count_message(conversation_id, *guards))
    return statement


def touch_conversation(
    session: DbSession,
    conversation_id: int,
    message_id: int | None,
    *,
    message_type: str,
    sender: str,
    direction: str,
    sent_at: datetime,
    agent_id: int | None = None,
    record: bool = True,
) -> bool:
    """Move `conversation_id`'s summary for a message stored in this transaction (for a note,
    which moves only `updated_at`, `message_id` may be None), and record what it means for the
    reports (`agent_id`: the agent who wrote it; `record=False` for a message moved from another
    conversation, whose facts were recorded when it was stored and move with it). False when no such conversation."""
    effect = effect_of(message_type, sender, direction)
    counted = record and effect.preview
    params: dict[str, Any] = {"p_conversation_id": conversation_id, "p_message_id": message_id, "p_sent_at": sent_at}
    if counted:
        params.update(report_facts.count_message_params(conversation_id, direction, sent_at))
    # On the session's Connection: the ORM's execute path costs more than the statement (the
    # webhook's hot path, bench/RESULTS.md); the writes are noted for the caches by hand.
    result = session.connection().execute(touch_statement(effect, counted), params)
    note_write(session, "conversations")
    if not effect.preview:
        return bool(result.rowcount)
    before = result.first()
    if before is None:
        return False
    if record:
        _record(session, conversation_id, effect, before, agent_id=agent_id, sent_at=sent_at)
    return True


def store_message(
    session: DbSession,
    connection: Connection,
    stored: CTE,
    params: dict[str, Any],
    conversation_id: int,
    *,
    message_type: str,
    sender: str,
    direction: str,
    sent_at: datetime,
) -> int | None:
    """Insert a message and move its conversation's summary in one statement (the webhook's:
    one round trip per message), recording what it means for the reports as
    `touch_conversation` does. `stored`: a CTE of `INSERT … ON CONFLICT DO NOTHING RETURNING id`
    whose bound parameters are in `params`; `connection`: the session's (`session.connection()`,
    asked once per delivery by the caller). The message's id; None when it was already stored
    (then nothing moved)."""
    effect = effect_of(message_type, sender, direction)
    params = {**params, "p_conversation_id": conversation_id, "p_sent_at": sent_at}
    if effect.preview:
        params.update(report_facts.count_message_params(conversation_id, direction, sent_at))
    row = connection.execute(
        touch_statement(effect, effect.preview, stored), params, execution_options=PREPARED
    ).first()
    if row is None:
        return None
    note_write(session, "messages")  # and so its conversation
    if effect.preview:
        _record(session, conversation_id, effect, row, agent_id=None, sent_at=sent_at)
    return int(row.message_id)


def _record(
    session: DbSession, conversation_id: int, effect: Effect, before: Any, *, agent_id: int | None, sent_at: datetime
) -> None:
    report_facts.message_stored(
        session,
        conversation_id,
        report_facts.Before(
            status=before.status,
            opened_at=before.opened_at,
            awaiting_reply_since=before.awaiting_reply_since,
            assignee_id=before.assignee_id,
        ),
        from_customer=effect.customer,
        team_reply=effect.agent,
        agent_id=agent_id,
        sent_at=sent_at,
    )

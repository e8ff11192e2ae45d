"""What agents do to a conversation besides sending: read it, triage it, note on it, and the
canned responses they answer with.

Each function owns its transaction, as the sending service does: it validates, writes and
commits, or raises a domain error (`app/services/errors.py`) before anything is written.

Marking read commits first and tells Meta afterwards, with no database connection held while
Graph is called. The read receipt is a courtesy (blue ticks on the customer's phone): when
Graph refuses it or cannot be reached, the failure is logged (warning, with Meta's code) and
counted (`inbox_read_receipts_total{result="failed"}`), and the local read stands.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, case, delete, func, select, update
from sqlalchemy.dialects.postgresql import distinct_on, insert

from app.extensions import db
from app.metrics import READ_RECEIPTS
from app.models import Agent, BusinessNumber, CannedResponse, Conversation, Message
from app.models.conversations import CONVERSATION_STATUSES
from app.models.messages import HIDDEN_TYPES, NOTE_TYPE
from app.services import labels as label_service
from app.services import report_facts
from app.services.conversations import escape_like
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.services.graph_factory import graph_client
from app.services.mentions import record_mentions
from app.services.snooze import SNOOZED, WOKE_BY_AGENT, at_time, by_agent, insert_events, snoozed_payload, woke_payload
from app.services.summaries import touch_conversation
from app.whatsapp.graph_client import GraphError
from app.whatsapp.snooze import snooze_time_problem

log = logging.getLogger(__name__)


# --- read receipts ---------------------------------------------------------------------------

RECEIPT_SENT = "sent"
RECEIPT_FAILED = "failed"
RECEIPT_NOT_NEEDED = "not_needed"


@dataclass
class ReadResult:
    unread_count: int
    read_receipt: str  # RECEIPT_SENT, RECEIPT_FAILED or RECEIPT_NOT_NEEDED


def _receipt_outcome(result: str) -> ReadResult:
    """Every mark-read ends here, counted in `inbox_read_receipts_total{result}`. (Graph's error
    codes are counted per call in `inbox_graph_requests_total{operation="mark_read"}`.)"""
    READ_RECEIPTS.labels(result=result).inc()
    return ReadResult(unread_count=0, read_receipt=result)


# --- helpers --------------------------------------------------------------------------------


def _not_found(what: str = "Conversation") -> NotFound:
    return NotFound(f"{what} not found.")


def _lock_conversations(conversation_ids: Sequence[int], *, bulk: bool = False) -> list[int]:
    """The ids, each once, in the order given, their conversations locked until commit (in id
    order, so two requests never deadlock): marking read and unread serialise with ingest.
    `NotFound` (naming the ids that are no conversation when `bulk`); nothing is written."""
    ids = list(dict.fromkeys(conversation_ids))
    if not ids:
        raise Invalid("Name at least one conversation.", field="ids")
    if len(ids) > MAX_BULK_IDS:
        raise Invalid(f"At most {MAX_BULK_IDS} conversations at once.", field="ids")
    found = set(
        db.session.execute(
            select(Conversation.id).where(Conversation.id.in_(ids)).order_by(Conversation.id).with_for_update()
        ).scalars()
    )
    missing = [conversation_id for conversation_id in ids if conversation_id not in found]
    if missing:
        db.session.rollback()
        if not bulk:
            raise _not_found()
        raise NotFound(f"No conversation with id {', '.join(map(str, missing))}.", unknown=missing)
    return ids


def _newest_customer_messages(conversation_ids: Sequence[int]) -> list[Any]:
    """Each conversation's newest message the customer wrote that counts as unread (reactions,
    edits and deletions do not), with its wamid and read flag; none for a conversation where
    the customer never wrote."""
    return list(
        db.session.execute(
            select(Message.conversation_id, Message.id, Message.wamid, Message.is_read)
            .where(
                Message.conversation_id.in_(conversation_ids),
                Message.direction == "in",
                Message.sender == "customer",
                Message.type.not_in(HIDDEN_TYPES),
            )
            .ext(distinct_on(Message.conversation_id))
            .order_by(Message.conversation_id, Message.sent_at.desc(), Message.id.desc())
        ).all()
    )


# --- marking read ---------------------------------------------------------------------------


def _mark_read_locally(conversation_ids: Sequence[int]) -> list[tuple[int, str, str]]:
    """Mark every inbound message of the (locked) conversations read, in the caller's
    transaction; the receipts owed, as (conversation id, phone_number_id, wamid): one for each
    conversation where this found an unread customer message."""
    flipped = db.session.execute(
        update(Message)
        .where(Message.conversation_id.in_(conversation_ids), Message.direction == "in", Message.is_read.is_(False))
        .values(is_read=True)
        .returning(Message.conversation_id, Message.sender, Message.type)
    ).all()
    db.session.execute(update(Conversation).where(Conversation.id.in_(conversation_ids)).values(unread_count=0))
    owed = sorted({row.conversation_id for row in flipped if row.sender == "customer" and row.type not in HIDDEN_TYPES})
    if not owed:
        return []
    newest = {row.conversation_id: row for row in _newest_customer_messages(owed)}
    numbers = {
        row.id: row.phone_number_id
        for row in db.session.execute(
            select(Conversation.id, BusinessNumber.phone_number_id)
            .join(BusinessNumber, BusinessNumber.id == Conversation.business_number_id)
            .where(Conversation.id.in_(owed))
        )
    }
    return [
        (conversation_id, numbers[conversation_id], newest[conversation_id].wamid)
        for conversation_id in owed
        if conversation_id in newest and newest[conversation_id].wamid
    ]


def _send_receipt(conversation_id: int, phone_number_id: str, wamid: str) -> str:
    try:
        graph_client().mark_read(phone_number_id, wamid)
    except GraphError as error:
        log.warning(
            "read receipt for conversation %s failed: code=%s %s (fbtrace_id=%s)",
            conversation_id,
            error.code,
            error.title,
            error.fbtrace_id,
        )
        return RECEIPT_FAILED
    return RECEIPT_SENT


def mark_read(conversation_id: int) -> ReadResult:
    """Mark every inbound message read and tell Meta (blue ticks).

    A receipt is sent only when this call found an unread customer message: calling it again
    sends nothing (`not_needed`), and a receipt that failed is not repeated — the next
    customer message, once read, gets a receipt that covers every earlier one on WhatsApp.
    """
    _lock_conversations([conversation_id])
    receipts = _mark_read_locally([conversation_id])
    db.session.commit()  # the local read stands whatever Graph answers; the connection is released
    if not receipts:
        return _receipt_outcome(RECEIPT_NOT_NEEDED)
    return _receipt_outcome(_send_receipt(*receipts[0]))


# --- status, assignee, unread, labels -------------------------------------------------------


@dataclass(frozen=True)
class ConversationChanges:
    """A triage of one or more conversations, already well-formed (the API's schema checked it)."""

    status: str | None = None  # one of CONVERSATION_STATUSES, or None to leave it
    snoozed_until: datetime | None = None  # with status 'snoozed': when it wakes (None: when the customer writes)
    assign: bool = False  # set the assignee to `assignee` (None unassigns)
    assignee: int | None = None
    mark_unread: bool = False
    labels: tuple[int, ...] | None = None  # replace the conversation's labels with these
    add_labels: tuple[int, ...] = ()
    remove_labels: tuple[int, ...] = ()


def update_conversation(conversation_id: int, changes: ConversationChanges, agent_id: int | None = None) -> None:
    """Apply a triage to one conversation (see `update_conversations`)."""
    update_conversations([conversation_id], changes, agent_id)


def update_conversations(
    conversation_ids: Sequence[int], changes: ConversationChanges, agent_id: int | None = None, *, bulk: bool = False
) -> list[int]:
    """Apply a triage — status, assignee (an active agent or nobody), mark unread, labels — to
    every conversation named, in one transaction: all or nothing. Returns the ids, each once.

    Snoozing (status `snoozed`, with `snoozed_until` a future time or None: until the customer
    writes) and any other status on a snoozed conversation leave an event in the thread
    (app/services/snooze.py). `updated_at` moves; `last_activity_at` does not, so triage never
    reorders the list (it is sorted by the conversation's last message).
    """
    if changes.status is not None and changes.status not in CONVERSATION_STATUSES:
        raise Invalid(f"'status' must be one of {', '.join(CONVERSATION_STATUSES)}.", field="status")
    now = datetime.now(UTC)
    if changes.snoozed_until is not None:
        if changes.status != SNOOZED:
            raise Invalid("'snoozed_until' goes only with the status snoozed.", field="snoozed_until")
        problem = snooze_time_problem(changes.snoozed_until, now)
        if problem:
            raise Invalid(f"'snoozed_until' {problem}", field="snoozed_until")
    ids = _lock_conversations(conversation_ids, bulk=bulk)
    assignee = changes.assignee if changes.assign else None
    if assignee is not None:
        active = db.session.execute(select(Agent.id).where(Agent.id == assignee, Agent.active.is_(True))).first()
        if active is None:
            db.session.rollback()
            raise Invalid(f"'assignee' {assignee} is not an active agent.", field="assignee")
    try:
        if changes.labels is not None:
            label_service.require_labels(changes.labels, field="labels")
        label_service.require_labels((*changes.add_labels, *changes.remove_labels), field="label_id")
    except Invalid:
        db.session.rollback()
        raise
    values: dict[str, Any] = {"updated_at": func.now()}
    if changes.mark_unread:
        values["unread_count"] = _flag_newest_unread(ids, bulk=bulk)
    if changes.status is not None:
        values["status"] = changes.status
        values["snoozed_until"] = changes.snoozed_until if changes.status == SNOOZED else None
        _record_snooze_events(ids, changes, agent_id, now)
        report_facts.status_changed(db.session, ids, changes.status, agent_id, assign=changes.assign, assignee=assignee)
        if changes.status == "resolved":
            values["awaiting_reply_since"] = None  # the wait ends unanswered (see report_facts)
        else:
            values["opened_at"] = case((Conversation.status == "resolved", func.now()), else_=Conversation.opened_at)
    if changes.assign:
        values["assignee_id"] = assignee
    db.session.execute(update(Conversation).where(Conversation.id.in_(ids)).values(**values))
    if changes.labels is not None:
        label_service.set_conversation_labels(ids, list(dict.fromkeys(changes.labels)), agent_id)
    label_service.add_conversation_labels(ids, list(dict.fromkeys(changes.add_labels)), agent_id)
    if changes.remove_labels:
        label_service.remove_conversation_labels(ids, list(changes.remove_labels))
    db.session.commit()
    return ids


def _record_snooze_events(ids: list[int], changes: ConversationChanges, agent_id: int | None, now: datetime) -> None:
    """The thread's events for a status change of these (locked) conversations, before it is
    written: "snoozed until …" for a snooze, "woke up" for those it takes out of a snooze."""
    if changes.status == SNOOZED:
        chosen = select(Conversation.id).where(Conversation.id.in_(ids))
        payload = snoozed_payload(changes.snoozed_until)
    else:
        chosen = select(Conversation.id).where(Conversation.id.in_(ids), Conversation.status == SNOOZED)
        payload = woke_payload(WOKE_BY_AGENT)
    db.session.execute(insert_events(chosen, payload, agent_id=by_agent(agent_id), sent_at=at_time(now)))


def _flag_newest_unread(ids: list[int], *, bulk: bool) -> Any:
    """Flag each conversation's newest customer message unread again; the new `unread_count`
    (an SQL expression: one more when that message had been read, else at least 1)."""
    newest = {row.conversation_id: row for row in _newest_customer_messages(ids)}
    silent = [conversation_id for conversation_id in ids if conversation_id not in newest]
    if silent:
        db.session.rollback()
        if not bulk:
            raise Conflict(
                "The customer has not written in this conversation: nothing to mark unread.",
                code="nothing_to_mark_unread",
            )
        raise Conflict(
            f"The customer has not written in conversation {', '.join(map(str, silent))}: nothing to mark unread.",
            code="nothing_to_mark_unread",
            unknown=silent,
        )
    flipped = [row.conversation_id for row in newest.values() if row.is_read]
    if flipped:
        db.session.execute(
            update(Message).where(Message.id.in_([newest[cid].id for cid in flipped])).values(is_read=False)
        )
    return case(
        (Conversation.id.in_(flipped), Conversation.unread_count + 1),
        else_=func.greatest(Conversation.unread_count, 1),
    )


# --- bulk actions ---------------------------------------------------------------------------

MAX_BULK_IDS = 100
BULK_ACTIONS = ("assign", "unassign", "resolve", "reopen", "pending", "snooze", "label", "unlabel", "read", "unread")


@dataclass
class BulkResult:
    ids: list[int]
    read_receipts: dict[str, int] | None = None  # for `read`: receipts sent, failed, not needed


def bulk_update(
    conversation_ids: Sequence[int],
    action: str,
    *,
    agent_id: int,
    assignee_id: int | None = None,
    label_id: int | None = None,
    snoozed_until: datetime | None = None,
) -> BulkResult:
    """One action on up to `MAX_BULK_IDS` conversations, all or nothing in one transaction: an
    unknown conversation, agent or label changes nothing. The same rules as the single actions
    (`update_conversation`, `mark_read`)."""
    if action not in BULK_ACTIONS:
        raise Invalid(f"'action' must be one of {', '.join(BULK_ACTIONS)}.", field="action")
    if action == "read":
        return _bulk_read(conversation_ids)
    if action == "assign" and assignee_id is None:
        raise Invalid("'assignee_id' is required to assign.", field="assignee_id")
    if action in ("label", "unlabel") and label_id is None:
        raise Invalid("'label_id' is required to label or unlabel.", field="label_id")
    if snoozed_until is not None and action != "snooze":
        raise Invalid("'snoozed_until' goes only with the action snooze.", field="snoozed_until")
    label = (label_id,) if label_id is not None else ()
    changes = {
        "assign": ConversationChanges(assign=True, assignee=assignee_id),
        "unassign": ConversationChanges(assign=True, assignee=None),
        "resolve": ConversationChanges(status="resolved"),
        "reopen": ConversationChanges(status="open"),
        "pending": ConversationChanges(status="pending"),
        "snooze": ConversationChanges(status=SNOOZED, snoozed_until=snoozed_until),
        "label": ConversationChanges(add_labels=label),
        "unlabel": ConversationChanges(remove_labels=label),
        "unread": ConversationChanges(mark_unread=True),
    }[action]
    try:
        return BulkResult(ids=update_conversations(conversation_ids, changes, agent_id, bulk=True))
    except Invalid as error:
        if error.field == "assignee":  # the bulk body names it `assignee_id`
            raise Invalid(error.message.replace("'assignee'", "'assignee_id'"), field="assignee_id") from None
        raise


def _bulk_read(conversation_ids: Sequence[int]) -> BulkResult:
    ids = _lock_conversations(conversation_ids, bulk=True)
    receipts = _mark_read_locally(ids)
    db.session.commit()  # the local read stands whatever Graph answers
    outcomes = [_send_receipt(*receipt) for receipt in receipts]
    counts = {
        RECEIPT_SENT: outcomes.count(RECEIPT_SENT),
        RECEIPT_FAILED: outcomes.count(RECEIPT_FAILED),
        RECEIPT_NOT_NEEDED: len(ids) - len(outcomes),
    }
    for result, count in counts.items():
        if count:
            READ_RECEIPTS.labels(result=result).inc(count)
    return BulkResult(ids=ids, read_receipts=counts)


# --- private notes --------------------------------------------------------------------------


def add_note(conversation_id: int, agent_id: int, text: str) -> int:
    """Store a private note; returns its message id.

    Notes are shown to agents in the thread but never sent, never the conversation's last
    message or preview, and never touch the unread count or the 24-hour window. The agents it
    mentions (`@name`, app/whatsapp/mentions.py) get a mention in the same transaction.
    """
    now = datetime.now(UTC)
    # Before the note is stored: a conversation that is not there is a 404, not a foreign key error.
    touched = touch_conversation(
        db.session, conversation_id, None, message_type=NOTE_TYPE, sender="agent", direction="out", sent_at=now
    )
    if not touched:
        raise _not_found()
    note = Message(
        conversation_id=conversation_id,
        direction="out",
        sender="agent",
        agent_id=agent_id,
        type=NOTE_TYPE,
        text=text,
        sent_at=now,
        status=None,
        is_read=True,
    )
    db.session.add(note)
    db.session.flush()  # its id, for the mentions recorded in the same transaction
    record_mentions(db.session, note)
    db.session.commit()
    return note.id


# --- canned responses -----------------------------------------------------------------------


def _canned_select() -> Select:
    return select(CannedResponse, Agent.name.label("created_by_name")).outerjoin(
        Agent, Agent.id == CannedResponse.created_by_id
    )


def list_canned_responses(q: str | None) -> list[Any]:
    """Every canned response, by short code; `q` keeps those whose short code or text starts
    with it (case-insensitive)."""
    query = _canned_select().order_by(CannedResponse.short_code, CannedResponse.id)
    if q:
        prefix = escape_like(q.lower()) + "%"
        query = query.where(
            func.lower(CannedResponse.short_code).like(prefix, escape="\\")
            | func.lower(CannedResponse.text).like(prefix, escape="\\")
        )
    return list(db.session.execute(query).all())


def create_canned_response(agent_id: int, short_code: str, text: str) -> Any:
    """Store a canned response; its short code is kept lower-case and unique regardless of case."""
    short_code = short_code.lower()
    new_id = db.session.execute(
        insert(CannedResponse)
        .values(short_code=short_code, text=text, created_by_id=agent_id)
        .on_conflict_do_nothing()
        .returning(CannedResponse.id)
    ).scalar()
    if new_id is None:
        db.session.rollback()
        raise Conflict(f"A canned response with short code '{short_code}' already exists.", code="duplicate_short_code")
    db.session.commit()
    return db.session.execute(_canned_select().where(CannedResponse.id == new_id)).one()


def delete_canned_response(canned_id: int, by: Agent) -> None:
    """Remove a canned response: its author or an admin may; anyone else is `Forbidden`
    (nothing is removed). One whose author's account is gone (`created_by_id` NULL) is an
    admin's to remove."""
    author = db.session.execute(
        select(CannedResponse.created_by_id).where(CannedResponse.id == canned_id).with_for_update()
    ).first()
    if author is None:
        raise _not_found("Canned response")
    if not by.is_admin and author.created_by_id != by.id:
        db.session.rollback()
        raise Forbidden("Only its author or an admin can delete a canned response.")
    db.session.execute(delete(CannedResponse).where(CannedResponse.id == canned_id))
    db.session.commit()

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.metrics import READ_RECEIPTS
from app.models import Agent, BusinessNumber, CannedResponse, Conversation, Message
from app.models.conversations import CONVERSATION_STATUSES
from app.models.messages import HIDDEN_TYPES, NOTE_TYPE
from app.services.conversations import escape_like
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.services.graph_factory import graph_client
from app.services.summaries import touch_conversation
from app.whatsapp.graph_client import GraphError

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


def _lock_conversation(conversation_id: int) -> Conversation:
    """The conversation, locked until commit: marking read and unread serialise with ingest."""
    conversation = db.session.execute(
        select(Conversation).where(Conversation.id == conversation_id).with_for_update()
    ).scalar_one_or_none()
    if conversation is None:
        raise _not_found()
    return conversation


def _newest_customer_message(conversation_id: int) -> Any:
    """The newest message the customer wrote that counts as unread (reactions, edits and
    deletions do not), with its wamid and read flag; None when the customer never wrote."""
    return db.session.execute(
        select(Message.id, Message.wamid, Message.is_read)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == "in",
            Message.sender == "customer",
            Message.type.not_in(HIDDEN_TYPES),
        )
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(1)
    ).first()


# --- marking read ---------------------------------------------------------------------------


def mark_read(conversation_id: int) -> ReadResult:
    """Mark every inbound message read and tell Meta (blue ticks).

    A receipt is sent only when this call found an unread customer message: calling it again
    sends nothing (`not_needed`), and a receipt that failed is not repeated — the next
    customer message, once read, gets a receipt that covers every earlier one on WhatsApp.
    """
    conversation = _lock_conversation(conversation_id)
    flipped = db.session.execute(
        update(Message)
        .where(Message.conversation_id == conversation_id, Message.direction == "in", Message.is_read.is_(False))
        .values(is_read=True)
        .returning(Message.sender, Message.type)
    ).all()
    conversation.unread_count = 0
    receipt_for: tuple[str, str] | None = None
    if any(row.sender == "customer" and row.type not in HIDDEN_TYPES for row in flipped):
        newest = _newest_customer_message(conversation_id)
        if newest is not None and newest.wamid:
            phone_number_id = db.session.execute(
                select(BusinessNumber.phone_number_id).where(BusinessNumber.id == conversation.business_number_id)
            ).scalar_one()
            receipt_for = (phone_number_id, newest.wamid)
    db.session.commit()  # the local read stands whatever Graph answers; the connection is released

    if receipt_for is None:
        return _receipt_outcome(RECEIPT_NOT_NEEDED)
    phone_number_id, wamid = receipt_for
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
        return _receipt_outcome(RECEIPT_FAILED)
    return _receipt_outcome(RECEIPT_SENT)


# --- status, assignee, unread ---------------------------------------------------------------


@dataclass(frozen=True)
class ConversationChanges:
    """A triage of one conversation, already well-formed (the API's schema checked it)."""

    status: str | None = None  # one of CONVERSATION_STATUSES, or None to leave it
    assign: bool = False  # set the assignee to `assignee` (None unassigns)
    assignee: int | None = None
    mark_unread: bool = False


def update_conversation(conversation_id: int, changes: ConversationChanges) -> None:
    """Apply a triage: status, assignee (an active agent or nobody), mark unread.

    All or nothing. `updated_at` moves; `last_activity_at` does not, so triage never reorders
    the list (it is sorted by the conversation's last message).
    """
    if changes.status is not None and changes.status not in CONVERSATION_STATUSES:
        raise Invalid(f"'status' must be one of {', '.join(CONVERSATION_STATUSES)}.", field="status")
    assignee = changes.assignee if changes.assign else None
    conversation = _lock_conversation(conversation_id)
    if assignee is not None:
        active = db.session.execute(select(Agent.id).where(Agent.id == assignee, Agent.active.is_(True))).first()
        if active is None:
            raise Invalid(f"'assignee' {assignee} is not an active agent.", field="assignee")
    newest = None
    if changes.mark_unread:
        newest = _newest_customer_message(conversation_id)
        if newest is None:
            raise Conflict(
                "The customer has not written in this conversation: nothing to mark unread.",
                code="nothing_to_mark_unread",
            )

    values: dict[str, Any] = {"updated_at": func.now()}
    if changes.status is not None:
        values["status"] = changes.status
    if changes.assign:
        values["assignee_id"] = assignee
    if newest is not None and newest.is_read:
        db.session.execute(update(Message).where(Message.id == newest.id).values(is_read=False))
        values["unread_count"] = Conversation.unread_count + 1
    elif newest is not None:
        values["unread_count"] = func.greatest(Conversation.unread_count, 1)
    db.session.execute(update(Conversation).where(Conversation.id == conversation.id).values(**values))
    db.session.commit()


# --- private notes --------------------------------------------------------------------------


def add_note(conversation_id: int, agent_id: int, text: str) -> int:
    """Store a private note; returns its message id.

    Notes are shown to agents in the thread but never sent, never the conversation's last
    message or preview, and never touch the unread count or the 24-hour window.
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

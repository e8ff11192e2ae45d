"""Idempotent persistence of a parsed webhook delivery: the raw body, business numbers,
contacts, conversations, messages and statuses.

`ingest_delivery()` runs inside the caller's transaction and never commits: the inbound
service (`app/services/inbound.py`) commits once, after the raw delivery and every message and
status in it are written, and only then answers 200. Duplicates are stopped by unique
constraints with `INSERT … ON CONFLICT`, never by a read-then-write check, so concurrent
redeliveries of the same message leave exactly one row. Each stored message moves its
conversation's summary by the one rule in `app/services/summaries.py`; statuses go through
`app/services/statuses.py`.

The statements of the message path are built once, at import, and run with bound parameters
on the session's Connection: building a SQLAlchemy statement with its literal values on each
call, and the ORM session's execute path, cost several times what PostgreSQL spends running
them (bench/RESULTS.md, "Webhook ingest"). A customer's text from a known contact is two
statements and the commit: `RECEIVE` (the raw delivery kept, and the number, contact,
conversation and business-hours fingerprint found in the same round trip; whatever is missing
takes the find-or-create paths) and `store_message` (the message inserted, its conversation's
summary moved and its hour counter added in one statement, app/services/summaries.py). Both
run as server-side prepared statements (app/prepared.py): PostgreSQL plans them once per
connection instead of on every delivery.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Connection, Table, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from app.extensions import DbSession
from app.models import BusinessHours, BusinessNumber, Contact, Conversation, Message, WebhookDelivery
from app.prepared import PREPARED
from app.services.auto_replies import ReplyCheck
from app.services.business_hours import DIGEST
from app.services.statuses import apply_waiting_statuses, record_status
from app.services.summaries import store_message
from app.whatsapp.graph_client import is_media_id
from app.whatsapp.payloads import (
    KNOWN_STATUSES,
    MEDIA_TYPES,
    ParsedChange,
    ParsedContact,
    ParsedDelivery,
    ParsedMessage,
    ParsedStatus,
)

# --- the message path's statements, built once (bound parameters are named p_*) -------------

_deliveries = cast(Table, WebhookDelivery.__table__)
_numbers = cast(Table, BusinessNumber.__table__)
_contacts = cast(Table, Contact.__table__)
_conversations = cast(Table, Conversation.__table__)
_messages = cast(Table, Message.__table__)

INSERT_DELIVERY = (
    insert(_deliveries)
    .values(
        body_sha256=bindparam("p_body_sha256"),
        body=bindparam("p_body"),
        outcome=bindparam("p_outcome"),
        summary=bindparam("p_summary"),
    )
    .on_conflict_do_update(
        index_elements=[_deliveries.c.body_sha256],
        set_={"attempts": _deliveries.c.attempts + 1, "last_received_at": func.now()},
    )
    .returning(_deliveries.c.id, _deliveries.c.attempts)
)
_delivery = INSERT_DELIVERY.cte("delivery")
_number = _numbers.alias("number")
_contact = _contacts.alias("contact")
_conversation = _conversations.alias("conversation")
_hours = cast(Table, BusinessHours.__table__)
# The delivery's first statement: the raw delivery kept, and in the same round trip what its
# first message needs in the common case (a known number, contact and conversation) and the
# business-hours settings' fingerprint (app/services/business_hours.py). Anything not found (a
# NULL) takes the find-or-create paths below; `p_wa_id` NULL finds no contact.
RECEIVE = select(
    _delivery.c.id,
    _delivery.c.attempts,
    _number.c.id.label("number_id"),
    _number.c.display_phone_number,
    _contact.c.id.label("contact_id"),
    _contact.c.user_id,
    _contact.c.profile_name,
    _conversation.c.id.label("conversation_id"),
    DIGEST.label("hours_digest"),
).select_from(
    _delivery.outerjoin(_number, _number.c.phone_number_id == bindparam("p_phone_number_id"))
    .outerjoin(_contact, _contact.c.wa_id == bindparam("p_wa_id"))
    .outerjoin(
        _conversation,
        (_conversation.c.business_number_id == _number.c.id) & (_conversation.c.contact_id == _contact.c.id),
    )
    .outerjoin(_hours, _hours.c.id == 1)
)
SELECT_NUMBER = select(_numbers.c.id, _numbers.c.display_phone_number).where(
    _numbers.c.phone_number_id == bindparam("p_phone_number_id")
)
_CONTACT_COLUMNS = (_contacts.c.id, _contacts.c.user_id, _contacts.c.profile_name)
SELECT_CONTACT_BY_WA_ID = select(*_CONTACT_COLUMNS).where(_contacts.c.wa_id == bindparam("p_wa_id"))
SELECT_CONTACT_BY_USER_ID = select(*_CONTACT_COLUMNS).where(_contacts.c.user_id == bindparam("p_user_id"))
SELECT_CONVERSATION = select(_conversations.c.id).where(
    _conversations.c.business_number_id == bindparam("p_number_id"),
    _conversations.c.contact_id == bindparam("p_contact_id"),
)
MESSAGE_COLUMNS = (
    "wamid",
    "conversation_id",
    "direction",
    "sender",
    "type",
    "text",
    "media_id",
    "media_mime_type",
    "media_sha256",
    "media_filename",
    "media_state",
    "latitude",
    "longitude",
    "location_name",
    "location_address",
    "reply_to_wamid",
    "forwarded",
    "reaction_to_wamid",
    "reaction_emoji",
    "sent_at",
    "status",
    "error_code",
    "error_title",
    "error_details",
    "payload",
)
# The message inserted by the statement that moves its conversation's summary
# (app/services/summaries.py, `store_message`). SQLAlchemy fills the columns' Python-side
# defaults of a top-level INSERT only, not of one inside a CTE: they are written out here.
_DEFAULTS = {
    column.name: column.default.arg
    for column in _messages.columns
    if column.name not in MESSAGE_COLUMNS and isinstance(column.default, ScalarElementColumnDefault)
}
STORED_MESSAGE = (
    insert(_messages)
    .values({**{name: bindparam(f"p_{name}") for name in MESSAGE_COLUMNS}, **_DEFAULTS})
    .on_conflict_do_nothing(index_elements=[_messages.c.wamid])
    .returning(_messages.c.id)
    .cte("stored")
)


@dataclass
class IngestResult:
    delivery_id: int
    duplicate_delivery: bool
    messages_stored: int = 0
    messages_duplicate: int = 0
    statuses_applied: int = 0
    statuses_waiting: int = 0
    problems: list[str] = field(default_factory=list)
    stored_types: Counter[str] = field(default_factory=Counter)
    received_statuses: Counter[str] = field(default_factory=Counter)
    # Messages stored with `media_state = 'pending'`: the caller queues their fetch after commit.
    media_owed: list[int] = field(default_factory=list)
    # Automatic replies recorded as owed (app/services/auto_replies.py): queued after commit.
    replies_owed: list[int] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        if self.duplicate_delivery:
            return "duplicate"
        return "partial" if self.problems else "stored"


def ingest_delivery(session: DbSession, body: bytes, parsed: ParsedDelivery) -> IngestResult:
    received_at = datetime.now(UTC)
    digest = hashlib.sha256(body).hexdigest()
    summary = {
        "messages": parsed.message_count,
        "statuses": parsed.status_count,
        "other_fields": sorted(set(parsed.other_fields)),
        "problems": parsed.problems[:50],
    }
    outcome = "partial" if parsed.problems else "stored"
    first_change = next((c for c in parsed.changes if c.phone_number_id is not None), None)
    first_message = first_change.messages[0] if first_change is not None and first_change.messages else None
    first_contact = first_message.contact if first_message is not None else None
    # The hot path's statements run on the session's Connection: the ORM's execute path costs
    # more per statement than PostgreSQL spends on it (bench/RESULTS.md, "Webhook ingest").
    # Identical bodies are Meta's retries of a delivery whose transaction already committed
    # (the raw row and its messages commit together), so there is nothing left to apply.
    connection = session.connection()  # the transaction's, for all of the delivery
    row = connection.execute(
        RECEIVE,
        {
            "p_body_sha256": digest,
            "p_body": body.decode("utf-8"),
            "p_outcome": outcome,
            "p_summary": summary,
            "p_phone_number_id": first_change.phone_number_id if first_change is not None else None,
            "p_wa_id": first_contact.wa_id if first_contact is not None else None,
        },
        execution_options=PREPARED,
    ).one()
    result = IngestResult(delivery_id=row.id, duplicate_delivery=row.attempts > 1, problems=list(parsed.problems))
    if result.duplicate_delivery:
        return result

    numbers: dict[str, int] = {}
    known = _Known(connection)
    known.replies.knows_digest(row.hours_digest)
    if first_change is not None and row.number_id is not None:
        number_id = _known_number(session, first_change, row.number_id, row.display_phone_number)
        numbers[cast(str, first_change.phone_number_id)] = number_id
        if first_contact is not None and row.contact_id is not None:
            contact_id = _settle_contact(session, first_contact, row.contact_id, row.user_id, row.profile_name)
            known.contacts[first_contact] = contact_id
            if row.conversation_id is not None:
                known.conversations[(number_id, contact_id)] = row.conversation_id
    for change in parsed.changes:
        if change.phone_number_id is None:
            continue
        if change.phone_number_id not in numbers:
            numbers[change.phone_number_id] = _business_number_id(session, change)
        number_id = numbers[change.phone_number_id]
        for message in change.messages:
            _store_message(session, number_id, message, received_at, result, known)
        for status in change.statuses:
            _store_status(session, status, result)
    return result


@dataclass
class _Known:
    """Contacts and conversations already found or created in this delivery's transaction
    (a batch often holds several messages of one customer), and the transaction's Connection."""

    connection: Connection
    contacts: dict[ParsedContact, int] = field(default_factory=dict)
    conversations: dict[tuple[int, int], int] = field(default_factory=dict)
    replies: ReplyCheck = field(default_factory=ReplyCheck)


def _known_number(session: DbSession, change: ParsedChange, number_id: int, display: str | None) -> int:
    """The number found, its display number kept current."""
    if change.display_phone_number and display != change.display_phone_number:
        session.execute(
            update(BusinessNumber)
            .where(BusinessNumber.id == number_id)
            .values(display_phone_number=change.display_phone_number)
        )
    return number_id


def _business_number_id(session: DbSession, change: ParsedChange) -> int:
    # No row lock on the hot path: every delivery names the same business number.
    existing = session.execute(SELECT_NUMBER, {"p_phone_number_id": change.phone_number_id}).first()
    if existing is not None:
        return _known_number(session, change, existing.id, existing.display_phone_number)
    inserted = session.execute(
        insert(BusinessNumber)
        .values(
            phone_number_id=change.phone_number_id,
            display_phone_number=change.display_phone_number,
            waba_id=change.waba_id,
        )
        .on_conflict_do_nothing(index_elements=[BusinessNumber.phone_number_id])
        .returning(BusinessNumber.id)
    ).scalar()
    if inserted is not None:
        return inserted
    return session.execute(
        select(BusinessNumber.id).where(BusinessNumber.phone_number_id == change.phone_number_id)
    ).scalar_one()


def contact_id_for(session: DbSession, contact: ParsedContact) -> int:
    """Find or create the contact: by `wa_id` when Meta sent one, else by `user_id`."""
    if contact.wa_id:
        found = session.execute(SELECT_CONTACT_BY_WA_ID, {"p_wa_id": contact.wa_id}).first()
        if found is None and contact.user_id:
            # A contact first seen by user_id only, now with its phone number: adopt it.
            found = session.execute(
                select(Contact.id, Contact.user_id, Contact.profile_name).where(
                    Contact.user_id == contact.user_id, Contact.wa_id.is_(None)
                )
            ).first()
            if found is not None:
                session.execute(update(Contact).where(Contact.id == found.id).values(wa_id=contact.wa_id))
    else:
        found = session.execute(SELECT_CONTACT_BY_USER_ID, {"p_user_id": contact.user_id}).first()

    if found is not None:
        return _settle_contact(session, contact, found.id, found.user_id, found.profile_name)

    user_id = contact.user_id
    if contact.wa_id and user_id and _user_id_taken(session, user_id):
        user_id = None  # held by another contact row; keep the identities apart
    key = Contact.wa_id if contact.wa_id else Contact.user_id
    inserted = session.execute(
        insert(Contact)
        .values(wa_id=contact.wa_id, user_id=user_id, profile_name=contact.name)
        .on_conflict_do_nothing()
        .returning(Contact.id)
    ).scalar()
    if inserted is not None:
        return inserted
    return session.execute(select(Contact.id).where(key == (contact.wa_id or contact.user_id))).scalar_one()


def _settle_contact(
    session: DbSession, contact: ParsedContact, contact_id: int, user_id: str | None, profile_name: str | None
) -> int:
    """The contact found, its profile name and user id kept current."""
    changes: dict[str, str] = {}
    if contact.name and contact.name != profile_name:
        changes["profile_name"] = contact.name
    if contact.user_id and user_id is None and not _user_id_taken(session, contact.user_id):
        changes["user_id"] = contact.user_id
    if changes:
        session.execute(update(Contact).where(Contact.id == contact_id).values(**changes))
    return contact_id


def _user_id_taken(session: DbSession, user_id: str) -> bool:
    return session.execute(select(Contact.id).where(Contact.user_id == user_id)).first() is not None


def conversation_id_for(session: DbSession, number_id: int, contact_id: int, started_at: datetime) -> int:
    where = (Conversation.business_number_id == number_id, Conversation.contact_id == contact_id)
    found = session.execute(SELECT_CONVERSATION, {"p_number_id": number_id, "p_contact_id": contact_id}).scalar()
    if found is not None:
        return found
    inserted = session.execute(
        insert(Conversation)
        .values(business_number_id=number_id, contact_id=contact_id, last_activity_at=started_at)
        .on_conflict_do_nothing(index_elements=[Conversation.business_number_id, Conversation.contact_id])
        .returning(Conversation.id)
    ).scalar()
    if inserted is not None:
        return inserted
    return session.execute(select(Conversation.id).where(*where)).scalar_one()


def _store_message(
    session: DbSession,
    number_id: int,
    message: ParsedMessage,
    received_at: datetime,
    result: IngestResult,
    known: _Known,
) -> None:
    sent_at = message.sent_at or received_at
    contact_id = known.contacts.get(message.contact)
    if contact_id is None:
        contact_id = known.contacts[message.contact] = contact_id_for(session, message.contact)
    conversation_id = known.conversations.get((number_id, contact_id))
    if conversation_id is None:
        conversation_id = conversation_id_for(session, number_id, contact_id, sent_at)
        known.conversations[(number_id, contact_id)] = conversation_id
    error = message.error
    # The work owed is recorded in the row itself, in this transaction (app/jobs/media.py).
    media_owed = message.type in MEDIA_TYPES and is_media_id(message.media_id)
    message_id = store_message(
        session,
        known.connection,
        STORED_MESSAGE,
        {
            "p_wamid": message.wamid,
            "p_conversation_id": conversation_id,
            "p_direction": message.direction,
            "p_sender": message.sender,
            "p_type": message.type,
            "p_text": message.text,
            "p_media_id": message.media_id,
            "p_media_mime_type": message.media_mime_type,
            "p_media_sha256": message.media_sha256,
            "p_media_filename": message.media_filename,
            "p_media_state": "pending" if media_owed else None,
            "p_latitude": message.latitude,
            "p_longitude": message.longitude,
            "p_location_name": message.location_name,
            "p_location_address": message.location_address,
            "p_reply_to_wamid": message.reply_to_wamid,
            "p_forwarded": message.forwarded,
            "p_reaction_to_wamid": message.reaction_to_wamid,
            "p_reaction_emoji": message.reaction_emoji,
            "p_sent_at": sent_at,
            "p_status": "sent" if message.direction == "out" else None,
            "p_error_code": error.code if error else None,
            "p_error_title": error.title if error else None,
            "p_error_details": error.details if error else None,
            "p_payload": message.payload,
        },
        conversation_id,
        message_type=message.type,
        sender=message.sender,
        direction=message.direction,
        sent_at=sent_at,
    )
    if message_id is None:
        result.messages_duplicate += 1
        return
    result.messages_stored += 1
    result.stored_types[message.type] += 1
    if media_owed:
        result.media_owed.append(message_id)

    if message.type == "edit" and message.target_wamid:
        session.execute(
            update(Message).where(Message.wamid == message.target_wamid).values(text=message.text, edited_at=sent_at)
        )
    elif message.type == "revoke" and message.target_wamid:
        session.execute(update(Message).where(Message.wamid == message.target_wamid).values(deleted_at=sent_at))

    if message.direction == "out":
        apply_waiting_statuses(session, message.wamid)
    result.replies_owed += known.replies.owed(
        session,
        conversation_id,
        message_id,
        direction=message.direction,
        sender=message.sender,
        message_type=message.type,
        sent_at=sent_at,
    )


def _store_status(session: DbSession, status: ParsedStatus, result: IngestResult) -> None:
    result.received_statuses[status.status if status.status in KNOWN_STATUSES else "other"] += 1
    applied = record_status(session, status)
    if applied is True:
        result.statuses_applied += 1
    elif applied is False:
        result.statuses_waiting += 1

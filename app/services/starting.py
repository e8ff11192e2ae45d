"""Starting a conversation: an approved template to a number an agent typed.

The window is closed for someone who never wrote, so only a template can open the
conversation. The sending guarantee holds (app/services/sending.py): the contact, the
conversation and the pending message are committed together *before* Graph is called, so a
crash leaves a visible pending message, never a message that went out with no trace.

The contact is stored under the typed number's E.164 digits (app/whatsapp/numbers.py), which is
all we know before Graph answers. Graph's answer names the `wa_id` Meta's webhooks will use for
that person (`contacts[0].wa_id`); it can differ from what was typed (Mexico's `52 1 …`,
Argentina's `54 9 …`, Brazil's ninth digit). When it does, the contact is re-keyed to it before
the send is recorded, or — when a contact with that `wa_id` already exists (a webhook raced
ahead, or the person wrote before under the other form) — merged into it: the new
conversation's messages move into that contact's conversation on this number, and the team's
name, notes and attributes fill in what the existing contact lacks. Either way the customer's
replies land in the conversation the agent sees.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.extensions import db
from app.models import BusinessNumber, Contact, Conversation, ConversationEvent, Message, SendAttempt
from app.services.errors import Conflict, DomainError, Invalid, NotConfigured
from app.services.graph_factory import graph_client
from app.services.sending import (
    Idempotency,
    KeptAnswer,
    OutgoingTemplate,
    SendOutcome,
    _Claim,
    _claim_key,
    _keep,
    _record_failure,
    _record_success,
    stage_pending,
)
from app.services.summaries import touch_conversation
from app.whatsapp.graph_client import GraphError
from app.whatsapp.numbers import InvalidPhoneNumber, whatsapp_digits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartRequest:
    """A new conversation (already well-formed: the API's schema checked it)."""

    phone: str
    name: str | None
    template: OutgoingTemplate


def request_hash(data: Any) -> str:
    """What an Idempotency-Key stands for when starting a conversation: the body as sent (never
    equal to a send's hash, so one key cannot stand for both)."""
    canonical = json.dumps({"start": data}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def phone_digits(phone: str) -> str:
    """The typed number as WhatsApp digits, read in `DEFAULT_PHONE_REGION` when it has no
    international prefix; Invalid (`invalid_phone`) otherwise."""
    try:
        return whatsapp_digits(phone, current_app.config.get("DEFAULT_PHONE_REGION") or "ES")
    except InvalidPhoneNumber as error:
        raise Invalid(str(error), field="phone", code="invalid_phone") from None


def start_conversation(
    agent_id: int, request: StartRequest, idempotency: Idempotency | None = None
) -> SendOutcome | KeptAnswer:
    """Create the contact and conversation, store the template pending, call Graph, re-key the
    contact by Meta's `wa_id`, record the outcome. Refusals (a bad number, an unknown template,
    an existing conversation: `conversation_exists` with its `conversation_id`) change nothing.

    With an Idempotency-Key, a repeated request gets the first one's kept answer (`KeptAnswer`).
    """
    claim: _Claim | None = None
    if idempotency is not None:
        claimed = _claim_key(agent_id, idempotency.key, idempotency.request_hash)
        if isinstance(claimed, KeptAnswer):
            return claimed
        claim = _Claim(claimed, idempotency.render)
    try:
        digits = phone_digits(request.phone)
        # A savepoint: a refusal undoes the contact and conversation, and keeps the key's claim.
        with db.session.begin_nested():
            number_id = _business_number_id()
            contact_id = _contact_for(digits, request.name)
            conversation_id = _new_conversation(number_id, contact_id)
            message_id, phone_number_id, payload = stage_pending(
                conversation_id, agent_id, request.template, claim.key_id if claim else None
            )
    except DomainError as refused:
        _keep(claim, refused)
        db.session.commit()
        raise
    db.session.commit()
    return _deliver(message_id, agent_id, contact_id, digits, phone_number_id, payload, claim)


def _business_number_id() -> int:
    """The number the business writes from: `WHATSAPP_PHONE_NUMBER_ID` (the one sends use), else
    the only business number the webhooks have seen."""
    phone_number_id = (current_app.config.get("WHATSAPP_PHONE_NUMBER_ID") or "").strip()
    if not phone_number_id:
        known = db.session.execute(select(BusinessNumber.id).limit(2)).scalars().all()
        if len(known) == 1:
            return known[0]
        raise NotConfigured(
            "Set WHATSAPP_PHONE_NUMBER_ID: the business number new conversations are started from.",
            setting="WHATSAPP_PHONE_NUMBER_ID",
        )
    inserted = db.session.execute(
        insert(BusinessNumber)
        .values(phone_number_id=phone_number_id, waba_id=current_app.config.get("WHATSAPP_BUSINESS_ACCOUNT_ID") or None)
        .on_conflict_do_nothing(index_elements=[BusinessNumber.phone_number_id])
        .returning(BusinessNumber.id)
    ).scalar()
    if inserted is not None:
        return inserted
    return db.session.execute(
        select(BusinessNumber.id).where(BusinessNumber.phone_number_id == phone_number_id)
    ).scalar_one()


def _contact_for(digits: str, name: str | None) -> int:
    """The contact with these digits as `wa_id`, created when new; `name` becomes the team's
    name for them unless they already have one."""
    inserted = db.session.execute(
        insert(Contact)
        .values(wa_id=digits, display_name=name)
        .on_conflict_do_nothing(index_elements=[Contact.wa_id], index_where=Contact.wa_id.is_not(None))
        .returning(Contact.id)
    ).scalar()
    if inserted is not None:
        return inserted
    contact_id = db.session.execute(select(Contact.id).where(Contact.wa_id == digits)).scalar_one()
    if name:
        db.session.execute(
            update(Contact).where(Contact.id == contact_id, Contact.display_name.is_(None)).values(display_name=name)
        )
    return contact_id


def _new_conversation(number_id: int, contact_id: int) -> int:
    inserted = db.session.execute(
        insert(Conversation)
        .values(business_number_id=number_id, contact_id=contact_id)
        .on_conflict_do_nothing(index_elements=[Conversation.business_number_id, Conversation.contact_id])
        .returning(Conversation.id)
    ).scalar()
    if inserted is not None:
        return inserted
    existing = db.session.execute(
        select(Conversation.id).where(
            Conversation.business_number_id == number_id, Conversation.contact_id == contact_id
        )
    ).scalar_one()
    raise Conflict(
        "There already is a conversation with this contact: open it and write there.",
        code="conversation_exists",
        conversation_id=existing,
    )


def _deliver(
    message_id: int,
    agent_id: int,
    contact_id: int,
    digits: str,
    phone_number_id: str,
    payload: dict[str, Any],
    claim: _Claim | None,
) -> SendOutcome:
    """sending's delivery, with the recipient's `wa_id` from Graph's answer applied before the
    outcome is recorded (and rendered for an Idempotency-Key)."""
    attempt = SendAttempt(message_id=message_id, agent_id=agent_id)
    db.session.add(attempt)
    db.session.commit()  # the attempt is on record before Graph is called
    attempt_id = attempt.id
    try:
        wamid, wa_id = graph_client().send_message_to(phone_number_id, payload)
    except GraphError as error:
        return _record_failure(message_id, attempt_id, error, claim)
    if wa_id and wa_id != digits:
        try:
            rekey_contact(contact_id, wa_id)
            db.session.commit()
        except SQLAlchemyError:
            # The message went out: its wamid is recorded whatever happened to the re-keying
            # (the contact keeps the typed number; a reply then starts a conversation of its own).
            db.session.rollback()
            log.exception("could not re-key contact %s to Meta's wa_id", contact_id)
    return _record_success(message_id, attempt_id, wamid, claim)


# --- re-keying a contact by Meta's wa_id ---------------------------------------------------------


def rekey_contact(contact_id: int, wa_id: str) -> int:
    """Give the contact Meta's `wa_id`, or merge it into the contact that already has it.
    Returns the contact that remains. Runs in the caller's transaction; never commits."""
    existing = _contact_with_wa_id(wa_id, contact_id)
    if existing is None:
        try:
            with db.session.begin_nested():
                db.session.execute(update(Contact).where(Contact.id == contact_id).values(wa_id=wa_id))
            log.info("contact %s re-keyed to Meta's wa_id", contact_id)
            return contact_id
        except IntegrityError:
            # A webhook stored that wa_id meanwhile: merge into its contact.
            existing = _contact_with_wa_id(wa_id, contact_id)
            if existing is None:
                raise
    merge_contact(contact_id, existing)
    log.info("contact %s merged into contact %s (Meta's wa_id)", contact_id, existing)
    return existing


def _contact_with_wa_id(wa_id: str, other_than: int) -> int | None:
    return db.session.execute(
        select(Contact.id).where(Contact.wa_id == wa_id, Contact.id != other_than).with_for_update()
    ).scalar()


def merge_contact(source_id: int, target_id: int) -> None:
    """Move everything of contact `source_id` to `target_id` and remove it: each conversation
    joins the target's conversation on the same business number (its messages move, the
    summary follows them) or becomes the target's; the team's fields fill what the target
    lacks. Never commits."""
    source = db.session.get(Contact, source_id, with_for_update=True)
    target = db.session.get(Contact, target_id, with_for_update=True)
    if source is None or target is None:
        return
    conversations = db.session.execute(
        select(Conversation.id, Conversation.business_number_id).where(Conversation.contact_id == source_id)
    ).all()
    for moved in conversations:
        into = db.session.execute(
            select(Conversation.id)
            .where(Conversation.contact_id == target_id, Conversation.business_number_id == moved.business_number_id)
            .with_for_update()
        ).scalar()
        if into is None:
            db.session.execute(update(Conversation).where(Conversation.id == moved.id).values(contact_id=target_id))
            continue
        _move_messages(moved.id, into)
    target.display_name = target.display_name or source.display_name
    target.notes = target.notes or source.notes
    target.attributes = {**(source.attributes or {}), **(target.attributes or {})}
    db.session.flush()
    db.session.execute(delete(Contact).where(Contact.id == source_id))


def _move_messages(source_conversation: int, target_conversation: int) -> None:
    """Every message of one conversation into another, the summary moved by the one rule."""
    moved = db.session.execute(
        update(Message)
        .where(Message.conversation_id == source_conversation)
        .values(conversation_id=target_conversation)
        .returning(Message.id, Message.type, Message.sender, Message.direction, Message.sent_at, Message.agent_id)
    ).all()
    for message in sorted(moved, key=lambda m: (m.sent_at, m.id)):
        touch_conversation(
            db.session,
            target_conversation,
            message.id,
            message_type=message.type,
            sender=message.sender,
            direction=message.direction,
            sent_at=message.sent_at,
            agent_id=message.agent_id,
            record=False,  # its report facts were recorded when it was first stored: they move below
        )
    db.session.execute(
        update(ConversationEvent)
        .where(ConversationEvent.conversation_id == source_conversation)
        .values(conversation_id=target_conversation)
    )
    db.session.execute(delete(Conversation).where(Conversation.id == source_conversation))

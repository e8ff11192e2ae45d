"""Agents' reactions to a customer's message: an emoji sent through Graph, or its removal.

A reaction is a message of its own (`type = 'reaction'`, outbound, `reaction_to_wamid` and
`reaction_emoji`, NULL for a removal), so it has every guarantee a text has
(app/services/sending.py): it is stored `pending` and committed (with the `Idempotency-Key`
claimed) before Graph is called with no connection held; Graph's answer makes it `accepted`
with its wamid or `failed` with Meta's code, and status webhooks move it on (Meta reports only
`sent` for reactions, or `failed` with 131009). The business has one reaction per message, as
on the customer's phone: the latest one not refused replaces the earlier (see
`conversations._reactions_for`). Asking for the reaction already shown — the same emoji, or a
removal when there is none — sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from app.extensions import db
from app.models import IdempotencyKey, Message
from app.models.messages import HIDDEN_TYPES
from app.services.conversations import business_reaction
from app.services.errors import Conflict, DomainError, NotFound
from app.services.sending import (
    Idempotency,
    KeptAnswer,
    SendOutcome,
    _Claim,
    _claim_key,
    _deliver,
    _keep,
    _load_target,
    _window_refusal,
)
from app.services.summaries import touch_conversation
from app.whatsapp.rules import reaction_refusal, window_open


@dataclass(frozen=True)
class Unchanged(SendOutcome):
    """The business's reaction already was what was asked for: nothing was stored or sent.
    `message_id` is the message reacted to."""


def react(
    conversation_id: int,
    message_id: int,
    agent_id: int,
    emoji: str | None,
    idempotency: Idempotency | None = None,
) -> SendOutcome | KeptAnswer:
    """Set the business's reaction to `message_id` to `emoji` (None removes it): store it
    pending, call Graph, record the outcome (the reaction's `SendOutcome`), or `Unchanged`. A
    replayed Idempotency-Key answers the first request's kept answer."""
    claim: _Claim | None = None
    if idempotency is not None:
        claimed = _claim_key(agent_id, idempotency.key, idempotency.request_hash)
        if isinstance(claimed, KeptAnswer):
            return claimed
        claim = _Claim(claimed, idempotency.render)
    try:
        staged = _stage(conversation_id, message_id, agent_id, emoji, claim.key_id if claim else None)
    except DomainError as refused:
        _keep(claim, refused)
        db.session.commit()
        raise
    if isinstance(staged, Unchanged):
        kept = _keep(claim, staged)
        db.session.commit()
        return Unchanged(staged.message_id, kept=kept)
    reaction_id, phone_number_id, payload = staged
    db.session.commit()
    return _deliver(reaction_id, agent_id, phone_number_id, payload, claim)


def _stage(
    conversation_id: int, message_id: int, agent_id: int, emoji: str | None, key_id: int | None
) -> tuple[int, str, dict[str, Any]] | Unchanged:
    """Check and add the pending reaction in the open transaction (the conversation locked, so two
    agents reacting at once are ordered): (its id, the business number, Graph's payload)."""
    target = _load_target(conversation_id, lock=True)
    conversation = target.conversation
    message = db.session.execute(
        select(Message).where(
            Message.id == message_id,
            Message.conversation_id == conversation_id,
            Message.type.not_in(HIDDEN_TYPES),
        )
    ).scalar_one_or_none()
    if message is None:
        raise NotFound("No such message in this conversation.")
    refusal = reaction_refusal(
        direction=message.direction,
        sender=message.sender,
        wamid=message.wamid,
        deleted=message.deleted_at is not None,
        sent_at=message.sent_at,
    )
    if refusal is not None:
        raise Conflict(refusal, code="not_reactable")
    if not target.wa_id:
        raise Conflict("This contact has no WhatsApp number.", code="contact_unreachable")
    if not window_open(conversation.last_customer_message_at):
        raise _window_refusal(conversation)
    assert message.wamid is not None  # reaction_refusal checked it
    if business_reaction(db.session, message.wamid) == emoji:
        return Unchanged(message.id)
    payload: dict[str, Any] = {
        "to": target.wa_id,
        "type": "reaction",
        "reaction": {"message_id": message.wamid, "emoji": emoji or ""},
    }
    now = datetime.now(UTC)
    reaction = Message(
        conversation_id=conversation.id,
        direction="out",
        sender="agent",
        agent_id=agent_id,
        type="reaction",
        reaction_to_wamid=message.wamid,
        reaction_emoji=emoji,
        sent_at=now,
        status="pending",
        payload=payload,
    )
    db.session.add(reaction)
    db.session.flush()
    touch_conversation(
        db.session, conversation.id, reaction.id, message_type="reaction", sender="agent", direction="out", sent_at=now
    )
    if key_id is not None:
        db.session.execute(update(IdempotencyKey).where(IdempotencyKey.id == key_id).values(message_id=reaction.id))
    return reaction.id, target.phone_number_id, payload


def reaction_of(reaction_id: int) -> Message:
    """A stored reaction (for the answer)."""
    reaction = db.session.get(Message, reaction_id)
    if reaction is None or reaction.type != "reaction":
        raise NotFound("No such reaction.")
    return reaction

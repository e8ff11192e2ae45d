"""Sending agents' messages through Graph without losing or doubling any of them.

The order is what makes it safe:
1. the message is stored as `pending` (and an `Idempotency-Key`, when given, is claimed) and
   committed — before Graph is called, so a crash leaves a visible pending message, never
   a message that went out with no trace;
2. Graph is called with no database connection held;
3. Graph's answer is recorded: the wamid (`accepted`) or `failed` with Meta's code and reason,
   plus the attempt, in a second transaction. Statuses that raced ahead of Graph's answer
   (kept in `status_events`) are applied then.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import BusinessNumber, Contact, Conversation, IdempotencyKey, Message, MessageTemplate, SendAttempt
from app.services.errors import Conflict, DomainError, Invalid, KeyReused, NotFound, WindowClosed
from app.services.graph_factory import graph_client
from app.services.statuses import apply_waiting_statuses
from app.services.summaries import touch_conversation
from app.storage import StorageError, media_storage
from app.storage.base import CHUNK_SIZE
from app.whatsapp.graph_client import WINDOW_CLOSED, GraphError, is_media_id
from app.whatsapp.media_rules import send_by_id
from app.whatsapp.payloads import MEDIA_TYPES
from app.whatsapp.rules import template_graph_payload, window_expires_at, window_open

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)
IDEMPOTENCY_WAIT_SECONDS = 20.0
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass(frozen=True)
class SendOutcome:
    """A message that was stored and handed to Graph: accepted (`error` is None) or failed
    with Meta's error (the message is stored `failed`)."""

    message_id: int
    error: GraphError | None = None
    # What the caller's renderer made of this outcome when an Idempotency-Key was given: the
    # answer kept for replays, in the same transaction as the outcome.
    kept: KeptAnswer | None = None

    @property
    def window_closed(self) -> bool:
        """Meta refused free text because the 24-hour window had closed (131047)."""
        return self.error is not None and self.error.code == WINDOW_CLOSED


@dataclass(frozen=True)
class KeptAnswer:
    """The answer the caller rendered for the first request with an Idempotency-Key. The
    service stores and returns it as it was given: it knows nothing of what it means."""

    status: int
    body: dict[str, Any]


# The caller's renderer: how a send's outcome (or refusal) is answered, kept for replays.
Render = Callable[[SendOutcome | DomainError], KeptAnswer]


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key for one send: the key, a hash of the request it stands for, and how
    the caller answers the outcome (rendered inside the transaction that records it)."""

    key: str
    request_hash: str
    render: Render


# --- what is sent (already well-formed: the API's schema checked it) -------------------------


@dataclass
class OutgoingText:
    text: str
    reply_to: int | None


@dataclass
class OutgoingTemplate:
    name: str
    language: str
    parameters: dict[str, str]
    reply_to: int | None = None


def _template_payload(template: MessageTemplate, parameters: dict[str, str]) -> tuple[dict[str, Any], str]:
    """Graph's template object and the body text as the customer will read it."""
    return template_graph_payload(template.name, template.language, template.components, parameters)


# --- idempotency ---------------------------------------------------------------------------


def request_hash(conversation_id: int, data: Any) -> str:
    """What an Idempotency-Key stands for: the conversation and the request body as sent."""
    canonical = json.dumps({"conversation": conversation_id, "body": data}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim_key(agent_id: int, key: str, request_hash: str) -> KeptAnswer | int:
    """Claim `key` for this request (returns the key row id) or return the first request's answer."""
    if not _KEY_PATTERN.match(key):
        raise Invalid(
            "Idempotency-Key must be 1–255 visible ASCII characters.",
            field="Idempotency-Key",
            code="invalid_idempotency_key",
        )
    deadline = time.monotonic() + IDEMPOTENCY_WAIT_SECONDS
    while True:
        claimed = db.session.execute(
            insert(IdempotencyKey)
            .values(agent_id=agent_id, key=key, request_hash=request_hash)
            .on_conflict_do_nothing(index_elements=[IdempotencyKey.agent_id, IdempotencyKey.key])
            .returning(IdempotencyKey.id)
        ).scalar()
        if claimed is not None:
            return claimed
        existing = db.session.execute(
            select(IdempotencyKey).where(IdempotencyKey.agent_id == agent_id, IdempotencyKey.key == key)
        ).scalar_one_or_none()
        db.session.rollback()
        if existing is None:
            continue  # expired and removed meanwhile: claim again
        if existing.created_at < datetime.now(UTC) - IDEMPOTENCY_TTL:
            db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == existing.id))
            db.session.commit()
            continue
        if existing.request_hash != request_hash:
            raise KeyReused("This Idempotency-Key was used for a different request in the last 24 hours.")
        if existing.response_status is not None:
            return KeptAnswer(existing.response_status, existing.response_body or {})
        if time.monotonic() > deadline:
            raise Conflict("A request with this Idempotency-Key is still being sent.", code="request_in_progress")
        time.sleep(0.1)


@dataclass(frozen=True)
class _Claim:
    key_id: int
    render: Render


def _keep(claim: _Claim | None, outcome: SendOutcome | DomainError) -> KeptAnswer | None:
    """Store the caller's answer to `outcome` on the claimed key (inside the open transaction)."""
    if claim is None:
        return None
    answer = claim.render(outcome)
    db.session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claim.key_id)
        .values(response_status=answer.status, response_body=answer.body)
    )
    return answer


# --- sending -------------------------------------------------------------------------------


@dataclass
class _Target:
    conversation: Conversation
    wa_id: str | None
    phone_number_id: str


def _load_target(conversation_id: int, *, lock: bool) -> _Target:
    query = (
        select(Conversation, Contact.wa_id, BusinessNumber.phone_number_id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .join(BusinessNumber, BusinessNumber.id == Conversation.business_number_id)
        .where(Conversation.id == conversation_id)
    )
    if lock:
        query = query.with_for_update(of=Conversation)
    row = db.session.execute(query).first()
    if row is None:
        raise NotFound("Conversation not found.")
    return _Target(row.Conversation, row.wa_id, row.phone_number_id)


def _window_refusal(conversation: Conversation) -> WindowClosed:
    expired = window_expires_at(conversation.last_customer_message_at)
    return WindowClosed(
        "More than 24 hours have passed since the customer last wrote: WhatsApp only accepts an approved "
        "template now. Send a template instead.",
        window_expires_at=expired.isoformat().replace("+00:00", "Z") if expired else None,
    )


def send(
    conversation_id: int,
    agent_id: int,
    request: OutgoingText | OutgoingTemplate,
    idempotency: Idempotency | None = None,
) -> SendOutcome | KeptAnswer:
    """Store as pending, call Graph, record the outcome.

    With an Idempotency-Key, the first request's kept answer is returned instead of sending
    again (a `KeptAnswer`), and this request's outcome — or its refusal — is kept on the key
    in the transaction that records it.
    """
    claim: _Claim | None = None
    if idempotency is not None:
        claimed = _claim_key(agent_id, idempotency.key, idempotency.request_hash)
        if isinstance(claimed, KeptAnswer):
            return claimed
        claim = _Claim(claimed, idempotency.render)
    try:
        message_id, phone_number_id, payload = _store_pending(
            conversation_id, agent_id, request, claim.key_id if claim else None
        )
    except DomainError as refused:
        _keep(claim, refused)
        db.session.commit()
        raise
    return _deliver(message_id, agent_id, phone_number_id, payload, claim)


def _store_pending(
    conversation_id: int, agent_id: int, request: OutgoingText | OutgoingTemplate, key_id: int | None
) -> tuple[int, str, dict[str, Any]]:
    staged = stage_pending(conversation_id, agent_id, request, key_id)
    db.session.commit()
    return staged


def stage_pending(
    conversation_id: int, agent_id: int, request: OutgoingText | OutgoingTemplate, key_id: int | None
) -> tuple[int, str, dict[str, Any]]:
    """Check and add the pending message (and point the claimed key at it) in the open
    transaction, without committing: (message id, business number's phone_number_id, Graph payload).
    Starting a conversation (app/services/starting.py) stages it beside the new conversation."""
    target = _load_target(conversation_id, lock=True)
    conversation = target.conversation
    if not target.wa_id:
        raise Conflict(
            "This contact has no WhatsApp number (only a username id); replying to it is not supported yet.",
            code="contact_unreachable",
        )
    payload: dict[str, Any] = {"to": target.wa_id}
    reply_wamid = None
    if request.reply_to is not None:
        reply_wamid = db.session.execute(
            select(Message.wamid).where(Message.id == request.reply_to, Message.conversation_id == conversation.id)
        ).scalar()
        if not reply_wamid:
            raise Invalid("'reply_to' must be the id of a message in this conversation.", field="reply_to")
        payload["context"] = {"message_id": reply_wamid}

    template_name = template_language = None
    if isinstance(request, OutgoingText):
        if not window_open(conversation.last_customer_message_at):
            raise _window_refusal(conversation)
        kind, text = "text", request.text
        payload.update(type="text", text={"preview_url": False, "body": request.text})
    else:
        template = db.session.execute(
            select(MessageTemplate).where(
                MessageTemplate.name == request.name,
                MessageTemplate.language == request.language,
                MessageTemplate.status == "APPROVED",
            )
        ).scalar_one_or_none()
        if template is None:
            raise Invalid(
                f"No approved template '{request.name}' in language '{request.language}'. "
                "Sync templates with `flask --app wsgi templates sync`.",
                field="template",
                code="unknown_template",
            )
        missing = [p for p in template.placeholders if not str(request.parameters.get(p, "")).strip()]
        if missing:
            raise Invalid(
                "Fill every placeholder of the template: " + ", ".join(missing),
                field="template.parameters",
                code="missing_parameters",
                missing=missing,
            )
        template_payload, text = _template_payload(template, request.parameters)
        kind, template_name, template_language = "template", template.name, template.language
        payload.update(type="template", template=template_payload)

    now = datetime.now(UTC)
    message = Message(
        conversation_id=conversation.id,
        direction="out",
        sender="agent",
        agent_id=agent_id,
        type=kind,
        text=text,
        reply_to_wamid=reply_wamid,
        sent_at=now,
        status="pending",
        template_name=template_name,
        template_language=template_language,
        payload=payload,
    )
    db.session.add(message)
    db.session.flush()
    touch_conversation(
        db.session,
        conversation.id,
        message.id,
        message_type=kind,
        sender="agent",
        direction="out",
        sent_at=now,
        agent_id=agent_id,
    )
    if key_id is not None:
        db.session.execute(update(IdempotencyKey).where(IdempotencyKey.id == key_id).values(message_id=message.id))
    return message.id, target.phone_number_id, payload


def _deliver(
    message_id: int, agent_id: int | None, phone_number_id: str, payload: dict[str, Any], claim: _Claim | None
) -> SendOutcome:
    attempt = SendAttempt(message_id=message_id, agent_id=agent_id)
    db.session.add(attempt)
    db.session.flush()
    attempt_id = attempt.id  # read before the commit: after it, reading it would reopen a transaction
    db.session.commit()  # the attempt is on record before Graph is called, and no connection is held
    try:
        wamid = graph_client().send_message(phone_number_id, payload)
    except GraphError as error:
        return _record_failure(message_id, attempt_id, error, claim)
    return _record_success(message_id, attempt_id, wamid, claim)


def _record_success(message_id: int, attempt_id: int, wamid: str, claim: _Claim | None) -> SendOutcome:
    db.session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == "pending")
        .values(wamid=wamid, status="accepted", status_at=datetime.now(UTC))
    )
    db.session.execute(
        update(SendAttempt)
        .where(SendAttempt.id == attempt_id)
        .values(outcome="accepted", wamid=wamid, http_status=200, finished_at=datetime.now(UTC))
    )
    apply_waiting_statuses(db.session, wamid)
    outcome = SendOutcome(message_id)
    kept = _keep(claim, outcome)
    db.session.commit()
    return SendOutcome(message_id, kept=kept)


def _record_failure(message_id: int, attempt_id: int, error: GraphError, claim: _Claim | None) -> SendOutcome:
    log.warning("send of message %s failed: %s (fbtrace_id=%s)", message_id, error, error.fbtrace_id)
    now = datetime.now(UTC)
    db.session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(
            status="failed",
            status_at=now,
            error_code=error.code,
            error_title=error.title,
            error_details=error.details,
        )
    )
    db.session.execute(
        update(SendAttempt)
        .where(SendAttempt.id == attempt_id)
        .values(
            outcome="failed",
            http_status=error.http_status,
            error_code=error.code,
            error_title=error.title,
            error_details=error.details,
            fbtrace_id=error.fbtrace_id,
            finished_at=now,
        )
    )
    db.session.flush()
    outcome = SendOutcome(message_id, error)
    kept = _keep(claim, outcome)
    db.session.commit()
    return SendOutcome(message_id, error, kept=kept)


def store_automatic(conversation_id: int, text: str) -> tuple[int, str, dict[str, Any]]:
    """An automatic reply (app/services/auto_replies.py): free text from no agent (`sender =
    'system'`), stored `pending` in the caller's transaction, which commits it before
    `deliver_automatic()`. Refused like an agent's text: `WindowClosed`, `Conflict`."""
    target = _load_target(conversation_id, lock=True)
    conversation = target.conversation
    if not target.wa_id:
        raise Conflict("This contact has no WhatsApp number.", code="contact_unreachable")
    if not window_open(conversation.last_customer_message_at):
        raise _window_refusal(conversation)
    payload: dict[str, Any] = {"to": target.wa_id, "type": "text", "text": {"preview_url": False, "body": text}}
    now = datetime.now(UTC)
    message = Message(
        conversation_id=conversation.id,
        direction="out",
        sender="system",
        type="text",
        text=text,
        sent_at=now,
        status="pending",
        payload=payload,
    )
    db.session.add(message)
    db.session.flush()
    touch_conversation(
        db.session, conversation.id, message.id, message_type="text", sender="system", direction="out", sent_at=now
    )
    return message.id, target.phone_number_id, payload


def deliver_automatic(message_id: int, phone_number_id: str, payload: dict[str, Any]) -> SendOutcome:
    """Hand a stored automatic reply to Graph and record the outcome (Meta's error kept)."""
    return _deliver(message_id, None, phone_number_id, payload, None)


def retry(conversation_id: int, message_id: int, agent_id: int) -> SendOutcome:
    """Send a failed message again, as a new recorded attempt."""
    target = _load_target(conversation_id, lock=True)
    message = db.session.execute(
        select(Message).where(Message.id == message_id, Message.conversation_id == conversation_id)
    ).scalar_one_or_none()
    if message is None:
        raise NotFound("Message not found.")
    media = message.type in MEDIA_TYPES
    if (
        message.direction != "out"
        or message.type not in ("text", "template", *MEDIA_TYPES)
        or message.status != "failed"
    ):
        raise Conflict(
            "Only failed text, template or media messages sent by an agent can be retried.", code="not_retryable"
        )
    if media and not (message.media_state == "stored" and message.media_storage_key):
        raise Conflict("The file of this message is no longer kept, so it cannot be sent again.", code="not_retryable")
    if message.type != "template" and not window_open(target.conversation.last_customer_message_at):
        raise _window_refusal(target.conversation)
    # Claim the message for this attempt: a second click finds it no longer failed.
    claimed = db.session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == "failed")
        .values(status="pending", error_code=None, error_title=None, error_details=None, wamid=None)
        .returning(Message.id)
    ).scalar()
    if claimed is None:
        raise Conflict("This message is already being retried.", code="not_retryable")
    db.session.commit()
    if media:
        return _deliver_media(message_id, agent_id, target.phone_number_id, _stored_media(message), None)
    return _deliver(message_id, agent_id, target.phone_number_id, dict(message.payload), None)


# --- media: upload the stored file, then send it by id (app/services/outbound_media.py stores it) ----


# Meta keeps an uploaded file 30 days; a retry after that (counted from the first send, so never
# too late) uploads it again from our copy.
UPLOAD_KEPT = timedelta(days=29)


@dataclass(frozen=True)
class StoredMedia:
    """An outbound media message's file as kept in our storage, and what Graph is sent for it."""

    payload: dict[str, Any]  # the message object without the media id (media_rules.media_payload)
    storage_key: str
    size: int
    mime_type: str  # Graph's `type` for the upload
    filename: str
    media_id: str | None = None  # Meta's id once uploaded (reused while Meta keeps it)
    # The bytes at hand (the request's temporary file) so the first upload does not read storage.
    local: IO[bytes] | None = None


def _stored_media(message: Message) -> StoredMedia:
    assert message.media_storage_key and message.media_size is not None
    fresh = message.sent_at > datetime.now(UTC) - UPLOAD_KEPT
    return StoredMedia(
        payload=dict(message.payload),
        storage_key=message.media_storage_key,
        size=message.media_size,
        mime_type=(message.media_mime_type or "application/octet-stream").split(";", 1)[0].strip(),
        filename=message.media_filename or f"{message.type}-{message.id}",
        media_id=message.media_id if fresh and is_media_id(message.media_id) else None,
    )


def _chunks(media: StoredMedia) -> Callable[[], Iterable[bytes]]:
    """How the upload reads the file (again for a retry): the local copy, else our storage."""
    local = media.local
    if local is not None:

        def from_local() -> Iterable[bytes]:
            local.seek(0)
            return iter(lambda: local.read(CHUNK_SIZE), b"")

        return from_local
    return lambda: media_storage().open_range(media.storage_key, 0, media.size)


def _deliver_media(
    message_id: int, agent_id: int, phone_number_id: str, media: StoredMedia, claim: _Claim | None
) -> SendOutcome:
    """Upload the file (unless Meta still has it), then send it by id: both with no database
    connection held. A failure of either is recorded like a failed send, with Meta's code."""
    attempt = SendAttempt(message_id=message_id, agent_id=agent_id)
    db.session.add(attempt)
    db.session.flush()
    attempt_id = attempt.id  # read before the commit: after it, reading it would reopen a transaction
    db.session.commit()  # the attempt is on record before Graph is called, and no connection is held
    client = graph_client()
    try:
        media_id = media.media_id
        if media_id is None:
            try:
                media_id = client.upload_media(
                    phone_number_id, _chunks(media), size=media.size, mime_type=media.mime_type, filename=media.filename
                )
            except StorageError as exc:
                raise GraphError(code=None, title=f"Our copy of the file could not be read: {exc}") from exc
            db.session.execute(update(Message).where(Message.id == message_id).values(media_id=media_id))
            db.session.commit()
        wamid = client.send_message(phone_number_id, send_by_id(media.payload, media_id))
    except GraphError as error:
        return _record_failure(message_id, attempt_id, error, claim)
    return _record_success(message_id, attempt_id, wamid, claim)

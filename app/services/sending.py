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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from app.api import serializers
from app.extensions import db
from app.models import BusinessNumber, Contact, Conversation, IdempotencyKey, Message, MessageTemplate, SendAttempt
from app.services.conversations import message_row
from app.services.graph_factory import graph_client
from app.services.statuses import apply_waiting_statuses
from app.services.summaries import touch_conversation
from app.whatsapp.graph_client import WINDOW_CLOSED, GraphError
from app.whatsapp.rules import MAX_TEXT_CHARS, template_graph_payload, window_expires_at, window_open

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)
IDEMPOTENCY_WAIT_SECONDS = 20.0
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")


@dataclass
class Answer:
    """What the API answers: an HTTP status and a JSON body (also what an idempotent replay returns)."""

    status: int
    body: dict[str, Any]
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """A request refused before anything was stored or sent."""

    def __init__(self, status: int, error: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.answer = Answer(status, {"error": error, "message": message, **extra})


# --- validation (pure) ---------------------------------------------------------------------


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


def parse_send_request(data: Any) -> OutgoingText | OutgoingTemplate:
    if not isinstance(data, dict):
        raise Refused(400, "invalid_body", "The body must be a JSON object.")
    reply_to = data.get("reply_to")
    if reply_to is not None and (not isinstance(reply_to, int) or isinstance(reply_to, bool) or reply_to < 1):
        raise Refused(400, "invalid_body", "'reply_to' must be the id of a message in this conversation.")
    kind = data.get("type")
    if kind == "text":
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Refused(400, "invalid_body", "'text' must be a non-empty string.")
        if len(text) > MAX_TEXT_CHARS:
            raise Refused(400, "invalid_body", f"'text' must be at most {MAX_TEXT_CHARS} characters.")
        if "\x00" in text:
            raise Refused(400, "invalid_body", "'text' must not contain NUL characters.")
        return OutgoingText(text=text, reply_to=reply_to)
    if kind == "template":
        template = data.get("template")
        if not isinstance(template, dict):
            raise Refused(400, "invalid_body", "'template' must be an object with name, language and parameters.")
        name, language = template.get("name"), template.get("language", "es")
        if isinstance(language, dict):  # Graph's own shape: {"code": "es"}
            language = language.get("code")
        if not isinstance(name, str) or not name or not isinstance(language, str) or not language:
            raise Refused(400, "invalid_body", "'template.name' and 'template.language' must be strings.")
        parameters = template.get("parameters", {})
        if not isinstance(parameters, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float) and not isinstance(v, bool)
            for k, v in parameters.items()
        ):
            raise Refused(400, "invalid_body", "'template.parameters' must map placeholders to text.")
        if any("\x00" in str(s) for s in (name, language, *parameters, *parameters.values())):
            raise Refused(400, "invalid_body", "'template' must not contain NUL characters.")
        return OutgoingTemplate(
            name=name, language=language, parameters={k: str(v) for k, v in parameters.items()}, reply_to=reply_to
        )
    raise Refused(400, "invalid_body", "'type' must be 'text' or 'template'.")


def _template_payload(template: MessageTemplate, parameters: dict[str, str]) -> tuple[dict[str, Any], str]:
    """Graph's template object and the body text as the customer will read it."""
    return template_graph_payload(template.name, template.language, template.components, parameters)


# --- idempotency ---------------------------------------------------------------------------


def _request_hash(conversation_id: int, data: Any) -> str:
    canonical = json.dumps({"conversation": conversation_id, "body": data}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _claim_key(agent_id: int, key: str, request_hash: str) -> Answer | int:
    """Claim `key` for this request (returns the key row id) or return the first request's answer."""
    if not _KEY_PATTERN.match(key):
        raise Refused(400, "invalid_idempotency_key", "Idempotency-Key must be 1–255 visible ASCII characters.")
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
            db.session.execute(IdempotencyKey.__table__.delete().where(IdempotencyKey.id == existing.id))
            db.session.commit()
            continue
        if existing.request_hash != request_hash:
            raise Refused(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used for a different request in the last 24 hours.",
            )
        if existing.response_status is not None:
            return Answer(existing.response_status, existing.response_body or {}, replayed=True)
        if time.monotonic() > deadline:
            raise Refused(409, "request_in_progress", "A request with this Idempotency-Key is still being sent.")
        time.sleep(0.1)


def _store_answer(key_id: int | None, answer: Answer) -> None:
    if key_id is not None:
        db.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == key_id)
            .values(response_status=answer.status, response_body=answer.body)
        )


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
        raise Refused(404, "not_found", "Conversation not found.")
    return _Target(row.Conversation, row.wa_id, row.phone_number_id)


def _window_refusal(conversation: Conversation) -> Refused:
    expired = window_expires_at(conversation.last_customer_message_at)
    return Refused(
        409,
        "window_closed",
        "More than 24 hours have passed since the customer last wrote: WhatsApp only accepts an approved "
        "template now. Send a template instead.",
        window_expires_at=expired.isoformat().replace("+00:00", "Z") if expired else None,
    )


def send(conversation_id: int, agent_id: int, data: Any, idempotency_key: str | None) -> Answer:
    """Validate, store as pending, call Graph, record the outcome. Returns the API's answer."""
    request = parse_send_request(data)
    key_id: int | None = None
    if idempotency_key is not None:
        claimed = _claim_key(agent_id, idempotency_key, _request_hash(conversation_id, data))
        if isinstance(claimed, Answer):
            return claimed
        key_id = claimed
    try:
        message_id, phone_number_id, payload = _store_pending(conversation_id, agent_id, request, key_id)
    except Refused as refused:
        _store_answer(key_id, refused.answer)
        db.session.commit()
        raise
    return _deliver(message_id, agent_id, phone_number_id, payload, key_id)


def _store_pending(
    conversation_id: int, agent_id: int, request: OutgoingText | OutgoingTemplate, key_id: int | None
) -> tuple[int, str, dict[str, Any]]:
    target = _load_target(conversation_id, lock=True)
    conversation = target.conversation
    if not target.wa_id:
        raise Refused(
            409,
            "contact_unreachable",
            "This contact has no WhatsApp number (only a username id); replying to it is not supported yet.",
        )
    payload: dict[str, Any] = {"to": target.wa_id}
    reply_wamid = None
    if request.reply_to is not None:
        reply_wamid = db.session.execute(
            select(Message.wamid).where(Message.id == request.reply_to, Message.conversation_id == conversation.id)
        ).scalar()
        if not reply_wamid:
            raise Refused(400, "invalid_body", "'reply_to' must be the id of a message in this conversation.")
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
            raise Refused(
                400,
                "unknown_template",
                f"No approved template '{request.name}' in language '{request.language}'. "
                "Sync templates with `flask --app wsgi templates sync`.",
            )
        missing = [p for p in template.placeholders if not str(request.parameters.get(p, "")).strip()]
        if missing:
            raise Refused(
                400,
                "missing_parameters",
                "Fill every placeholder of the template: " + ", ".join(missing),
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
        db.session, conversation.id, message.id, message_type=kind, sender="agent", direction="out", sent_at=now
    )
    if key_id is not None:
        db.session.execute(update(IdempotencyKey).where(IdempotencyKey.id == key_id).values(message_id=message.id))
    db.session.commit()
    return message.id, target.phone_number_id, payload


def _deliver(
    message_id: int, agent_id: int, phone_number_id: str, payload: dict[str, Any], key_id: int | None
) -> Answer:
    attempt = SendAttempt(message_id=message_id, agent_id=agent_id)
    db.session.add(attempt)
    db.session.commit()  # the attempt is on record before Graph is called
    attempt_id = attempt.id
    try:
        wamid = graph_client().send_message(phone_number_id, payload)
    except GraphError as error:
        return _record_failure(message_id, attempt_id, error, key_id)
    return _record_success(message_id, attempt_id, wamid, key_id)


def _record_success(message_id: int, attempt_id: int, wamid: str, key_id: int | None) -> Answer:
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
    answer = Answer(201, {"message": _message_body(message_id)})
    _store_answer(key_id, answer)
    db.session.commit()
    return answer


def _record_failure(message_id: int, attempt_id: int, error: GraphError, key_id: int | None) -> Answer:
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
    body: dict[str, Any] = {
        "error": "window_closed" if error.code == WINDOW_CLOSED else "graph_error",
        "message": (
            "WhatsApp refused free text: more than 24 hours have passed since the customer last wrote. "
            "Send a template instead."
            if error.code == WINDOW_CLOSED
            else f"WhatsApp did not accept the message: {error.title}"
        ),
        "graph_error": {
            "code": error.code,
            "title": error.title,
            "details": error.details,
            "fbtrace_id": error.fbtrace_id,
        },
        "message_id": message_id,
    }
    db.session.flush()
    body["stored_message"] = _message_body(message_id)
    answer = Answer(409 if error.code == WINDOW_CLOSED else 502, body)
    _store_answer(key_id, answer)
    db.session.commit()
    return answer


def retry(conversation_id: int, message_id: int, agent_id: int) -> Answer:
    """Send a failed message again, as a new recorded attempt."""
    target = _load_target(conversation_id, lock=True)
    message = db.session.execute(
        select(Message).where(Message.id == message_id, Message.conversation_id == conversation_id)
    ).scalar_one_or_none()
    if message is None:
        raise Refused(404, "not_found", "Message not found.")
    if message.direction != "out" or message.type not in ("text", "template") or message.status != "failed":
        raise Refused(409, "not_retryable", "Only failed text or template messages sent by an agent can be retried.")
    if message.type == "text" and not window_open(target.conversation.last_customer_message_at):
        raise _window_refusal(target.conversation)
    # Claim the message for this attempt: a second click finds it no longer failed.
    claimed = db.session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == "failed")
        .values(status="pending", error_code=None, error_title=None, error_details=None, wamid=None)
        .returning(Message.id)
    ).scalar()
    if claimed is None:
        raise Refused(409, "not_retryable", "This message is already being retried.")
    db.session.commit()
    return _deliver(message_id, agent_id, target.phone_number_id, dict(message.payload), None)


def _message_body(message_id: int) -> dict[str, Any]:
    row = message_row(db.session, message_id)
    return serializers.message(row, {})

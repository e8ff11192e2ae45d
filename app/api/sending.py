"""Sending from the API: free text inside the 24-hour window, templates at any time, retries.

The service records what happened (`SendOutcome`) or refuses (a domain error); this module
decides how that is answered. With an `Idempotency-Key`, the service keeps this module's
rendered answer on the key inside the transaction that records the outcome, so a replay
answers exactly what the first request was answered.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from app.api import serializers
from app.api.errors import domain_error_body, status_for
from app.api.schemas import SendRequest, SendTemplate, SendText
from app.api.validation import accepts
from app.api.views import bp
from app.auth.guards import api_auth_required, current_agent
from app.extensions import db
from app.services import sending
from app.services.conversations import message_row
from app.services.errors import DomainError
from app.services.sending import KeptAnswer, SendOutcome


def render(outcome: SendOutcome | DomainError) -> KeptAnswer:
    """The answer to a send: 201 with the message, 502 (409 for Meta's 131047) with Meta's
    error and the stored failed message, or the refusal's status and error body."""
    if isinstance(outcome, DomainError):
        return KeptAnswer(status_for(outcome), domain_error_body(outcome))
    stored = serializers.message(message_row(db.session, outcome.message_id), {})
    error = outcome.error
    if error is None:
        return KeptAnswer(201, {"message": stored})
    body: dict[str, Any] = {
        "error": "window_closed" if outcome.window_closed else "graph_error",
        "message": (
            "WhatsApp refused free text: more than 24 hours have passed since the customer last wrote. "
            "Send a template instead."
            if outcome.window_closed
            else f"WhatsApp did not accept the message: {error.title}"
        ),
        "graph_error": {
            "code": error.code,
            "title": error.title,
            "details": error.details,
            "fbtrace_id": error.fbtrace_id,
        },
        "message_id": outcome.message_id,
        "stored_message": stored,
    }
    return KeptAnswer(409 if outcome.window_closed else 502, body)


def _respond(answer: KeptAnswer, *, replayed: bool = False) -> Response:
    response = jsonify(answer.body)
    response.status_code = answer.status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def outgoing(request: SendText | SendTemplate) -> sending.OutgoingText | sending.OutgoingTemplate:
    """The service's command for a validated send request."""
    if isinstance(request, SendText):
        return sending.OutgoingText(text=request.text, reply_to=request.reply_to)
    template = request.template
    return sending.OutgoingTemplate(
        name=template.name,
        language=template.language_code,
        parameters={name: str(value) for name, value in template.parameters.items()},
        reply_to=request.reply_to,
    )


@bp.post("/conversaciones/<id:conversation_id>/mensajes")
@api_auth_required
@accepts("sendMessage")
def send_message(conversation_id: int, json: SendRequest) -> Any:
    data = request.get_json()  # as sent: what an Idempotency-Key stands for
    key = request.headers.get("Idempotency-Key")
    idempotency = (
        sending.Idempotency(key, sending.request_hash(conversation_id, data), render) if key is not None else None
    )
    result = sending.send(conversation_id, current_agent().id, outgoing(json.root), idempotency)
    if isinstance(result, KeptAnswer):
        return _respond(result, replayed=True)
    return _respond(result.kept or render(result))


@bp.post("/conversaciones/<id:conversation_id>/mensajes/<bigid:message_id>/reintentar")
@api_auth_required
def retry_message(conversation_id: int, message_id: int) -> Any:
    return _respond(render(sending.retry(conversation_id, message_id, current_agent().id)))

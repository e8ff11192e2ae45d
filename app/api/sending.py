"""Sending from the API: free text inside the 24-hour window, templates at any time, retries."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from app.api.views import bp
from app.auth.guards import api_auth_required, current_agent
from app.services import sending
from app.services.sending import Answer, Refused


def _respond(answer: Answer) -> Any:
    response = jsonify(answer.body)
    response.status_code = answer.status
    if answer.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.errorhandler(Refused)
def refused(exc: Refused) -> Any:
    return _respond(exc.answer)


@bp.post("/conversaciones/<int:conversation_id>/mensajes")
@api_auth_required
def send_message(conversation_id: int) -> Any:
    data = request.get_json(silent=True)
    if data is None:
        raise Refused(400, "invalid_body", "The body must be JSON (Content-Type: application/json).")
    if conversation_id >= 2**31:
        raise Refused(404, "not_found", "Conversation not found.")
    key = request.headers.get("Idempotency-Key")
    return _respond(sending.send(conversation_id, current_agent().id, data, key))


@bp.post("/conversaciones/<int:conversation_id>/mensajes/<int:message_id>/reintentar")
@api_auth_required
def retry_message(conversation_id: int, message_id: int) -> Any:
    if conversation_id >= 2**31 or message_id >= 2**63:
        raise Refused(404, "not_found", "Message not found.")
    return _respond(sending.retry(conversation_id, message_id, current_agent().id))

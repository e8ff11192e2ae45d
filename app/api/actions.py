"""Working a conversation from the API: mark read (with Meta's read receipt), status,
assignee and mark unread, private notes, and canned responses."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from app.api import serializers
from app.api.views import MAX_QUERY_CHARS, bp
from app.auth.guards import api_auth_required, current_agent
from app.extensions import db
from app.services import conversation_actions as actions
from app.services.conversations import get_conversation_summary, message_row
from app.services.errors import Invalid, InvalidParameter


def _json_body() -> Any:
    data = request.get_json(silent=True)
    if data is None:
        raise Invalid("The body must be JSON (Content-Type: application/json).")
    return data


@bp.post("/conversaciones/<id:conversation_id>/leido")
@api_auth_required
def mark_read(conversation_id: int) -> Any:
    result = actions.mark_read(conversation_id)
    return jsonify(unread_count=result.unread_count, read_receipt=result.read_receipt)


@bp.patch("/conversaciones/<id:conversation_id>")
@api_auth_required
def update_conversation(conversation_id: int) -> Any:
    actions.update_conversation(conversation_id, _json_body())
    return jsonify(serializers.conversation_summary(get_conversation_summary(db.session, conversation_id)))


@bp.post("/conversaciones/<id:conversation_id>/notas")
@api_auth_required
def add_note(conversation_id: int) -> Any:
    note_id = actions.add_note(conversation_id, current_agent().id, _json_body())
    return jsonify(serializers.message(message_row(db.session, note_id), {})), 201


@bp.get("/respuestas")
@api_auth_required
def canned_responses() -> Any:
    q = request.args.get("q", "").strip() or None
    if q is not None and len(q) > MAX_QUERY_CHARS:
        raise InvalidParameter("q", f"'q' must be at most {MAX_QUERY_CHARS} characters.")
    if q is not None and "\x00" in q:
        raise InvalidParameter("q", "'q' must not contain NUL characters.")
    rows = actions.list_canned_responses(q)
    return jsonify(canned_responses=[serializers.canned_response(row) for row in rows])


@bp.post("/respuestas")
@api_auth_required
def create_canned_response() -> Any:
    row = actions.create_canned_response(current_agent().id, _json_body())
    return jsonify(serializers.canned_response(row)), 201


@bp.delete("/respuestas/<id:canned_id>")
@api_auth_required
def delete_canned_response(canned_id: int) -> Any:
    actions.delete_canned_response(canned_id)
    return "", 204

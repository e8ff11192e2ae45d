"""Working a conversation from the API: mark read (with Meta's read receipt), status,
assignee and mark unread, private notes, and canned responses."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from app.api import serializers
from app.api.schemas import CannedResponseQuery, CannedResponseRequest, ConversationPatch, NoteRequest
from app.api.validation import accepts
from app.api.views import bp
from app.auth.guards import api_auth_required, current_agent
from app.extensions import db
from app.services import conversation_actions as actions
from app.services.conversations import get_conversation_summary, message_row


@bp.post("/conversaciones/<id:conversation_id>/leido")
@api_auth_required
def mark_read(conversation_id: int) -> Any:
    result = actions.mark_read(conversation_id)
    return jsonify(unread_count=result.unread_count, read_receipt=result.read_receipt)


@bp.patch("/conversaciones/<id:conversation_id>")
@api_auth_required
@accepts("updateConversation")
def update_conversation(conversation_id: int, json: ConversationPatch) -> Any:
    changes = actions.ConversationChanges(
        status=json.status,
        assign="assignee" in json.model_fields_set,
        assignee=json.assignee,
        mark_unread=json.unread is True,
    )
    actions.update_conversation(conversation_id, changes)
    return jsonify(serializers.conversation_summary(get_conversation_summary(db.session, conversation_id)))


@bp.post("/conversaciones/<id:conversation_id>/notas")
@api_auth_required
@accepts("addNote")
def add_note(conversation_id: int, json: NoteRequest) -> Any:
    note_id = actions.add_note(conversation_id, current_agent().id, json.text)
    return jsonify(serializers.message(message_row(db.session, note_id), {})), 201


@bp.get("/respuestas")
@api_auth_required
@accepts("listCannedResponses")
def canned_responses(query: CannedResponseQuery) -> Any:
    rows = actions.list_canned_responses(query.q)
    return jsonify(canned_responses=[serializers.canned_response(row) for row in rows])


@bp.post("/respuestas")
@api_auth_required
@accepts("createCannedResponse")
def create_canned_response(json: CannedResponseRequest) -> Any:
    row = actions.create_canned_response(current_agent().id, json.short_code, json.text)
    return jsonify(serializers.canned_response(row)), 201


@bp.delete("/respuestas/<id:canned_id>")
@api_auth_required
def delete_canned_response(canned_id: int) -> Any:
    actions.delete_canned_response(canned_id, current_agent())
    return "", 204

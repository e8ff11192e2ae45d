"""The JSON API under /whatsapp/api (paths in Spanish: the existing front end uses them)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.api import docs, serializers
from app.api.errors import error_response, register_error_handlers
from app.api.schemas import ConversationListQuery, ThreadQuery
from app.api.validation import accepts
from app.auth.guards import api_auth_required, current_agent
from app.cache import cached_list
from app.extensions import db
from app.services.conversations import (
    ConversationFilters,
    UnknownCursor,
    conversation_exists,
    get_conversation_summary,
    list_conversations,
    list_messages,
)
from app.services.errors import InvalidParameter

bp = Blueprint("api", __name__, url_prefix="/whatsapp/api")

register_error_handlers(bp)


@bp.get("/openapi.json")
def openapi() -> Any:
    """The OpenAPI 3.1 document of every route; public, it describes routes and holds no data."""
    return jsonify(docs.openapi_document())


def _conditional(response: Response) -> Response:
    """ETag from the body; `If-None-Match` with the same tag answers 304 (cheap polling)."""
    response.headers["Cache-Control"] = "private, no-cache"
    response.add_etag()
    response.make_conditional(request)
    return response


def _not_found(what: str) -> Response:
    return error_response(404, "not_found", f"{what} not found.")


@bp.get("/conversaciones")
@api_auth_required
@accepts("listConversations")
def conversations(query: ConversationListQuery) -> Any:
    page, per_page = query.page, query.per_page
    filters = ConversationFilters(statuses=query.status, assignee=query.assignee, q=query.q, unread=query.unread)
    agent_id = current_agent().id

    def build() -> dict[str, Any]:
        result = list_conversations(db.session, agent_id=agent_id, filters=filters, page=page, per_page=per_page)
        return {
            "conversations": [serializers.conversation_summary(row) for row in result.rows],
            "pagination": {
                "page": result.page,
                "per_page": result.per_page,
                "total": result.total,
                "pages": result.pages,
            },
            "counts": result.counts,
        }

    key = {"page": page, "per_page": per_page, "filters": asdict(filters)}
    return _conditional(jsonify(cached_list(agent_id, key, build)))


@bp.get("/conversaciones/<id:conversation_id>")
@api_auth_required
def conversation(conversation_id: int) -> Any:
    row = get_conversation_summary(db.session, conversation_id)
    if row is None:
        return _not_found("Conversation")
    return _conditional(jsonify(serializers.conversation_summary(row)))


@bp.get("/conversaciones/<id:conversation_id>/mensajes")
@api_auth_required
@accepts("listMessages")
def messages(conversation_id: int, query: ThreadQuery) -> Any:
    if not conversation_exists(db.session, conversation_id):
        return _not_found("Conversation")
    try:
        page = list_messages(db.session, conversation_id, before=query.before, limit=query.limit)
    except UnknownCursor:
        raise InvalidParameter("before", "'before' must be the id of a message in this conversation.") from None
    return _conditional(
        jsonify(
            messages=[serializers.message(row, page.reactions) for row in page.messages],
            next_cursor=page.next_cursor,
        )
    )

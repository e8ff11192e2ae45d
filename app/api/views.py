"""The JSON API under /whatsapp/api (paths in Spanish: the existing front end uses them)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from app.api import docs, serializers
from app.api.docs import (
    API_AUTH,
    API_ERRORS,
    BAD_PARAMETER,
    CONDITIONAL,
    IF_NONE_MATCH,
    NOT_FOUND,
    NOT_MODIFIED,
    PUBLIC,
    RATE_LIMITED,
    documented,
    json_response,
)
from app.api.errors import error_response, register_error_handlers
from app.api.guards import api_auth_required, current_agent
from app.api.responses import ConversationList, ConversationSummary, MessagePage
from app.api.schemas import ConversationListQuery, ThreadQuery
from app.api.validation import accepts
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
@documented(
    "getOpenApiDocument",
    tag="docs",
    security=PUBLIC,
    responses={
        200: json_response("The OpenAPI 3.1 document.", {"type": "object", "required": ["openapi", "info", "paths"]}),
        429: RATE_LIMITED,
    },
)
def openapi() -> Any:
    """This document, as JSON

    Public (no authentication); it describes routes, never data. Generated from the routes and
    their declarations once per process (`app/api/docs.py`).
    """
    return jsonify(docs.openapi_document(current_app))


def _conditional(response: Response) -> Response:
    """ETag from the body; `If-None-Match` with the same tag answers 304 (cheap polling)."""
    response.headers["Cache-Control"] = "private, no-cache"
    response.add_etag()
    response.make_conditional(request)
    return response


def _not_found(what: str) -> Response:
    return error_response(404, "not_found", f"{what} not found.")


@bp.get("/conversaciones")
@documented(
    "listConversations",
    tag="conversations",
    security=API_AUTH,
    parameters=[IF_NONE_MATCH],
    responses={
        200: json_response(
            "One page of conversations with the pagination and the tab counts.", ConversationList, headers=CONDITIONAL
        ),
        304: NOT_MODIFIED,
        400: BAD_PARAMETER,
        **API_ERRORS,
    },
)
@api_auth_required
@accepts("listConversations")
def conversations(query: ConversationListQuery) -> Any:
    """The conversation list

    Conversations by most recent activity (newest first, then by id), each with its
    `labels`. `status`, `unread`, `label` and `q` filter everything, including `counts`;
    `assignee` picks the tab, so `counts` gives every tab's size while `pagination.total`
    is the size of the chosen one. A page beyond the last answers 200 with an empty list. The cost is two SQL statements
    whatever the page size or number (labels included).
    """
    page, per_page = query.page, query.per_page
    filters = ConversationFilters(
        statuses=query.status, assignee=query.assignee, q=query.q, unread=query.unread, label=query.label
    )
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
@documented(
    "getConversation",
    tag="conversations",
    security=API_AUTH,
    parameters=[IF_NONE_MATCH],
    responses={
        200: json_response("The conversation's summary.", ConversationSummary, headers=CONDITIONAL),
        304: NOT_MODIFIED,
        404: NOT_FOUND,
        **API_ERRORS,
    },
)
@api_auth_required
def conversation(conversation_id: int) -> Any:
    """One conversation

    The same summary as an item of the list.
    """
    row = get_conversation_summary(db.session, conversation_id)
    if row is None:
        return _not_found("Conversation")
    return _conditional(jsonify(serializers.conversation_summary(row)))


@bp.get("/conversaciones/<id:conversation_id>/mensajes")
@documented(
    "listMessages",
    tag="conversations",
    security=API_AUTH,
    parameters=[IF_NONE_MATCH],
    responses={
        200: json_response("One page of the thread.", MessagePage, headers=CONDITIONAL),
        304: NOT_MODIFIED,
        400: BAD_PARAMETER,
        404: NOT_FOUND,
        **API_ERRORS,
    },
)
@api_auth_required
@accepts("listMessages")
def messages(conversation_id: int, query: ThreadQuery) -> Any:
    """A conversation's thread, newest page first

    Up to `limit` messages, oldest to newest within the page, ending at the newest message
    (or just before `before`). Pass `next_cursor` as `before` to page further back;
    `next_cursor` is null on the oldest page. Reactions, edits and deletions are not
    messages of their own here: they show as `reactions`, `edited_at` and `deleted` on the
    message they apply to.
    """
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

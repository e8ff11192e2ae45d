"""The JSON API under /whatsapp/api (paths in Spanish: the existing front end uses them)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.api import docs, serializers
from app.api.errors import error_response, register_error_handlers
from app.auth.guards import api_auth_required, current_agent
from app.cache import cached_list
from app.converters import MAX_BIG_ID, MAX_ID
from app.extensions import db
from app.models.conversations import CONVERSATION_STATUSES
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

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 50
DEFAULT_MESSAGE_LIMIT = 30
MAX_MESSAGE_LIMIT = 100
MAX_QUERY_CHARS = 100


register_error_handlers(bp)


def _int_arg(name: str, default: int | None, minimum: int, maximum: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidParameter(name, f"'{name}' must be a whole number.")
    value = int(raw)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise InvalidParameter(name, f"'{name}' must be {bounds}.")
    return value


def _filters() -> ConversationFilters:
    statuses: tuple[str, ...] = ()
    raw_status = request.args.get("status", "").strip()
    if raw_status and raw_status != "all":
        statuses = tuple(s.strip() for s in raw_status.split(",") if s.strip())
        unknown = [s for s in statuses if s not in CONVERSATION_STATUSES]
        if unknown:
            raise InvalidParameter("status", f"'status' must be one of {', '.join(CONVERSATION_STATUSES)} or all.")
    assignee: str | int = request.args.get("assignee", "all").strip() or "all"
    if assignee not in ("all", "me", "unassigned"):
        if not (assignee.isascii() and assignee.isdigit()) or not 0 < int(assignee) <= MAX_ID:
            raise InvalidParameter("assignee", "'assignee' must be me, unassigned, all or an agent id.")
        assignee = int(assignee)
    q = request.args.get("q", "").strip() or None
    if q is not None and len(q) > MAX_QUERY_CHARS:
        raise InvalidParameter("q", f"'q' must be at most {MAX_QUERY_CHARS} characters.")
    if q is not None and "\x00" in q:
        raise InvalidParameter("q", "'q' must not contain NUL characters.")
    unread_raw = request.args.get("unread", "").strip().lower()
    unread: bool | None = None
    if unread_raw in ("true", "1", "yes"):
        unread = True
    elif unread_raw in ("false", "0", "no"):
        unread = False
    elif unread_raw:
        raise InvalidParameter("unread", "'unread' must be true or false.")
    return ConversationFilters(statuses=statuses, assignee=assignee, q=q, unread=unread)


@bp.get("/openapi.json")
def openapi() -> Any:
    """The OpenAPI 3.1 document of every route; public, it describes routes and holds no data."""
    return jsonify(docs.openapi_document())


def _conditional(response: Response) -> Response:
    """ETag from the body; `If-None-Match` with the same tag answers 304 (cheap polling)."""
    response.headers["Cache-Control"] = "private, no-cache"
    response.add_etag()
    return response.make_conditional(request)


def _not_found(what: str) -> Response:
    return error_response(404, "not_found", f"{what} not found.")


@bp.get("/conversaciones")
@api_auth_required
def conversations() -> Any:
    page = _int_arg("page", 1, minimum=1, maximum=1_000_000)
    per_page = _int_arg("per_page", DEFAULT_PER_PAGE, minimum=1, maximum=MAX_PER_PAGE)
    assert page is not None and per_page is not None
    filters = _filters()
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

    query = {"page": page, "per_page": per_page, "filters": asdict(filters)}
    return _conditional(jsonify(cached_list(agent_id, query, build)))


@bp.get("/conversaciones/<id:conversation_id>")
@api_auth_required
def conversation(conversation_id: int) -> Any:
    row = get_conversation_summary(db.session, conversation_id)
    if row is None:
        return _not_found("Conversation")
    return _conditional(jsonify(serializers.conversation_summary(row)))


@bp.get("/conversaciones/<id:conversation_id>/mensajes")
@api_auth_required
def messages(conversation_id: int) -> Any:
    limit = _int_arg("limit", DEFAULT_MESSAGE_LIMIT, minimum=1, maximum=MAX_MESSAGE_LIMIT)
    before = _int_arg("before", None, minimum=1, maximum=MAX_BIG_ID)
    assert limit is not None
    if not conversation_exists(db.session, conversation_id):
        return _not_found("Conversation")
    try:
        page = list_messages(db.session, conversation_id, before=before, limit=limit)
    except UnknownCursor:
        raise InvalidParameter("before", "'before' must be the id of a message in this conversation.") from None
    return _conditional(
        jsonify(
            messages=[serializers.message(row, page.reactions) for row in page.messages],
            next_cursor=page.next_cursor,
        )
    )

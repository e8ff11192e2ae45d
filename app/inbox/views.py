"""The agents' pages: the two-pane inbox, server-rendered."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required

from app.api import serializers
from app.extensions import db
from app.models.conversations import CONVERSATION_STATUSES
from app.services.conversations import (
    ConversationFilters,
    get_conversation_summary,
    list_conversations,
    list_messages,
)

bp = Blueprint("inbox", __name__)

TABS = ("mine", "unassigned", "all")
PER_PAGE = 25


def _arg_int(name: str, default: int) -> int:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else default


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    tab = request.args.get("tab", "all")
    tab = tab if tab in TABS else "all"
    status = request.args.get("status", "open")
    status = status if status in (*CONVERSATION_STATUSES, "all") else "open"
    q = request.args.get("q", "").strip()[:100] or None
    page = _arg_int("page", 1)
    filters = ConversationFilters(
        statuses=() if status == "all" else (status,),
        assignee="me" if tab == "mine" else tab,
        q=q.replace("\x00", "") if q else None,
    )
    result = list_conversations(db.session, agent_id=current_user.id, filters=filters, page=page, per_page=PER_PAGE)
    conversations = [serializers.conversation_summary(row) for row in result.rows]

    selected = None
    thread = None
    selected_id = _arg_int("c", 0)
    if selected_id:
        row = get_conversation_summary(db.session, selected_id)
        if row is None:
            abort(404)
        selected = serializers.conversation_summary(row)
        page_of_messages = list_messages(db.session, selected_id, before=None, limit=50)
        thread = [serializers.message(m, page_of_messages.reactions) for m in page_of_messages.messages]
    return render_template(
        "inbox/index.html",
        conversations=conversations,
        result=result,
        tab=tab,
        status=status,
        q=q or "",
        selected=selected,
        thread=thread,
        statuses=CONVERSATION_STATUSES,
    )

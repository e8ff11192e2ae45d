"""The caller's own account: who they are and their preferences (`/yo`), and their mentions."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from app.api import serializers
from app.api.docs import (
    API_AUTH,
    API_ERRORS,
    BAD_PARAMETER,
    INVALID_BODY,
    documented,
    error_answer,
    json_response,
)
from app.api.guards import api_auth_required, current_agent
from app.api.responses import AgentProfile, MentionItem, MentionList, MentionsMarked
from app.api.schemas import AgentPreferencesPatch, MentionListQuery
from app.api.validation import accepts
from app.api.views import bp
from app.services import mentions as mention_service
from app.services.preferences import preferences_of, update_preferences


@bp.get("/yo")
@documented(
    "getMe",
    tag="me",
    security=API_AUTH,
    responses={200: json_response("The caller and their preferences.", AgentProfile), **API_ERRORS},
)
@api_auth_required
def me() -> Any:
    """The caller: name, e-mail, role and preferences

    The agent of the token or session: `language` and `time_zone` (null: the browser's), and the
    browser notifications' `notify_desktop`, `notify_sound` and `notify_scope`.
    """
    agent = current_agent()
    return jsonify(serializers.agent_profile(agent, preferences_of(agent)))


@bp.patch("/yo")
@documented(
    "updateMe",
    tag="me",
    security=API_AUTH,
    responses={200: json_response("The caller after the change.", AgentProfile), 400: INVALID_BODY, **API_ERRORS},
)
@api_auth_required
@accepts("updateMe")
def update_me(json: AgentPreferencesPatch) -> Any:
    """Change the caller's preferences

    Any of `language` (`es`, `en`, or null for the browser's), `time_zone` (an IANA name, or
    null), `notify_desktop`, `notify_sound` (booleans) and `notify_scope`
    (`mine_and_unassigned` or `all`). All or nothing: an unknown field (`name`, `email`, `role`
    are the admins') or a wrong value is 400 `invalid_body` and nothing changes. The pages
    follow the row from the next request on.
    """
    agent = current_agent()
    changes = {name: getattr(json, name) for name in json.model_fields_set}
    preferences = update_preferences(agent, changes)
    return jsonify(serializers.agent_profile(agent, preferences))


@bp.get("/menciones")
@documented(
    "listMentions",
    tag="me",
    security=API_AUTH,
    responses={
        200: json_response("A page of the caller's mentions and their unread count.", MentionList),
        400: BAD_PARAMETER,
        **API_ERRORS,
    },
)
@api_auth_required
@accepts("listMentions")
def mentions(query: MentionListQuery) -> Any:
    """The caller's mentions

    Every private note that named the caller with `@` (their name, the first word of it, or
    their e-mail's local part; case and accents ignored): unread first, then newest first, with
    the conversation, the note's first 160 characters and its author. Only the caller's own:
    nobody sees another agent's mentions.
    """
    result = mention_service.list_mentions(
        current_agent().id, page=query.page, per_page=query.per_page, unread_only=query.unread is True
    )
    return jsonify(
        mentions=[serializers.mention(row) for row in result.rows],
        pagination={"page": result.page, "per_page": result.per_page, "total": result.total, "pages": result.pages},
        unread=result.unread,
    )


@bp.post("/menciones/<bigid:mention_id>/leida")
@documented(
    "markMentionRead",
    tag="me",
    security=API_AUTH,
    path={"mention_id": "The mention's id. Another agent's mention answers 404, as one that does not exist."},
    responses={
        200: json_response("The mention, read (it keeps its first `read_at`).", MentionItem),
        404: error_answer("not_found", "No mention of the caller with that id."),
        **API_ERRORS,
    },
)
@api_auth_required
def mark_mention_read(mention_id: int) -> Any:
    """Mark a mention read

    Only the caller's own mention; marking it again changes nothing.
    """
    return jsonify(serializers.mention(mention_service.mark_read(current_agent().id, mention_id)))


@bp.post("/menciones/leidas")
@documented(
    "markAllMentionsRead",
    tag="me",
    security=API_AUTH,
    responses={200: json_response("How many were unread.", MentionsMarked), **API_ERRORS},
)
@api_auth_required
def mark_all_mentions_read() -> Any:
    """Mark all the caller's mentions read

    Every unread mention of the caller (nobody else's); `marked` says how many there were.
    """
    return jsonify(marked=mention_service.mark_all_read(current_agent().id))

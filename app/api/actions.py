"""Working a conversation from the API: mark read (with Meta's read receipt), status,
assignee and mark unread, private notes, and canned responses."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from app.api import serializers
from app.api.docs import (
    API_AUTH,
    API_ERRORS,
    BAD_PARAMETER,
    INVALID_BODY,
    NOT_FOUND,
    documented,
    empty,
    error_answer,
    json_response,
)
from app.api.guards import api_auth_required, current_agent
from app.api.responses import (
    CannedResponse,
    CannedResponseList,
    ConversationSummary,
    Error,
    Message,
    ReadResult,
    UnknownIdsError,
)
from app.api.schemas import CannedResponseQuery, CannedResponseRequest, ConversationPatch, NoteRequest
from app.api.validation import accepts
from app.api.views import bp
from app.extensions import db
from app.services import conversation_actions as actions
from app.services.conversations import get_conversation_summary, message_row


@bp.post("/conversaciones/<id:conversation_id>/leido")
@documented(
    "markConversationRead",
    tag="actions",
    security=API_AUTH,
    responses={
        200: json_response("Read; `read_receipt` says what happened on WhatsApp.", ReadResult),
        404: NOT_FOUND,
        **API_ERRORS,
    },
)
@api_auth_required
def mark_read(conversation_id: int) -> Any:
    """Mark the conversation read, here and on WhatsApp

    Marks the customer's messages read (`unread_count` becomes 0) and commits, then sends
    Meta a read receipt for the customer's newest message (blue ticks, which cover every
    earlier message). The receipt is sent only when this call found an unread customer
    message: calling again answers `not_needed` and sends nothing. When Graph refuses the
    receipt or cannot be reached the answer is still 200 with `failed`; the local read
    stands and the failure is logged; the receipt is not repeated later.
    """
    result = actions.mark_read(conversation_id)
    return jsonify(unread_count=result.unread_count, read_receipt=result.read_receipt)


@bp.patch("/conversaciones/<id:conversation_id>")
@documented(
    "updateConversation",
    tag="actions",
    security=API_AUTH,
    responses={
        200: json_response("The conversation's summary after the change.", ConversationSummary),
        400: json_response(
            "The body is not valid (`invalid_body`: e.g. a `snoozed_until` in the past, without its UTC offset "
            "or with another status), or names labels that do not exist (`unknown_labels`, listing them in "
            "`unknown`). Nothing is changed.",
            {"oneOf": [Error, UnknownIdsError]},
        ),
        404: NOT_FOUND,
        409: error_answer(
            "nothing_to_mark_unread",
            "`unread: true` in a conversation where the customer never wrote (`nothing_to_mark_unread`).",
        ),
        **API_ERRORS,
    },
)
@api_auth_required
@accepts("updateConversation")
def update_conversation(conversation_id: int, json: ConversationPatch) -> Any:
    """Set status, assignee or labels, snooze, or mark unread

    Any of `status` (`open`, `pending`, `resolved`, `snoozed`), `assignee` (an active agent's
    id, or null to unassign), `unread: true` (flags the customer's newest message unread again,
    so `unread_count` is at least 1), `labels` (the label ids the conversation carries
    afterwards; an unknown id is 400 `unknown_labels` naming it in `unknown`) and
    `snoozed_until`. All or nothing: a bad field changes nothing.

    **Snooze.** `{"snoozed_until": "2026-12-03T09:00:00+01:00"}` snoozes until that time (ISO
    8601 with its UTC offset, in the future: a past or unparseable time is 400);
    `{"snoozed_until": null}` or `{"status": "snoozed"}` until the customer writes. A snoozed
    conversation leaves the `open` and `pending` lists; it is `open` again when its time comes
    (a job, every minute), when the customer writes, or when any other status is set
    (`{"status": "open"}` un-snoozes). Each of these shows in the thread as an `event`.
    `updated_at` moves; `last_activity_at` does not, so triage never reorders the list.
    Nothing is sent to WhatsApp.
    """
    snooze = "snoozed_until" in json.model_fields_set
    changes = actions.ConversationChanges(
        status="snoozed" if snooze else json.status,
        snoozed_until=json.snoozed_until,
        assign="assignee" in json.model_fields_set,
        assignee=json.assignee,
        mark_unread=json.unread is True,
        labels=tuple(json.labels) if json.labels is not None else None,
    )
    actions.update_conversation(conversation_id, changes, current_agent().id)
    return jsonify(serializers.conversation_summary(get_conversation_summary(db.session, conversation_id)))


@bp.post("/conversaciones/<id:conversation_id>/notas")
@documented(
    "addNote",
    tag="actions",
    security=API_AUTH,
    responses={
        201: json_response("The stored note, as it shows in the thread.", Message),
        400: INVALID_BODY,
        404: NOT_FOUND,
        **API_ERRORS,
    },
)
@api_auth_required
@accepts("addNote")
def add_note(conversation_id: int, json: NoteRequest) -> Any:
    """Add a private note

    A note for agents, shown in the thread as a message of type `note` (direction `out`,
    no `wamid`, `status` null). It is never sent to WhatsApp, never the conversation's
    `last_message` or preview, and changes neither `unread_count` nor the 24-hour window.
    """
    note_id = actions.add_note(conversation_id, current_agent().id, json.text)
    return jsonify(serializers.message(message_row(db.session, note_id), {})), 201


@bp.get("/respuestas")
@documented(
    "listCannedResponses",
    tag="actions",
    security=API_AUTH,
    responses={200: json_response("The canned responses.", CannedResponseList), 400: BAD_PARAMETER, **API_ERRORS},
)
@api_auth_required
@accepts("listCannedResponses")
def canned_responses(query: CannedResponseQuery) -> Any:
    """Canned responses

    Every canned response, sorted by short code. Shared by all agents.
    """
    rows = actions.list_canned_responses(query.q)
    return jsonify(canned_responses=[serializers.canned_response(row) for row in rows])


@bp.post("/respuestas")
@documented(
    "createCannedResponse",
    tag="actions",
    security=API_AUTH,
    responses={
        201: json_response("The stored canned response.", CannedResponse),
        400: INVALID_BODY,
        409: error_answer(
            "duplicate_short_code",
            "Another canned response has this short code, in any case (`duplicate_short_code`).",
        ),
        **API_ERRORS,
    },
)
@api_auth_required
@accepts("createCannedResponse")
def create_canned_response(json: CannedResponseRequest) -> Any:
    """Save a canned response

    The short code is stored lower-case and is unique regardless of case.
    """
    row = actions.create_canned_response(current_agent().id, json.short_code, json.text)
    return jsonify(serializers.canned_response(row)), 201


@bp.delete("/respuestas/<id:canned_id>")
@documented(
    "deleteCannedResponse",
    tag="actions",
    security=API_AUTH,
    path={"canned_id": "The canned response's `id`. Unknown ids answer 404."},
    responses={
        204: empty("Removed."),
        403: error_answer("forbidden", "Only its author or an admin can delete a canned response."),
        404: error_answer("not_found", "No canned response with that id."),
        **API_ERRORS,
    },
)
@api_auth_required
def delete_canned_response(canned_id: int) -> Any:
    """Remove a canned response

    Its author or an admin may remove it (403 `forbidden` for any other agent); its short code is
    free again.
    """
    actions.delete_canned_response(canned_id, current_agent())
    return "", 204

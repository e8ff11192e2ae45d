"""Labels from the API: admins define them (`/etiquetas`); every agent puts them on
conversations (`PATCH /conversaciones/<id>` with `labels`) — and bulk actions on several
conversations at once (`POST /conversaciones/lote`)."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from app.api import serializers
from app.api.docs import (
    API_AUTH,
    API_ERRORS,
    INVALID_BODY,
    documented,
    empty,
    error_answer,
    json_response,
)
from app.api.guards import api_admin_required, api_auth_required, current_agent
from app.api.responses import BulkResult, Error, Label, LabelList, UnknownIdsError
from app.api.schemas import BulkRequest, LabelPatch, LabelRequest
from app.api.validation import accepts
from app.api.views import bp
from app.extensions import db
from app.services import conversation_actions as actions
from app.services import labels as label_service
from app.services.conversations import get_conversation_summaries

FORBIDDEN_NOT_ADMIN = error_answer("forbidden", "The caller is not an admin.")
DUPLICATE_NAME = error_answer(
    "duplicate_label_name", "Another label has this name, in any case (`duplicate_label_name`)."
)
LABEL_NOT_FOUND = error_answer("not_found", "No label with that id.")
LABEL_PATH = {"label_id": "The label's `id`. Unknown ids answer 404."}


@bp.get("/etiquetas")
@documented(
    "listLabels",
    tag="labels",
    security=API_AUTH,
    responses={200: json_response("Every label.", LabelList), **API_ERRORS},
)
@api_auth_required
def labels() -> Any:
    """Labels

    Every label, by name (case-insensitive). Shared by all agents; admins define them.
    """
    return jsonify(labels=[serializers.label(item) for item in label_service.list_labels()])


@bp.post("/etiquetas")
@documented(
    "createLabel",
    tag="labels",
    security=API_AUTH,
    responses={
        201: json_response("The new label.", Label),
        400: INVALID_BODY,
        403: FORBIDDEN_NOT_ADMIN,
        409: DUPLICATE_NAME,
        **API_ERRORS,
    },
)
@api_auth_required
@api_admin_required
@accepts("createLabel")
def create_label(json: LabelRequest) -> Any:
    """Define a label (admins)

    `name` is trimmed and unique whatever the case; `color` is `#rrggbb`, stored lower-case.
    """
    label = label_service.create_label(current_agent(), json.name, json.color)
    return jsonify(serializers.label(label)), 201


@bp.patch("/etiquetas/<id:label_id>")
@documented(
    "updateLabel",
    tag="labels",
    security=API_AUTH,
    path=LABEL_PATH,
    responses={
        200: json_response("The label after the change.", Label),
        400: INVALID_BODY,
        403: FORBIDDEN_NOT_ADMIN,
        404: LABEL_NOT_FOUND,
        409: DUPLICATE_NAME,
        **API_ERRORS,
    },
)
@api_auth_required
@api_admin_required
@accepts("updateLabel")
def update_label(label_id: int, json: LabelPatch) -> Any:
    """Rename or recolour a label (admins)

    Every conversation carrying it shows the change at once (their ETags change).
    """
    label = label_service.update_label(current_agent(), label_id, name=json.name, color=json.color)
    return jsonify(serializers.label(label))


@bp.delete("/etiquetas/<id:label_id>")
@documented(
    "deleteLabel",
    tag="labels",
    security=API_AUTH,
    path=LABEL_PATH,
    responses={204: empty("Removed."), 403: FORBIDDEN_NOT_ADMIN, 404: LABEL_NOT_FOUND, **API_ERRORS},
)
@api_auth_required
@api_admin_required
def delete_label(label_id: int) -> Any:
    """Remove a label (admins)

    It is taken off every conversation that carried it; its name is free again.
    """
    label_service.delete_label(current_agent(), label_id)
    return "", 204


@bp.post("/conversaciones/lote")
@documented(
    "bulkUpdateConversations",
    tag="actions",
    security=API_AUTH,
    responses={
        200: json_response("Done, to every conversation named.", BulkResult),
        400: json_response(
            "The body is not valid (`invalid_body`: no ids, more than 100, an unknown action, a missing "
            "`assignee_id` or `label_id`, an agent who is not active, a `snoozed_until` in the past), or "
            "`label_id` is no label (`unknown_labels`, naming it in `unknown`). Nothing is changed.",
            {"oneOf": [Error, UnknownIdsError]},
        ),
        404: json_response(
            "Conversation ids that do not exist (`not_found`); `unknown` names them. Nothing was changed.",
            UnknownIdsError,
        ),
        409: json_response(
            "`unread` where the customer never wrote (`nothing_to_mark_unread`); `unknown` names those "
            "conversations. Nothing was changed.",
            UnknownIdsError,
        ),
        **API_ERRORS,
    },
)
@api_auth_required
@accepts("bulkUpdateConversations")
def bulk_update(json: BulkRequest) -> Any:
    """One action on several conversations

    `action` on every conversation of `ids` (up to 100), all or nothing in one transaction: an
    unknown conversation (404, `unknown` names them), agent or label (400) changes nothing.
    The same rules as the single actions: `assign` to an active agent, `unread` only where the
    customer wrote, `snooze` until `snoozed_until` (without it: until the customer writes),
    `reopen` also wakes snoozed ones, `read` marks read here and then sends WhatsApp's read
    receipts (a failed receipt never undoes the local read; `read_receipts` counts them).
    Every agent may.
    """
    result = actions.bulk_update(
        json.ids,
        json.action,
        agent_id=current_agent().id,
        assignee_id=json.assignee_id,
        label_id=json.label_id,
        snoozed_until=json.snoozed_until,
    )
    return jsonify(
        action=json.action,
        updated=len(result.ids),
        conversations=[
            serializers.conversation_summary(row) for row in get_conversation_summaries(db.session, result.ids)
        ],
        read_receipts=result.read_receipts,
    )

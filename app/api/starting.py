"""Starting a conversation from the API: a template to a number typed by an agent.

The service (app/services/starting.py) stores the contact, the conversation and the pending
message before Graph is called, and re-keys the contact by Meta's `wa_id`; this module decides
how the outcome is answered. With an `Idempotency-Key` the rendered answer is kept on the key,
as for sends (app/api/sending.py).
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from app.api import serializers
from app.api.docs import (
    API_AUTH,
    API_ERRORS,
    IDEMPOTENT_REPLAYED,
    documented,
    error_schema,
    header,
    json_response,
)
from app.api.errors import domain_error_body, status_for
from app.api.guards import api_auth_required, current_agent
from app.api.responses import ConversationExistsError, Error, MissingParametersError, StartFailure, StartResult
from app.api.schemas import StartConversationRequest
from app.api.validation import accepts
from app.api.views import bp
from app.extensions import db
from app.services import sending, starting
from app.services.conversations import get_conversation_summary, message_row
from app.services.errors import DomainError
from app.services.sending import KeptAnswer, SendOutcome

REPLAYED = {"Idempotent-Replayed": IDEMPOTENT_REPLAYED}


def render(outcome: SendOutcome | DomainError) -> KeptAnswer:
    """201 with the conversation and its first message; 502 with Meta's error, the new
    conversation and the stored failed message; or the refusal's status and error body."""
    if isinstance(outcome, DomainError):
        return KeptAnswer(status_for(outcome), domain_error_body(outcome))
    row = message_row(db.session, outcome.message_id)
    stored = serializers.message(row, {})
    conversation_id = row.Message.conversation_id
    error = outcome.error
    if error is None:
        summary = serializers.conversation_summary(get_conversation_summary(db.session, conversation_id))
        return KeptAnswer(201, {"conversation": summary, "message": stored})
    return KeptAnswer(
        502,
        {
            "error": "graph_error",
            "message": f"WhatsApp did not accept the message: {error.title}",
            "graph_error": {
                "code": error.code,
                "title": error.title,
                "details": error.details,
                "fbtrace_id": error.fbtrace_id,
            },
            "conversation_id": conversation_id,
            "message_id": outcome.message_id,
            "stored_message": stored,
        },
    )


def _respond(answer: KeptAnswer, *, replayed: bool = False) -> Any:
    response = jsonify(answer.body)
    response.status_code = answer.status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.post("/conversaciones")
@documented(
    "startConversation",
    tag="sending",
    security=API_AUTH,
    parameters=[
        header(
            "Idempotency-Key",
            {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"},
            "As for sending: 1–255 visible ASCII characters, unique per conversation to start, scoped to the "
            "calling agent and kept 24 hours; a repeated request answers the first one's result and starts "
            "nothing again. Reusing it with a different body is 422 `idempotency_key_reused`.",
        )
    ],
    responses={
        201: json_response(
            "Started: Graph accepted the template. The conversation (with the contact as Meta knows them) and its "
            "first message.",
            StartResult,
            headers=REPLAYED,
        ),
        400: json_response(
            "The body is not valid (`invalid_body`), the number is not a phone number (`invalid_phone`), the "
            "template is unknown or not approved (`unknown_template`), placeholders are empty "
            "(`missing_parameters`), or the `Idempotency-Key` is malformed (`invalid_idempotency_key`). Nothing "
            "is stored or sent.",
            {"oneOf": [Error, MissingParametersError]},
            headers=REPLAYED,
        ),
        409: json_response(
            "There already is a conversation with this contact on this business number (`conversation_exists`, "
            "with its `conversation_id`): send there instead. Or the same `Idempotency-Key` is still in "
            "progress (`request_in_progress`). Nothing is stored or sent.",
            {"oneOf": [ConversationExistsError, Error]},
            headers=REPLAYED,
        ),
        422: json_response(
            "The `Idempotency-Key` was used for a different request in the last 24 hours (`idempotency_key_reused`).",
            error_schema("idempotency_key_reused"),
        ),
        502: json_response(
            "Graph refused the template or could not be reached: the conversation exists with the failed message "
            "(retry it from the conversation).",
            StartFailure,
            headers=REPLAYED,
        ),
        **API_ERRORS,
    },
)
@api_auth_required
@accepts("startConversation")
def start_conversation(json: StartConversationRequest) -> Any:
    """Start a conversation with a template

    A conversation with someone who has not written (or not on this business number): the
    number as people type it (`+34 612 34 56 78`, `0034 612…`, or a national number of
    `DEFAULT_PHONE_REGION`), an optional name for the contact (the team's `display_name`), and
    an approved template in the same shape as sending one — the 24-hour window is closed, so
    only a template can open it. It is sent from the business number `WHATSAPP_PHONE_NUMBER_ID`.

    The contact, the conversation and the pending message are stored before Graph is called.
    Meta's answer names the `wa_id` its webhooks will use for that person; when it differs
    from the typed number (Mexico `+52 1 …`, Argentina `+54 9 …`, Brazil's ninth digit) the
    contact is re-keyed to it, or merged into the contact that already has it (the message
    then joins that contact's conversation, which is the one answered), so replies land in
    this conversation.
    """
    data = request.get_json()  # as sent: what an Idempotency-Key stands for
    key = request.headers.get("Idempotency-Key")
    idempotency = sending.Idempotency(key, starting.request_hash(data), render) if key is not None else None
    template = json.template
    command = starting.StartRequest(
        phone=json.phone,
        name=json.name,
        template=sending.OutgoingTemplate(
            name=template.name,
            language=template.language_code,
            parameters={name: str(value) for name, value in template.parameters.items()},
        ),
    )
    result = starting.start_conversation(current_agent().id, command, idempotency)
    if isinstance(result, KeptAnswer):
        return _respond(result, replayed=True)
    return _respond(result.kept or render(result))

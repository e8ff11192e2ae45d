"""Sending from the API: free text inside the 24-hour window, templates at any time, retries.

The service records what happened (`SendOutcome`) or refuses (a domain error); this module
decides how that is answered. With an `Idempotency-Key`, the service keeps this module's
rendered answer on the key inside the transaction that records the outcome, so a replay
answers exactly what the first request was answered.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from app.api import serializers
from app.api.docs import (
    API_AUTH,
    API_ERRORS,
    GRAPH_FAILURE,
    IDEMPOTENT_REPLAYED,
    documented,
    error_answer,
    error_schema,
    header,
    json_response,
)
from app.api.errors import domain_error_body, status_for
from app.api.guards import api_auth_required, current_agent
from app.api.responses import Error, MissingParametersError, SendFailure, SendResult, WindowClosedError
from app.api.schemas import SendRequest, SendTemplate, SendText
from app.api.validation import accepts
from app.api.views import bp
from app.extensions import db
from app.services import sending
from app.services.conversations import message_row
from app.services.errors import DomainError
from app.services.sending import KeptAnswer, SendOutcome


def render(outcome: SendOutcome | DomainError) -> KeptAnswer:
    """The answer to a send: 201 with the message, 502 (409 for Meta's 131047) with Meta's
    error and the stored failed message, or the refusal's status and error body."""
    if isinstance(outcome, DomainError):
        return KeptAnswer(status_for(outcome), domain_error_body(outcome))
    stored = serializers.message(message_row(db.session, outcome.message_id), {})
    error = outcome.error
    if error is None:
        return KeptAnswer(201, {"message": stored})
    body: dict[str, Any] = {
        "error": "window_closed" if outcome.window_closed else "graph_error",
        "message": (
            "WhatsApp refused free text: more than 24 hours have passed since the customer last wrote. "
            "Send a template instead."
            if outcome.window_closed
            else f"WhatsApp did not accept the message: {error.title}"
        ),
        "graph_error": {
            "code": error.code,
            "title": error.title,
            "details": error.details,
            "fbtrace_id": error.fbtrace_id,
        },
        "message_id": outcome.message_id,
        "stored_message": stored,
    }
    return KeptAnswer(409 if outcome.window_closed else 502, body)


def _respond(answer: KeptAnswer, *, replayed: bool = False) -> Response:
    response = jsonify(answer.body)
    response.status_code = answer.status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def outgoing(request: SendText | SendTemplate) -> sending.OutgoingText | sending.OutgoingTemplate:
    """The service's command for a validated send request."""
    if isinstance(request, SendText):
        return sending.OutgoingText(text=request.text, reply_to=request.reply_to)
    template = request.template
    return sending.OutgoingTemplate(
        name=template.name,
        language=template.language_code,
        parameters={name: str(value) for name, value in template.parameters.items()},
        reply_to=request.reply_to,
    )


@bp.post("/conversaciones/<id:conversation_id>/mensajes")
@documented(
    "sendMessage",
    tag="sending",
    security=API_AUTH,
    parameters=[
        header(
            "Idempotency-Key",
            {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"},
            "Any 1–255 visible ASCII characters chosen by the client, unique per message to send; scoped to "
            "the calling agent and kept 24 hours. Reusing it with a different body is 422 "
            "`idempotency_key_reused`; while the first request is still being sent the second waits up to "
            "20 s, then 409 `request_in_progress`.",
        )
    ],
    responses={
        201: json_response(
            "Graph accepted the message (`status` `accepted`, with its `wamid`).",
            SendResult,
            headers={"Idempotent-Replayed": IDEMPOTENT_REPLAYED},
        ),
        400: json_response(
            "The body is not a valid send request (`invalid_body`), the template is unknown or not approved "
            "(`unknown_template`), placeholders are empty (`missing_parameters`, listing them in `missing`), "
            "or the `Idempotency-Key` is malformed (`invalid_idempotency_key`). Nothing is stored or sent.",
            {"oneOf": [Error, MissingParametersError]},
            headers={"Idempotent-Replayed": IDEMPOTENT_REPLAYED},
        ),
        404: error_answer(
            "not_found", "No conversation with that id.", headers={"Idempotent-Replayed": IDEMPOTENT_REPLAYED}
        ),
        409: json_response(
            "Free text outside the 24-hour window (`window_closed`, before Graph is called, with "
            "`window_expires_at`; or Meta's 131047 after the call, with `graph_error` and the failed "
            "`stored_message`), a contact with no phone number (`contact_unreachable`), or the same "
            "`Idempotency-Key` still in progress (`request_in_progress`).",
            {"oneOf": [Error, WindowClosedError, SendFailure]},
            headers={"Idempotent-Replayed": IDEMPOTENT_REPLAYED},
        ),
        422: json_response(
            "The `Idempotency-Key` was used for a different request in the last 24 hours (`idempotency_key_reused`).",
            error_schema("idempotency_key_reused"),
        ),
        502: GRAPH_FAILURE,
        **API_ERRORS,
    },
)
@api_auth_required
@accepts("sendMessage")
def send_message(conversation_id: int, json: SendRequest) -> Any:
    """Send a text or a template

    Free text is accepted only inside WhatsApp's 24-hour customer service window (24 hours
    from the customer's last message); outside it the answer is 409 `window_closed` and
    Graph is not called: send an approved template instead, which is allowed at any time.

    The message is stored as `pending` and committed before Graph is called, so it is never
    lost nor sent without a trace. Graph's answer makes it `accepted` (201, with Meta's
    `wamid`) or `failed` (409 `window_closed` for Meta's 131047, else 502 `graph_error`;
    the failed message is kept and can be retried). Transient Graph errors are retried a
    bounded number of times; a timeout is not retried (the send may have gone out).

    With an `Idempotency-Key`, a repeated request within 24 hours is not sent again: it
    gets the first request's answer with `Idempotent-Replayed: true`.
    """
    data = request.get_json()  # as sent: what an Idempotency-Key stands for
    key = request.headers.get("Idempotency-Key")
    idempotency = (
        sending.Idempotency(key, sending.request_hash(conversation_id, data), render) if key is not None else None
    )
    result = sending.send(conversation_id, current_agent().id, outgoing(json.root), idempotency)
    if isinstance(result, KeptAnswer):
        return _respond(result, replayed=True)
    return _respond(result.kept or render(result))


@bp.post("/conversaciones/<id:conversation_id>/mensajes/<bigid:message_id>/reintentar")
@documented(
    "retryMessage",
    tag="sending",
    security=API_AUTH,
    path={"message_id": "The failed message's id (`id` in the thread). Unknown ids answer 404."},
    responses={
        201: json_response("Graph accepted the message this time.", SendResult),
        404: error_answer("not_found", "No such conversation, or no such message in it."),
        409: json_response(
            "The message is not a failed agent text or template, or is already being retried "
            "(`not_retryable`); or free text outside the 24-hour window (`window_closed`).",
            {"oneOf": [Error, WindowClosedError, SendFailure]},
        ),
        502: GRAPH_FAILURE,
        **API_ERRORS,
    },
)
@api_auth_required
def retry_message(conversation_id: int, message_id: int) -> Any:
    """Send a failed message again

    Only a `failed` text or template sent by an agent; it becomes `pending` again and is
    sent as a new recorded attempt, with the same answers as sending. Free text still needs
    the 24-hour window. A second click while it is being retried is 409 `not_retryable`.
    """
    return _respond(render(sending.retry(conversation_id, message_id, current_agent().id)))

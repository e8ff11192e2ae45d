"""The business's reaction to a customer's message: set (`PUT`) or removed (`DELETE`).

The service (app/services/reactions.py) stores and sends it with every guarantee of a text;
this module answers its outcome. With an `Idempotency-Key`, the answer is kept on the key in the
transaction that records the outcome, as for sends (app/api/sending.py).
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from app.api import docs, serializers
from app.api.docs import (
    API_AUTH,
    API_ERRORS,
    IDEMPOTENT_REPLAYED,
    documented,
    error_answer,
    error_schema,
    header,
    json_response,
)
from app.api.errors import domain_error_body, status_for
from app.api.guards import api_auth_required, current_agent
from app.api.responses import Error, ReactionFailure, ReactionResult, WindowClosedError
from app.api.schemas import ReactionRequest
from app.api.validation import accepts
from app.api.views import bp
from app.extensions import db
from app.services import reactions, sending
from app.services.conversations import message_with_reactions
from app.services.errors import DomainError
from app.services.reactions import Unchanged
from app.services.sending import KeptAnswer, Render, SendOutcome


def _renderer(message_id: int) -> Render:
    """How a reaction's outcome on `message_id` is answered (kept for replays)."""

    def render(outcome: SendOutcome | DomainError) -> KeptAnswer:
        if isinstance(outcome, DomainError):
            return KeptAnswer(status_for(outcome), domain_error_body(outcome))
        target = serializers.message(*message_with_reactions(db.session, message_id))
        if isinstance(outcome, Unchanged):
            return KeptAnswer(200, {"message": target, "reaction": None})
        reaction = serializers.agent_reaction(reactions.reaction_of(outcome.message_id))
        error = outcome.error
        if error is None:
            return KeptAnswer(200, {"message": target, "reaction": reaction})
        return KeptAnswer(
            409 if outcome.window_closed else 502,
            {
                "error": "window_closed" if outcome.window_closed else "graph_error",
                "message": f"WhatsApp did not accept the reaction: {error.title}",
                "graph_error": {
                    "code": error.code,
                    "title": error.title,
                    "details": error.details,
                    "fbtrace_id": error.fbtrace_id,
                },
                "reaction": reaction,
                "stored_message": target,
            },
        )

    return render


def _react(conversation_id: int, message_id: int, emoji: str | None, data: Any) -> Response:
    key = request.headers.get("Idempotency-Key")
    render = _renderer(message_id)
    idempotency = (
        sending.Idempotency(
            key,
            sending.request_hash(conversation_id, {"reaction_to": message_id, "method": request.method, "body": data}),
            render,
        )
        if key is not None
        else None
    )
    result = reactions.react(conversation_id, message_id, current_agent().id, emoji, idempotency)
    replayed = isinstance(result, KeptAnswer)
    answer = result if isinstance(result, KeptAnswer) else (result.kept or render(result))
    response = jsonify(answer.body)
    response.status_code = answer.status
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


_KEY = header(
    "Idempotency-Key",
    {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"},
    "As for `sendMessage`: the same key from the same agent within 24 hours answers the first answer "
    "(`Idempotent-Replayed: true`) and sends nothing again; with another request it is 422.",
)
_REPLAYED = {"Idempotent-Replayed": IDEMPOTENT_REPLAYED}


def _responses(done: str) -> dict[int, docs.Response]:
    return {
        200: json_response(done, ReactionResult, headers=_REPLAYED),
        400: json_response(
            'The body is not `{"emoji": <one emoji>}` (`invalid_body`), or the `Idempotency-Key` is malformed '
            "(`invalid_idempotency_key`). Nothing is stored or sent.",
            Error,
            headers=_REPLAYED,
        ),
        404: error_answer("not_found", "No such conversation, or no such message in it.", headers=_REPLAYED),
        409: json_response(
            "The 24-hour window is closed (`window_closed`, before Graph is called; or Meta's 131047 after the "
            "call, with the failed `reaction`), the message is not a customer's message WhatsApp takes reactions "
            "to (`not_reactable`: ours, deleted, older than 30 days), the contact has no phone number "
            "(`contact_unreachable`), or the same `Idempotency-Key` is still in progress (`request_in_progress`).",
            {"oneOf": [Error, WindowClosedError, ReactionFailure]},
            headers=_REPLAYED,
        ),
        422: json_response(
            "The `Idempotency-Key` was used for a different request in the last 24 hours (`idempotency_key_reused`).",
            error_schema("idempotency_key_reused"),
        ),
        502: json_response(
            "Graph refused the reaction or could not be reached (`graph_error`): it is kept `failed` with Meta's "
            "code and reason, and the message keeps the reaction it had.",
            ReactionFailure,
            headers=_REPLAYED,
        ),
        **API_ERRORS,
    }


_PATH = {"message_id": "The customer's message (`id` in the thread)."}


@bp.put("/conversaciones/<id:conversation_id>/mensajes/<bigid:message_id>/reaccion")
@documented(
    "setReaction",
    tag="sending",
    security=API_AUTH,
    path=_PATH,
    parameters=[_KEY],
    responses=_responses(
        "Graph accepted the reaction (`reaction.status` `accepted`), or the message already had this reaction "
        "from the business (`reaction` null, nothing sent). `message` is the message with its current reactions."
    ),
)
@api_auth_required
@accepts("setReaction")
def set_reaction(conversation_id: int, message_id: int, json: ReactionRequest) -> Any:
    """React to a customer's message

    Sends WhatsApp a reaction with one emoji to a customer's message; it replaces the business's
    earlier reaction to it (the business has one, whichever agent set it). Like free text it needs
    the 24-hour window (409 `window_closed`, Graph not called). The reaction is stored `pending`
    and committed before Graph is called, then `accepted` with its `wamid` or `failed` with Meta's
    code (502; the message keeps the reaction it had). Meta reports only `sent` for reactions.
    """
    return _react(conversation_id, message_id, json.emoji, request.get_json())


@bp.delete("/conversaciones/<id:conversation_id>/mensajes/<bigid:message_id>/reaccion")
@documented(
    "removeReaction",
    tag="sending",
    security=API_AUTH,
    path=_PATH,
    parameters=[_KEY],
    responses=_responses(
        "Graph accepted the removal (`reaction.emoji` null), or the business had no reaction on the message "
        "(`reaction` null, nothing sent). `message` is the message with its current reactions."
    ),
)
@api_auth_required
def remove_reaction(conversation_id: int, message_id: int) -> Any:
    """Remove the business's reaction

    Sends WhatsApp the removal (a reaction with an empty emoji), with the same rules and answers
    as setting one.
    """
    return _react(conversation_id, message_id, None, None)

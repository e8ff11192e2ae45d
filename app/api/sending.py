"""Sending from the API: free text inside the 24-hour window, templates at any time, retries.

The service records what happened (`SendOutcome`) or refuses (a domain error); this module
decides how that is answered. With an `Idempotency-Key`, the service keeps this module's
rendered answer on the key inside the transaction that records the outcome, so a replay
answers exactly what the first request was answered.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, jsonify, request
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from app.api import serializers
from app.api.docs import (
    API_AUTH,
    API_ERRORS,
    GRAPH_FAILURE,
    IDEMPOTENT_REPLAYED,
    Body,
    documented,
    error_answer,
    error_schema,
    header,
    json_response,
)
from app.api.errors import domain_error_body, status_for
from app.api.guards import api_auth_required, current_agent
from app.api.responses import (
    Error,
    FileTooLargeError,
    MissingParametersError,
    SendFailure,
    SendResult,
    StickerDimensionsError,
    UnsupportedMediaError,
    WindowClosedError,
)
from app.api.schemas import SendMediaForm, SendRequest, SendTemplate, SendText
from app.api.validation import accepts, validated_form
from app.api.views import bp
from app.extensions import db
from app.services import outbound_media, sending
from app.services.conversations import message_row
from app.services.errors import DomainError, Invalid, TooLarge
from app.services.sending import KeptAnswer, SendOutcome
from app.whatsapp import media_rules


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


# --- media: the same route with multipart/form-data --------------------------------------------

# The largest file WhatsApp takes (a 100 MB document) plus room for the form's other parts. Only
# this route's multipart form may be that large: every other body stays under MAX_CONTENT_LENGTH.
UPLOAD_CEILING = media_rules.MAX_UPLOAD_BYTES + media_rules.MB
_FORM_FIELDS = ("caption", "filename", "reply_to")


def media_form_or_json(json_view: Callable[[int], Any]) -> Callable[[int], Any]:
    """`multipart/form-data` is a file to send (`send_media`); anything else goes to the JSON
    view, validated by `@accepts` as before."""

    @wraps(json_view)
    def view(conversation_id: int) -> Any:
        if request.mimetype == "multipart/form-data":
            return send_media(conversation_id)
        return json_view(conversation_id)

    return view


def _media_form() -> tuple[SendMediaForm, FileStorage]:
    """The form, parsed with this route's ceiling; the file part streams to a temporary file
    (Werkzeug keeps only small ones in memory), so it is never held in memory twice."""
    request.max_content_length = UPLOAD_CEILING
    try:
        files, form = request.files, request.form
    except RequestEntityTooLarge:
        if (request.content_length or 0) > UPLOAD_CEILING:
            largest = media_rules.human_size(media_rules.MAX_UPLOAD_BYTES)
            raise TooLarge(
                f"The upload is larger than WhatsApp's largest file ({largest}, a document).",
                limit_bytes=media_rules.MAX_UPLOAD_BYTES,
                size=request.content_length,
            ) from None
        raise Invalid("A form field is too large.") from None
    fields: dict[str, Any] = {name: values for name, values in form.lists()}
    for name, values in [*fields.items(), *files.lists()]:
        if len(values) > 1:
            raise Invalid(f"'{name}' is given more than once.", field=name)
    data = {name: values[0] for name, values in fields.items()}
    if "file" in files:
        data["file"] = files["file"]
    parsed = validated_form(SendMediaForm, data)
    if not isinstance(parsed.file, FileStorage):
        raise Invalid("'file' must be a file part (Content-Disposition with a filename).", field="file")
    return parsed, parsed.file


def send_media(conversation_id: int) -> Response:
    """The multipart form of `sendMessage`: judge and check the file, then send it like text."""
    form, upload = _media_form()
    attachment = outbound_media.Attachment(
        stream=upload.stream,
        filename=upload.filename,
        caption=form.caption,
        filename_override=form.filename,
        reply_to=form.reply_to,
    )
    with outbound_media.prepared(attachment) as media:
        key = request.headers.get("Idempotency-Key")
        idempotency = (
            sending.Idempotency(key, sending.request_hash(conversation_id, media.request_facts()), render)
            if key is not None
            else None
        )
        result = outbound_media.send_media(conversation_id, current_agent().id, media, idempotency)
    if isinstance(result, KeptAnswer):
        return _respond(result, replayed=True)
    return _respond(result.kept or render(result))


_MEDIA_LIMITS = ", ".join(
    f"{kind} ({formats}) {media_rules.human_size(limit)}" for kind, formats, limit in media_rules.LIMITS
)
MEDIA_FORM = Body(
    {"multipart/form-data": SendMediaForm},
    encoding={
        "multipart/form-data": {
            "file": {"contentType": ", ".join(sorted({f.mime_type for f in media_rules.FORMATS.values()}))}
        }
    },
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
    body=MEDIA_FORM,
    responses={
        201: json_response(
            "Graph accepted the message (`status` `accepted`, with its `wamid`).",
            SendResult,
            headers={"Idempotent-Replayed": IDEMPOTENT_REPLAYED},
        ),
        400: json_response(
            "The body is not a valid send request (`invalid_body`), the template is unknown or not approved "
            "(`unknown_template`), placeholders are empty (`missing_parameters`, listing them in `missing`), "
            "or the `Idempotency-Key` is malformed (`invalid_idempotency_key`); for a file: it is empty "
            "(`empty_file`), has a caption where WhatsApp takes none (`caption_not_allowed`, audio and "
            "stickers), or is a sticker that is not 512 × 512 pixels (`sticker_dimensions`, with `width` and "
            "`height`). Nothing is stored or sent.",
            {"oneOf": [Error, MissingParametersError, StickerDimensionsError]},
            headers={"Idempotent-Replayed": IDEMPOTENT_REPLAYED},
        ),
        413: json_response(
            f"The file is larger than WhatsApp takes for its type (`file_too_large`, with `limit_bytes`): "
            f"{_MEDIA_LIMITS}. Nothing is stored or sent.",
            FileTooLargeError,
        ),
        415: json_response(
            "WhatsApp does not take this file (`unsupported_media_type`: an unknown type, OGG that is not "
            "Opus, WebM video, a video that is not H.264 with no sound or one AAC track, text not named .txt), "
            "or its name's extension says another type than its "
            "content (`media_type_mismatch`); `detected` names what the content is. Nothing is stored or sent.",
            UnsupportedMediaError,
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
        503: json_response(
            "The database is unavailable (`database_unavailable`, with `Retry-After`), or the media storage "
            "could not keep a file (`storage_unavailable`); nothing was sent.",
            {"anyOf": [error_schema("database_unavailable"), error_schema("storage_unavailable")]},
            headers={"Retry-After": {"required": False, "schema": {"type": "integer", "minimum": 1}}},
        ),
    },
)
@api_auth_required
@media_form_or_json
@accepts("sendMessage")
def send_message(conversation_id: int, json: SendRequest) -> Any:
    """Send a text, a template or a file

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

    **A file** (image, video, audio, document or sticker) is sent as `multipart/form-data` with
    a `file` part and optional `caption`, `filename` (documents) and `reply_to` parts. Its type
    is judged by its content, and WhatsApp's limits are checked before anything is stored or
    uploaded: 400 `empty_file` or `sticker_dimensions` (stickers are 512 × 512), 413
    `file_too_large` (with `limit_bytes`), 415 `unsupported_media_type` (a video must be H.264,
    with no sound or one AAC track) or `media_type_mismatch` (the name's extension says another type).
    A WebM/Opus recording (Chromium's MediaRecorder) is converted to OGG/Opus and sent as a
    voice message. Like text it needs the 24-hour window (409 `window_closed`, nothing stored).
    The file is kept in our media storage (`GET /whatsapp/api/media/{message id}` serves it),
    the message stored `pending`, then the file is uploaded to Graph and sent by its media id:
    201, or the message `failed` with Meta's code (502) — a retry uploads our copy again. The
    `Idempotency-Key` stands for the file's sha256 and the form's fields.
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

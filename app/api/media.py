"""Media of a message, streamed from WhatsApp (see app/services/media.py)."""

from __future__ import annotations

from typing import Any

from flask import Response

from app.api import docs
from app.api.errors import domain_error_response
from app.api.responses import MediaFailure
from app.api.views import bp
from app.auth.guards import api_auth_required
from app.services import media
from app.services.errors import DomainError


@bp.get("/media/<bigid:message_id>")
@docs.documented(
    "getMessageMedia",
    tag="media",
    security=docs.API_AUTH,
    path={"message_id": "The message's `id` (as in the thread). Unknown ids answer 404."},
    responses={
        200: docs.Response(
            "The file's bytes, streamed.",
            {
                kind: {"$ref": "#/components/schemas/MediaBytes"}
                for kind in ("image/*", "audio/*", "video/*", "application/*", "text/*")
            },
            {
                "Content-Disposition": {
                    "description": "`inline` or `attachment`, with `filename` and, for non-ASCII names, `filename*`.",
                    "required": True,
                    "schema": {"type": "string", "pattern": '^(inline|attachment); filename="[^"]*"'},
                },
                "Content-Length": {
                    "description": "The file's size in bytes, when Graph gives it.",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0},
                },
                "Cache-Control": {
                    "description": "Private caching only.",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^private, max-age=[0-9]+$"},
                },
                "X-Content-Type-Options": {"required": True, "schema": {"type": "string", "const": "nosniff"}},
                "Content-Security-Policy": {
                    "description": "Even a file opened in its own tab runs no script.",
                    "required": True,
                    "schema": {"type": "string", "const": "sandbox"},
                },
            },
        ),
        404: docs.error_answer(
            "not_found",
            "No message with that id, or it has no media (not a media message, or deleted by the customer).",
        ),
        410: docs.error_answer(
            "media_expired",
            "Graph no longer knows the media id (`media_expired`): WhatsApp keeps media for 7 days; this file is "
            "no longer available.",
        ),
        502: docs.json_response(
            "Graph refused the download or could not be reached (`graph_error`), e.g. an expired access token "
            "(190) or Meta's 5xx after bounded retries.",
            MediaFailure,
        ),
        **docs.API_ERRORS,
    },
)
@api_auth_required
def message_media(message_id: int) -> Any:
    """The file of an image, audio, video, document or sticker message

    Streams the file from WhatsApp through Graph's two-step download: a fresh short-lived
    URL is asked for on every request (Meta's URLs expire after 5 minutes, so none is
    cached), then its bytes are relayed as they arrive. The same works for outbound
    messages that carry a media id.

    `Content-Type` is Graph's `mime_type` (falling back to the stored one) with its
    parameters, e.g. `audio/ogg; codecs=opus`. Documents, and anything that is not a
    picture, sound or video, are an `attachment` named after the customer's filename
    (plain ASCII in `filename`, UTF-8 in RFC 5987 `filename*`); the others are `inline`.
    Browsers may cache the file privately, never shared caches. Range requests are not
    supported.

    WhatsApp keeps media for 7 days: after that the answer is 410 `media_expired`.
    """
    try:
        source = media.media_source(message_id)  # the transaction is over before Graph is called
        stream = media.open_media(source)
    except DomainError as error:
        # A refusal is never cached: the file may be there on the next try.
        return domain_error_response(error, headers={"Cache-Control": "no-store"})
    # The body never touches the database: it only relays Graph's bytes.
    return Response(stream.body, status=200, headers=stream.headers, direct_passthrough=True)

"""Media of a message: our stored copy (with `Range` and an `ETag`), else streamed from WhatsApp
(see app/services/media.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from app.api import docs
from app.api.errors import domain_error_response
from app.api.guards import api_auth_required
from app.api.responses import MediaFailure
from app.api.views import bp
from app.services import media
from app.services.errors import DomainError

_MEDIA_CONTENT = {
    kind: {"$ref": "#/components/schemas/MediaBytes"}
    for kind in ("image/*", "audio/*", "video/*", "application/*", "text/*")
}
_MEDIA_HEADERS: dict[str, dict[str, Any]] = {
    "Content-Disposition": {
        "description": "`inline` or `attachment`, with `filename` and, for non-ASCII names, `filename*`.",
        "required": True,
        "schema": {"type": "string", "pattern": '^(inline|attachment); filename="[^"]*"'},
    },
    "Content-Length": {
        "description": "The size in bytes of what is sent (when known).",
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
}
# Sent with a stored copy (not while the file is still streamed from Graph).
_KEPT_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {"description": "The stored copy's sha256.", "required": False, "schema": {"type": "string"}},
    "Accept-Ranges": {"required": False, "schema": {"type": "string", "const": "bytes"}},
}


@bp.get("/media/<bigid:message_id>")
@docs.documented(
    "getMessageMedia",
    tag="media",
    security=docs.API_AUTH,
    path={"message_id": "The message's `id` (as in the thread). Unknown ids answer 404."},
    parameters=[
        docs.header("Range", {"type": "string"}, "One byte range of a stored copy, e.g. `bytes=0-1023`."),
        docs.header("If-Range", {"type": "string"}, "Only honour `Range` while the `ETag` is still this one."),
        docs.IF_NONE_MATCH,
    ],
    responses={
        200: docs.Response(
            "The whole file: our stored copy, or (before it is stored) Graph's bytes streamed.",
            _MEDIA_CONTENT,
            {**_MEDIA_HEADERS, **_KEPT_HEADERS},
        ),
        206: docs.Response(
            "One range of a stored copy (`Range`), with `Content-Range`.",
            _MEDIA_CONTENT,
            {
                **_MEDIA_HEADERS,
                **_KEPT_HEADERS,
                "Content-Range": {
                    "required": True,
                    "schema": {"type": "string", "pattern": "^bytes [0-9]+-[0-9]+/[0-9]+$"},
                },
            },
        ),
        304: docs.empty("`If-None-Match` names the stored copy's `ETag`: no body.", headers=_KEPT_HEADERS),
        404: docs.error_answer(
            "not_found",
            "No message with that id, or it has no media (not a media message, or deleted by the customer).",
        ),
        410: docs.json_response(
            "The file is gone: Graph no longer knows the media id and no copy was kept (`media_expired`; "
            "WhatsApp keeps media 7 days), the downloaded bytes never matched the webhook's sha256 "
            "(`media_corrupt`), or the retention removed our copy (`media_pruned`).",
            {"anyOf": [docs.error_schema(code) for code in ("media_expired", "media_corrupt", "media_pruned")]},
        ),
        416: docs.empty(
            "`Range` lies outside the stored file.",
            headers={
                "Content-Range": {"required": True, "schema": {"type": "string", "pattern": "^bytes [*]/[0-9]+$"}}
            },
        ),
        502: docs.json_response(
            "Graph refused the download or could not be reached (`graph_error`), e.g. an expired access token "
            "(190) or Meta's 5xx after bounded retries; or its bytes do not match the webhook's sha256 yet "
            "(`media_checksum_mismatch`: never relayed, the download job retries).",
            {"anyOf": [MediaFailure, docs.error_schema("media_checksum_mismatch")]},
        ),
        **docs.API_ERRORS,
    },
)
@api_auth_required
def message_media(message_id: int) -> Any:
    """The file of an image, audio, video, document or sticker message

    Serves our stored copy once it is kept (below). Until then it streams the file from
    WhatsApp through Graph's two-step download: a fresh short-lived URL is asked for on
    every request (Meta's URLs expire after 5 minutes, so none is cached), then its bytes
    are relayed as they arrive. The same works for outbound messages that carry a media id.

    `Content-Type` is Graph's `mime_type` (falling back to the stored one) with its
    parameters, e.g. `audio/ogg; codecs=opus`. Documents, and anything that is not a
    picture, sound or video, are an `attachment` named after the customer's filename
    (plain ASCII in `filename`, UTF-8 in RFC 5987 `filename*`); the others are `inline`.
    Browsers may cache the file privately, never shared caches.

    Inbound media is downloaded and kept by a background job within seconds of the webhook
    (checked against the webhook's sha256): from then on our copy is served, with an `ETag`
    and single `Range` requests (206, 416), also after WhatsApp's copy has expired (7 days).
    """
    try:
        source = media.media_source(message_id)  # the transaction is over before Graph is called
        stream = media.open_kept_or_graph(
            source,
            range_header=request.headers.get("Range"),
            if_none_match=request.headers.get("If-None-Match"),
            if_range=request.headers.get("If-Range"),
        )
    except DomainError as error:
        # A refusal is never cached: the file may be there on the next try.
        return domain_error_response(error, headers={"Cache-Control": "no-store"})
    if stream.status in (304, 416):
        headers = dict(stream.headers)
        headers.setdefault("Cache-Control", media.CACHE_CONTROL)
        if stream.status == 416:
            headers["Cache-Control"] = "no-store"
        return Response(b"", status=stream.status, headers=headers)
    # The body never touches the database: it relays our stored bytes or Graph's.
    return Response(stream.body, status=stream.status, headers=stream.headers, direct_passthrough=True)

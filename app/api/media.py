"""Media of a message: our stored copy (with `Range` and an `ETag`), else streamed from WhatsApp
(see app/services/media.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, request

from app.api.errors import domain_error_response
from app.api.views import bp
from app.auth.guards import api_auth_required
from app.services import media
from app.services.errors import DomainError


@bp.get("/media/<bigid:message_id>")
@api_auth_required
def message_media(message_id: int) -> Any:
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

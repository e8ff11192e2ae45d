"""Media of a message, streamed from WhatsApp (see app/services/media.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from app.api.views import bp
from app.auth.guards import api_auth_required
from app.services import media
from app.services.media import MediaError


@bp.errorhandler(MediaError)
def media_error(exc: MediaError) -> Any:
    response = jsonify(exc.body)
    response.status_code = exc.status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/media/<int:message_id>")
@api_auth_required
def message_media(message_id: int) -> Any:
    if message_id >= 2**63:
        raise MediaError(404, "not_found", "Message not found.")
    source = media.media_source(message_id)  # the transaction is over before Graph is called
    stream = media.open_media(source)
    # The body never touches the database: it only relays Graph's bytes.
    return Response(stream.body, status=200, headers=stream.headers, direct_passthrough=True)

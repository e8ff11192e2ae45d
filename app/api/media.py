"""Media of a message, streamed from WhatsApp (see app/services/media.py)."""

from __future__ import annotations

from typing import Any

from flask import Response

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
        stream = media.open_media(source)
    except DomainError as error:
        # A refusal is never cached: the file may be there on the next try.
        return domain_error_response(error, headers={"Cache-Control": "no-store"})
    # The body never touches the database: it only relays Graph's bytes.
    return Response(stream.body, status=200, headers=stream.headers, direct_passthrough=True)

"""Full-text search over what was said (`GET /whatsapp/api/mensajes`)."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from app.api import serializers
from app.api.docs import API_AUTH, API_ERRORS, BAD_PARAMETER, documented, json_response
from app.api.guards import api_auth_required
from app.api.responses import MessageSearchResults
from app.api.schemas import MessageSearchQuery
from app.api.validation import accepts
from app.api.views import bp
from app.extensions import db
from app.services.search import search_messages, snippet_html


@bp.get("/mensajes")
@documented(
    "searchMessages",
    tag="conversations",
    security=API_AUTH,
    responses={
        200: json_response("One page of matching messages, newest first.", MessageSearchResults),
        400: BAD_PARAMETER,
        **API_ERRORS,
    },
)
@api_auth_required
@accepts("searchMessages")
def search(query: MessageSearchQuery) -> Any:
    """Search messages

    Customer and agent messages, captions, document file names and private notes that
    contain every word of `q`, whatever the case and the accents, in any form of the word
    (Spanish stemming: `factura` finds `facturas`, `cancion` finds `canción`; the last word
    also as a prefix). Newest first; each with its conversation and a `snippet` of HTML in
    which only the matched words are marked up. Deleted messages, reactions and edits are
    not found. Two SQL statements for the search (plus one for the page's reactions)
    whatever the page; matches are counted up to 1,000.
    """
    result = search_messages(db.session, query.q, page=query.page, per_page=query.per_page)
    return jsonify(
        messages=[
            serializers.found_message(row, result.reactions, str(snippet_html(row.headline))) for row in result.rows
        ],
        pagination={
            "page": result.page,
            "per_page": result.per_page,
            "total": result.total,
            "pages": result.pages,
        },
    )

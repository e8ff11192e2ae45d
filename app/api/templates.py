"""Templates agents can send (synced from Meta with `flask --app wsgi templates sync`)."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from app.api.docs import API_AUTH, API_ERRORS, documented, json_response
from app.api.guards import api_auth_required
from app.api.responses import Template
from app.api.views import bp
from app.services import templates


@bp.get("/plantillas")
@documented(
    "listTemplates",
    tag="templates",
    security=API_AUTH,
    responses={
        200: json_response(
            "The approved templates (an empty array before the first sync).", {"type": "array", "items": Template}
        ),
        **API_ERRORS,
    },
)
@api_auth_required
def list_templates() -> Any:
    """Approved message templates

    The templates agents can send (status `APPROVED`), sorted by name then language. They
    are mirrored from the WhatsApp Business Account with `flask --app wsgi templates sync`;
    send one with `POST /whatsapp/api/conversaciones/{conversation_id}/mensajes`
    (`type: template`), filling every name of `placeholders` in `template.parameters`.
    """
    return jsonify([templates.template_body(t) for t in templates.approved_templates()])

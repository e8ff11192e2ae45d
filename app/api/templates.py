"""Templates agents can send (synced from Meta with `flask --app wsgi templates sync`)."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from app.api.views import bp
from app.auth.guards import api_auth_required
from app.services import templates


@bp.get("/plantillas")
@api_auth_required
def list_templates() -> Any:
    return jsonify([templates.template_body(t) for t in templates.approved_templates()])

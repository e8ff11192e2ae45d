"""Health checks: `/healthz` (the process is alive) and `/readyz` (the database answers)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from app.api.docs import DATABASE_UNAVAILABLE, PUBLIC, documented, json_response
from app.api.responses import Liveness, Readiness
from app.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@documented("healthz", tag="health", security=PUBLIC, responses={200: json_response("Alive.", Liveness)})
def healthz() -> Response:
    """Liveness

    The process answers; the database is not touched.
    """
    return jsonify(status="ok")


@bp.get("/readyz")
@documented(
    "readyz",
    tag="health",
    security=PUBLIC,
    responses={200: json_response("Ready to serve.", Readiness), 503: DATABASE_UNAVAILABLE},
)
def readyz() -> Response:
    """Readiness

    The database answers a `SELECT 1`.
    """
    db.session.execute(text("SELECT 1"))  # errors become 503 via the database error handlers
    return jsonify(status="ready")

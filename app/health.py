"""Health checks: `/healthz` (the process is alive) and `/readyz` (the database answers)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from app.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    db.session.execute(text("SELECT 1"))  # errors become 503 via the database error handlers
    return jsonify(status="ready")

"""What operators and their monitors call: `/healthz` (the process is alive), `/readyz` (the
database answers) and `/metrics` (Prometheus, behind its own token)."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import text
from werkzeug.datastructures import WWWAuthenticate

from app.api import docs
from app.api.docs import DATABASE_UNAVAILABLE, PUBLIC, documented, json_response
from app.api.responses import Liveness, Readiness
from app.extensions import db
from app.metrics import render_metrics
from app.services.tokens import bearer_token

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


@bp.get("/metrics")
@documented(
    "metrics",
    tag="health",
    security=docs.METRICS_AUTH,
    responses={
        200: docs.Response(
            "The metrics.",
            {"text/plain": {"type": "string"}, "application/openmetrics-text": {"type": "string"}},
            {
                "Cache-Control": {
                    "description": "Always `no-store`.",
                    "required": True,
                    "schema": {"type": "string", "const": "no-store"},
                }
            },
        ),
        401: docs.error_answer("unauthorized", "No `Authorization: Bearer <METRICS_TOKEN>` header, or another token."),
        404: docs.error_answer("not_found", "`METRICS_TOKEN` is not set: metrics are not served."),
    },
)
def metrics() -> tuple[bytes, int, dict[str, str]]:
    """Prometheus metrics

    Request latency and counts per endpoint, database unavailability, webhook outcomes,
    Graph calls, connection pool and memory, in Prometheus' text format (OpenMetrics when
    the `Accept` header asks for it). Under gunicorn every worker serves the sum of all
    workers. Disabled (404) unless `METRICS_TOKEN` is set.
    """
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        abort(404)
    given = bearer_token(request.headers.get("Authorization", ""))
    if given is None or not hmac.compare_digest(given.encode(), token.encode()):
        abort(401, www_authenticate=WWWAuthenticate("bearer", {"realm": "metrics"}))
    data, content_type = render_metrics(request.headers.get("Accept"))
    return data, 200, {"Content-Type": content_type, "Cache-Control": "no-store"}

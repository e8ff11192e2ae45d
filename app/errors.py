"""Error answers: JSON for the API and the webhook, never a stack trace.

A database that is unreachable or a pool that is exhausted answers 503 with `Retry-After`,
so Meta (and browsers) try again instead of being told the data was stored.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, render_template, request
from flask.typing import ResponseReturnValue
from flask_limiter.errors import RateLimitExceeded
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from app.api.errors import error_response
from app.extensions import db
from app.metrics import DB_UNAVAILABLE, WEBHOOK_DELIVERIES
from app.prepared import STALE_SQLSTATES
from app.ratelimits import retry_after_seconds

log = logging.getLogger(__name__)


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # the connection may already be gone; the pool discards it
        log.warning("rollback failed", exc_info=True)


def _database_unavailable(exc: Exception) -> ResponseReturnValue:
    _rollback()
    DB_UNAVAILABLE.labels(reason="pool_timeout" if isinstance(exc, PoolTimeoutError) else "connection").inc()
    if request.path.startswith("/webhook/"):
        WEBHOOK_DELIVERIES.labels(outcome="db_unavailable").inc()
    log.error("database unavailable: %s: %s", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    response = _answer(503, "database_unavailable", "The database is unavailable; try again shortly.")
    response.headers["Retry-After"] = str(current_app.config.get("DB_RETRY_AFTER_SECONDS", 5))
    return response


def _wants_json() -> bool:
    """API clients, Meta and health checks get JSON; browsers on the pages get HTML."""
    path = request.path
    if path.startswith(("/whatsapp/api", "/webhook/", "/healthz", "/readyz", "/metrics")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _answer(status: int, error: str, message: str) -> Response:
    """The one JSON error body (`app/api/errors.py`) for API clients, Meta and probes; the
    error page for browsers."""
    if _wants_json():
        return error_response(status, error, message)
    response = current_app.make_response((render_template("error.html", status=status, message=message), status))
    response.status_code = status
    return response


# SQLSTATE classes that mean "try again later", not "this request is wrong": connection
# exceptions, insufficient resources (too many connections), operator intervention (shutdown,
# statement timeout) and transaction rollbacks (deadlock, serialisation).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53", "57", "40")


def _is_connection_problem(exc: DBAPIError) -> bool:
    """True when the database is unreachable or busy (503, retry); False for errors a retry
    cannot fix, such as a value too large for an index (500, logged)."""
    if exc.connection_invalidated:
        return True
    pgcode = getattr(exc.orig, "pgcode", None)
    if pgcode is None:
        # No SQLSTATE: the server was never reached (refused, timed out, closed).
        return isinstance(exc, OperationalError)
    # A prepared statement the connection lost or can no longer run (a migration while this
    # process serves): forgotten on the error, so the request's retry prepares it again.
    return str(pgcode)[:2] in _TRANSIENT_SQLSTATE_CLASSES or pgcode in STALE_SQLSTATES


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(PoolTimeoutError)
    def pool_exhausted(exc: PoolTimeoutError) -> ResponseReturnValue:
        return _database_unavailable(exc)

    @app.errorhandler(DisconnectionError)
    def disconnected(exc: DisconnectionError) -> ResponseReturnValue:
        return _database_unavailable(exc)

    @app.errorhandler(DBAPIError)
    def dbapi_error(exc: DBAPIError) -> ResponseReturnValue:
        if _is_connection_problem(exc):
            return _database_unavailable(exc)
        return internal_error(exc)

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded) -> ResponseReturnValue:
        response = _answer(429, "rate_limited", f"Too many requests ({exc.description}); slow down and retry.")
        response.headers["Retry-After"] = str(retry_after_seconds())
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        response = _answer(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), exc.description or "")
        # Keep what the exception says about itself (Allow on 405, WWW-Authenticate on 401).
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> ResponseReturnValue:
        _rollback()
        if request.path.startswith("/webhook/"):
            WEBHOOK_DELIVERIES.labels(outcome="error").inc()
        log.exception("unhandled error")
        return _answer(500, "internal_error", "Something went wrong; it has been logged.")

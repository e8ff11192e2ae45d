"""The one JSON error body of the app, and the one table that turns domain errors into statuses.

Every JSON error answer — the API's, the API guard's, the webhook's, the app-wide 4xx, 429,
503 and 500 handlers' — is built by `error_response()`:
`{"error": <stable code>, "message": <English text>, …extra facts}`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from app.services.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Gone,
    Invalid,
    KeyReused,
    NotConfigured,
    NotFound,
    StorageUnavailable,
    TooLarge,
    UnsupportedMedia,
    UpstreamFailed,
)

# Most specific class first is not needed: the lookup walks each error's MRO.
STATUS_BY_ERROR: dict[type[DomainError], int] = {
    Invalid: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    TooLarge: 413,
    UnsupportedMedia: 415,
    KeyReused: 422,
    UpstreamFailed: 502,
    NotConfigured: 503,
    StorageUnavailable: 503,
    DomainError: 400,
}


def status_for(error: DomainError) -> int:
    """The HTTP status of a domain error: the entry of its nearest class in `STATUS_BY_ERROR`."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def error_body(error: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "message": message, **extra}


def domain_error_body(exc: DomainError) -> dict[str, Any]:
    return error_body(exc.code, exc.message, **exc.extra)


def error_response(
    status: int, error: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """The JSON error answer: `status` with `{"error", "message", …extra}`."""
    response = jsonify(error_body(error, message, **extra))
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def domain_error_response(exc: DomainError, *, headers: dict[str, str] | None = None) -> Response:
    return error_response(status_for(exc), exc.code, exc.message, headers=headers, **exc.extra)


def register_error_handlers(bp: Blueprint) -> None:
    """Every domain error raised while the blueprint's views run answers through the table."""

    @bp.errorhandler(DomainError)
    def domain_error(exc: DomainError) -> Response:
        return domain_error_response(exc)

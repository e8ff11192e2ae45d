"""The API's guard: who is calling — a bearer token or a logged-in agent session (with CSRF on writes)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, g, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms.validators import ValidationError

from app.api.errors import error_response
from app.extensions import db
from app.models import Agent
from app.services.tokens import agent_for_token, bearer_token

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _csrf_header_valid() -> bool:
    """The browser pages send the page's CSRF token in `X-CSRFToken`; a bearer token needs none."""
    try:
        validate_csrf(request.headers.get("X-CSRFToken", ""))
    except (ValidationError, CSRFError):
        return False
    return True


def current_agent() -> Agent:
    return g.agent


def _unauthorized(message: str) -> Response:
    return error_response(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="whatsapp-inbox"'})


def api_auth_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """`Authorization: Bearer <token>` or a logged-in session; 401 JSON otherwise."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        if header:
            token = bearer_token(header)
            if token is None:
                return _unauthorized("Authorization must be 'Bearer <token>'.")
            agent = agent_for_token(db.session, token)
            if agent is None:
                return _unauthorized("The token is unknown, revoked or expired.")
            g.agent = agent
            g.agent_id = agent.id
        elif current_user.is_authenticated:
            if request.method not in SAFE_METHODS and not _csrf_header_valid():
                return error_response(
                    403,
                    "csrf_failed",
                    "A request authenticated by the session cookie needs a valid X-CSRFToken header.",
                )
            g.agent = current_user
            g.agent_id = current_user.id
        else:
            return _unauthorized("Log in or send an API token.")
        return view(*args, **kwargs)

    return wrapper


def api_admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Under `api_auth_required`, before input is validated: 403 `forbidden` unless the caller
    is an admin (the role matrix, README's Security section). The services check it again."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_agent().is_admin:
            return error_response(403, "forbidden", "Only an admin can do this.")
        return view(*args, **kwargs)

    return wrapper

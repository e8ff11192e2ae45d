"""Language and time zone of the pages: Spanish by default, English available.

The one accessor of each (Flask-Babel's selectors, also called by other code): the agent's
choice, kept on their row (`agents.language`, `agents.time_zone`; NULL means "follow the
browser"); before logging in, the visitor's choice kept in the session (the login page has the
language menu); else the browser's — `Accept-Language` for the language, and for the time zone
the browser's own zone (the pages set a `tz` cookie from `Intl.DateTimeFormat`), else UTC.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, g, has_request_context, request, session
from flask_login import current_user

LANGUAGES = ("es", "en")
TZ_COOKIE = "tz"


def _agent() -> Any | None:
    """The agent of this request: an API token's (the guard sets `g.agent`) or the session's."""
    agent = g.get("agent")
    if agent is not None:
        return agent
    if has_request_context() and current_user and current_user.is_authenticated:
        return current_user
    return None


@functools.cache
def time_zones() -> tuple[str, ...]:
    return tuple(sorted(zone for zone in zoneinfo.available_timezones() if "/" in zone or zone == "UTC"))


def valid_time_zone(name: str | None) -> str | None:
    return name if name and len(name) <= 64 and name in time_zones() else None


def chosen_language() -> str | None:
    """The language the agent (or, before logging in, the visitor) chose; None: the browser's."""
    agent = _agent()
    if agent is not None and agent.language in LANGUAGES:
        return str(agent.language)
    chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else None


def chosen_time_zone() -> str | None:
    """The time zone the agent (or the visitor) chose; None: the browser's."""
    agent = _agent()
    if agent is not None and agent.time_zone:
        return valid_time_zone(agent.time_zone)
    return valid_time_zone(session.get("tz"))


def select_locale() -> str:
    return (
        chosen_language()
        or request.accept_languages.best_match(LANGUAGES)
        or current_app.config["BABEL_DEFAULT_LOCALE"]
    )


def select_timezone() -> str | None:
    return chosen_time_zone() or valid_time_zone(request.cookies.get(TZ_COOKIE))


def agent_zone() -> ZoneInfo:
    """The agent's time zone as a `ZoneInfo` (UTC when none is known): the one accessor for code
    that computes wall-clock times for the agent (the snooze presets), built on
    `select_timezone()`, so moving the choice elsewhere (the agent's row) changes it here too."""
    return ZoneInfo(select_timezone() or "UTC")

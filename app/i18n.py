"""Language and time zone of the pages: Spanish by default, English available.

The language is the agent's choice (kept in the session), else the browser's
`Accept-Language`. The time zone is the agent's choice, else the browser's own zone (the pages
set a `tz` cookie from `Intl.DateTimeFormat`), else UTC.
"""

from __future__ import annotations

import functools
import zoneinfo
from zoneinfo import ZoneInfo

from flask import current_app, request, session

LANGUAGES = ("es", "en")
TZ_COOKIE = "tz"


def select_locale() -> str:
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or current_app.config["BABEL_DEFAULT_LOCALE"]


@functools.cache
def time_zones() -> tuple[str, ...]:
    return tuple(sorted(zone for zone in zoneinfo.available_timezones() if "/" in zone or zone == "UTC"))


def valid_time_zone(name: str | None) -> str | None:
    return name if name and len(name) <= 64 and name in time_zones() else None


def select_timezone() -> str | None:
    return valid_time_zone(session.get("tz")) or valid_time_zone(request.cookies.get(TZ_COOKIE))


def agent_zone() -> ZoneInfo:
    """The agent's time zone as a `ZoneInfo` (UTC when none is known): the one accessor for code
    that computes wall-clock times for the agent (the snooze presets), built on
    `select_timezone()`, so moving the choice elsewhere (the agent's row) changes it here too."""
    return ZoneInfo(select_timezone() or "UTC")

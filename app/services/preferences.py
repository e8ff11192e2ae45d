"""An agent's own preferences: language, time zone and browser notifications. Owns its transaction.

They live on the agent's row (NULL language or time zone: follow the browser); before logging in
the session keeps the visitor's choice (app/i18n.py reads both, the row first).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from app.extensions import db
from app.i18n import LANGUAGES, valid_time_zone
from app.models import Agent
from app.models.agents import NOTIFY_SCOPES
from app.services.errors import Invalid

# The fields an agent may change on themselves (name, e-mail and role are the admins').
EDITABLE = ("language", "time_zone", "notify_desktop", "notify_sound", "notify_scope")


@dataclass(frozen=True)
class Preferences:
    language: str | None
    time_zone: str | None
    notify_desktop: bool
    notify_sound: bool
    notify_scope: str


def preferences_of(agent: Agent) -> Preferences:
    return Preferences(**{f.name: getattr(agent, f.name) for f in fields(Preferences)})


def _check(name: str, value: Any) -> None:
    if name == "language" and value is not None and value not in LANGUAGES:
        raise Invalid(f"'language' must be one of {', '.join(LANGUAGES)} or null.", field=name)
    if name == "time_zone" and value is not None and valid_time_zone(value) is None:
        raise Invalid("'time_zone' must be an IANA time zone such as Europe/Madrid, or null.", field=name)
    if name in ("notify_desktop", "notify_sound") and not isinstance(value, bool):
        raise Invalid(f"'{name}' must be true or false.", field=name)
    if name == "notify_scope" and value not in NOTIFY_SCOPES:
        raise Invalid(f"'notify_scope' must be one of {', '.join(NOTIFY_SCOPES)}.", field=name)


def update_preferences(agent: Agent, changes: dict[str, Any]) -> Preferences:
    """Apply `changes` (any of EDITABLE) to the agent's row, all or nothing, and commit."""
    for name, value in changes.items():
        if name not in EDITABLE:
            raise Invalid(f"'{name}' is not a preference an agent can change.", field=name)
        _check(name, value)
    row = db.session.get(Agent, agent.id)
    if row is None:  # deleted meanwhile
        raise Invalid("The agent no longer exists.")
    for name, value in changes.items():
        setattr(row, name, value)
    db.session.commit()
    return preferences_of(row)

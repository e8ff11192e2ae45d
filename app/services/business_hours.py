"""The business-hours settings: read by everyone (and by the webhook's away-reply check), changed
by admins. One row (`business_hours`, id 1); until an admin saves it the defaults below apply
(the hours switched off). The schedule's rules are app/whatsapp/business_hours.py's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, Text, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import insert

from app.extensions import DbSession, db
from app.models import Agent, BusinessHours
from app.services.errors import Forbidden, Invalid
from app.whatsapp.business_hours import Schedule, ScheduleError, parse_schedule, schedule_to_dict
from app.whatsapp.rules import MAX_TEXT_CHARS

_SPLIT = [["09:00", "14:00"], ["16:00", "20:00"]]
# What the page offers before anything is saved: a Spanish shop's split day, switched off.
DEFAULT_SHAPE: dict[str, Any] = {
    "time_zone": "Europe/Madrid",
    "week": {"mon": _SPLIT, "tue": _SPLIT, "wed": _SPLIT, "thu": _SPLIT, "fri": _SPLIT, "sat": [], "sun": []},
    "holidays": [],
    "enabled": False,
}


@dataclass(frozen=True)
class HoursSettings:
    schedule: Schedule
    away_message: str = ""
    greeting_enabled: bool = False
    greeting_message: str = ""
    updated_at: datetime | None = None

    @property
    def away_on(self) -> bool:
        return self.schedule.enabled and bool(self.away_message.strip())

    @property
    def greeting_on(self) -> bool:
        return self.greeting_enabled and bool(self.greeting_message.strip())

    def to_dict(self) -> dict[str, Any]:
        return {
            **schedule_to_dict(self.schedule),
            "away_message": self.away_message,
            "greeting_enabled": self.greeting_enabled,
            "greeting_message": self.greeting_message,
            "updated_at": self.updated_at.isoformat().replace("+00:00", "Z") if self.updated_at else None,
        }


DEFAULT_SETTINGS = HoursSettings(schedule=parse_schedule(DEFAULT_SHAPE))


def _from_row(row: BusinessHours | Row[Any]) -> HoursSettings:
    try:
        schedule = parse_schedule(
            {"time_zone": row.time_zone, "week": row.week, "holidays": row.holidays, "enabled": row.enabled}
        )
    except ScheduleError:
        # Stored through the same parser; a time zone the machine no longer knows reads as off.
        schedule = DEFAULT_SETTINGS.schedule
    return HoursSettings(
        schedule=schedule,
        away_message=row.away_message,
        greeting_enabled=row.greeting_enabled,
        greeting_message=row.greeting_message,
        updated_at=row.updated_at,
    )


def load(session: DbSession) -> HoursSettings:
    """The settings in force (one primary-key read; nothing is committed)."""
    row = session.execute(select(BusinessHours).where(BusinessHours.id == 1)).scalar_one_or_none()
    return DEFAULT_SETTINGS if row is None else _from_row(row)


_hours = cast(Table, BusinessHours.__table__)
# The settings row's fingerprint: the md5 of the whole row as text (NULL when there is no row).
# Every change to any column changes it, whoever makes it, so a settings object cached under it
# is exactly the row it was read from; reading it costs a few bytes in a statement already made.
DIGEST = func.md5(sql_cast(_hours.table_valued(), Text))
_LOAD_WITH_DIGEST = select(_hours, DIGEST.label("digest")).where(_hours.c.id == 1)
# Parsed settings by fingerprint, per process: the webhook reads only the fingerprint (in its
# first statement, app/services/ingest.py) and parses the row once per change of the settings.
_by_digest: dict[str, HoursSettings] = {}


def in_force(session: DbSession, digest: str | None) -> HoursSettings:
    """The settings whose row has fingerprint `digest` (`DIGEST`, read by the caller in this
    transaction; None: no row, the defaults). A fingerprint not seen yet costs one read; what it
    reads is the row now in force, kept under its own fingerprint (an admin may have saved since)."""
    if digest is None:
        return DEFAULT_SETTINGS
    found = _by_digest.get(digest)
    if found is not None:
        return found
    row = session.execute(_LOAD_WITH_DIGEST).first()
    if row is None:
        return DEFAULT_SETTINGS
    settings = _from_row(row)
    if len(_by_digest) >= 16:  # old versions of the row: never asked for again
        _by_digest.clear()
    _by_digest[row.digest] = settings
    return settings


def get_settings() -> HoursSettings:
    settings = load(db.session)
    db.session.commit()
    return settings


def _message(data: dict[str, Any], name: str, required: bool) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or "\x00" in value:
        raise Invalid(f"'{name}' must be text without NUL characters.", field=name)
    if len(value) > MAX_TEXT_CHARS:
        raise Invalid(f"'{name}' must be at most {MAX_TEXT_CHARS} characters.", field=name)
    if required and not value.strip():
        raise Invalid(f"'{name}' must not be blank while it is switched on.", field=name)
    return value


def parse_settings(data: dict[str, Any]) -> HoursSettings:
    """The settings of an API body (the page's form is turned into the same shape); `Invalid`
    names the first wrong field."""
    try:
        schedule = parse_schedule(data)
    except ScheduleError as error:
        raise Invalid(f"'{error.field}' {error.message}", field=error.field) from None
    greeting_enabled = data.get("greeting_enabled", False)
    if not isinstance(greeting_enabled, bool):
        raise Invalid("'greeting_enabled' must be true or false.", field="greeting_enabled")
    return HoursSettings(
        schedule=schedule,
        away_message=_message(data, "away_message", required=schedule.enabled),
        greeting_enabled=greeting_enabled,
        greeting_message=_message(data, "greeting_message", required=greeting_enabled),
    )


def check_may_change(by: Agent) -> None:
    """Only admins change the settings (`Forbidden` otherwise)."""
    if not by.is_admin:
        raise Forbidden("Only an admin can change the business hours.")


def update_settings(data: dict[str, Any], by: Agent) -> HoursSettings:
    """Replace the settings (admins only). Bad input changes nothing."""
    check_may_change(by)
    settings = parse_settings(data)
    shape = schedule_to_dict(settings.schedule)
    values = {
        "time_zone": shape["time_zone"],
        "week": shape["week"],
        "holidays": shape["holidays"],
        "enabled": shape["enabled"],
        "away_message": settings.away_message,
        "greeting_enabled": settings.greeting_enabled,
        "greeting_message": settings.greeting_message,
        "updated_by_id": by.id,
    }
    db.session.execute(
        insert(BusinessHours)
        .values(id=1, **values)
        .on_conflict_do_update(index_elements=[BusinessHours.id], set_={**values, "updated_at": func.now()})
    )
    db.session.commit()
    return get_settings()

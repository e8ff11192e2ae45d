"""Snooze: until when a conversation may sleep, and the times the inbox offers. Pure code (no
Flask, no database): the conversation actions ask `snooze_time_problem`, the thread header asks
`presets` (in the agent's time zone, which the caller passes).

The rules, decided once here:

- A snooze ends at an instant given with its UTC offset (ISO 8601 `2026-12-03T09:00:00+01:00`
  or `…Z`), strictly after now; or it has no time and ends when the customer writes.
- The presets: in one hour; tomorrow at 9:00; next week, Monday at 9:00 (from a Monday, the
  Monday after). Wall-clock times in the agent's zone are read as `zoneinfo` reads them
  (`fold=0`), as the business hours are; 9:00 is never inside a daylight-saving gap in practice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

MORNING = time(9, 0)
IN_A_WHILE = timedelta(hours=1)


@dataclass(frozen=True)
class Presets:
    """The snooze menu's choices, aware datetimes in the agent's zone."""

    in_an_hour: datetime
    tomorrow: datetime
    next_week: datetime


def _morning(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, MORNING, tzinfo=zone)


def presets(now: datetime, zone: tzinfo) -> Presets:
    """The presets seen from `now` (aware) by someone in `zone`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    today = now.astimezone(zone).date()
    return Presets(
        in_an_hour=(now + IN_A_WHILE).astimezone(zone),
        tomorrow=_morning(today + timedelta(days=1), zone),
        next_week=_morning(today + timedelta(days=7 - today.weekday()), zone),
    )


def snooze_time_problem(until: datetime, now: datetime) -> str | None:
    """Why `until` cannot end a snooze (English), or None when it can."""
    if until.tzinfo is None or until.utcoffset() is None:
        return "must be an ISO 8601 date and time with its UTC offset (e.g. 2026-12-03T09:00:00+01:00)."
    if until <= now:
        return "must be in the future."
    return None

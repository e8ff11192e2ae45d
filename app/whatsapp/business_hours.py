"""Business hours: when the business is open, in its own time zone. Pure code (no Flask, no
database): the away reply asks `is_open` / `closed_period_start`, the reports ask
`business_seconds`, the settings service parses and renders the API shape with
`parse_schedule` / `schedule_to_dict`.

The rules, decided once here:

- A week of opening intervals per weekday (`mon` … `sun`), local wall-clock times in
  `time_zone` (an IANA name, checked with `zoneinfo`). An interval is half-open
  `[start, end)`; `"24:00"` is allowed as an end only and means the end of that day (it is kept
  as `time(0, 0)`: an end never precedes its start, so an end of 00:00 can only be midnight).
  An interval never crosses midnight: Monday 22:00 to Tuesday 02:00 is `mon: [["22:00","24:00"]]`
  plus `tue: [["00:00","02:00"]]`, and the two touch, so they are one open period.
- Within a day the intervals come sorted, each ends after it starts, and none overlaps the
  next (touching is allowed).
- A holiday (a local date) is closed all day, whatever its weekday says.
- `enabled = False` means the hours are not in force: the business counts as always open (no
  away reply; every second is a business second).
- Daylight saving time: wall-clock times are converted the way `zoneinfo` reads them with
  `fold=0` (PEP 495), which is also java.time's rule: an ambiguous time (the hour repeated in
  autumn) is its first occurrence, a time that does not exist (the hour skipped in spring) is
  read one gap later (02:30 on the spring-forward night in Madrid is 03:30 CEST). Intervals are
  then measured in real (UTC) seconds, so 00:00-24:00 is 23 hours on the spring-forward day and
  25 on the autumn one.

All datetimes taken must be timezone-aware (a naive one raises `ValueError`); all returned are
in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
MIDNIGHT = time(0, 0)
# Bounds on what an admin may store (a day of 12 intervals is already more than any shop has).
MAX_INTERVALS_PER_DAY = 12
MAX_HOLIDAYS = 1000
# The key of the one closed period of a business that never opens (no interval on any weekday).
ALWAYS_CLOSED_SINCE = datetime(1970, 1, 1, tzinfo=UTC)

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_DAY = timedelta(days=1)

Interval = tuple[time, time]


@dataclass(frozen=True)
class Schedule:
    """Opening hours. `week` has the seven keys of `DAYS`; an interval's end of `time(0, 0)` is
    midnight at the end of the day ("24:00")."""

    time_zone: str
    week: dict[str, list[Interval]]
    holidays: frozenset[date]
    enabled: bool

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


class ScheduleError(ValueError):
    """The API shape is wrong; `field` names the culprit (e.g. `week.mon[1]`, `holidays[0]`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def always_open(time_zone: str = "UTC") -> Schedule:
    """A schedule that is not in force (the default before an admin sets one)."""
    return Schedule(time_zone=time_zone, week={day: [] for day in DAYS}, holidays=frozenset(), enabled=False)


# --- parsing and rendering the API shape ------------------------------------------------------


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_names() -> list[str]:
    """Every IANA zone name this machine knows, sorted (the settings page's choices)."""
    return sorted(_zone_names())


def valid_time_zone(name: object) -> bool:
    """True for an IANA zone name this machine knows (`Europe/Madrid`, `UTC`)."""
    if not isinstance(name, str) or name not in _zone_names():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _parse_hhmm(value: object, field: str, *, end: bool) -> time:
    if not isinstance(value, str):
        raise ScheduleError(field, 'a time is a "HH:MM" string')
    if end and value == "24:00":
        return MIDNIGHT
    match = _HHMM.match(value)
    if match is None:
        allowed = '"00:00" to "24:00"' if end else '"00:00" to "23:59"'
        raise ScheduleError(field, f'not a "HH:MM" time from {allowed}: {value[:16]!r}')
    return time(int(match.group(1)), int(match.group(2)))


def _minutes(t: time, *, end: bool) -> int:
    """Minutes since the day's midnight; an end of 00:00 is 1440 (24:00)."""
    if end and t == MIDNIGHT:
        return 24 * 60
    return t.hour * 60 + t.minute


def _parse_day(value: object, field: str) -> list[Interval]:
    if not isinstance(value, list):
        raise ScheduleError(field, 'a day is a list of ["HH:MM", "HH:MM"] intervals')
    if len(value) > MAX_INTERVALS_PER_DAY:
        raise ScheduleError(field, f"at most {MAX_INTERVALS_PER_DAY} intervals a day")
    intervals: list[Interval] = []
    previous_end = -1
    for index, pair in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ScheduleError(where, 'an interval is ["HH:MM", "HH:MM"]')
        start = _parse_hhmm(pair[0], where, end=False)
        end = _parse_hhmm(pair[1], where, end=True)
        start_m, end_m = _minutes(start, end=False), _minutes(end, end=True)
        if end_m <= start_m:
            raise ScheduleError(where, "the end must be after the start (use 24:00 for the end of the day)")
        if start_m < previous_end:
            raise ScheduleError(where, "intervals must be in order and must not overlap")
        previous_end = end_m
        intervals.append((start, end))
    return intervals


def parse_holiday(value: object, field: str) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ScheduleError(field, 'a holiday is a "YYYY-MM-DD" date')
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ScheduleError(field, f"not a date: {value}") from exc


def parse_schedule(data: Mapping[str, Any]) -> Schedule:
    """The schedule of an API body (`time_zone`, `week`, `holidays`, `enabled`); other keys are
    the caller's. Raises `ScheduleError` naming the first wrong field."""
    zone = data.get("time_zone")
    if not valid_time_zone(zone):
        raise ScheduleError("time_zone", "not an IANA time zone name such as Europe/Madrid")
    assert isinstance(zone, str)
    week_value = data.get("week")
    if not isinstance(week_value, Mapping):
        raise ScheduleError("week", "an object with the keys " + ", ".join(DAYS))
    unknown = sorted(str(k) for k in week_value if k not in DAYS)
    if unknown:
        raise ScheduleError(f"week.{unknown[0][:16]}", "not a day; the days are " + ", ".join(DAYS))
    week: dict[str, list[Interval]] = {}
    for day in DAYS:
        if day not in week_value:
            raise ScheduleError(f"week.{day}", "missing (an empty list means closed all day)")
        week[day] = _parse_day(week_value[day], f"week.{day}")
    holidays_value = data.get("holidays", [])
    if not isinstance(holidays_value, list):
        raise ScheduleError("holidays", 'a list of "YYYY-MM-DD" dates')
    if len(holidays_value) > MAX_HOLIDAYS:
        raise ScheduleError("holidays", f"at most {MAX_HOLIDAYS} dates")
    holidays = frozenset(parse_holiday(v, f"holidays[{i}]") for i, v in enumerate(holidays_value))
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ScheduleError("enabled", "true or false")
    return Schedule(time_zone=zone, week=week, holidays=holidays, enabled=enabled)


def format_time(t: time, *, end: bool = False) -> str:
    """ "HH:MM"; an end of 00:00 is "24:00"."""
    if end and t == MIDNIGHT:
        return "24:00"
    return f"{t.hour:02d}:{t.minute:02d}"


def schedule_to_dict(schedule: Schedule) -> dict[str, Any]:
    """The API shape (what `parse_schedule` reads back unchanged)."""
    return {
        "time_zone": schedule.time_zone,
        "week": {
            day: [[format_time(s), format_time(e, end=True)] for s, e in schedule.week.get(day, [])] for day in DAYS
        },
        "holidays": [d.isoformat() for d in sorted(schedule.holidays)],
        "enabled": schedule.enabled,
    }


# --- the open intervals as real instants ---------------------------------------------------------


def _aware(at: datetime, name: str = "at") -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return at.astimezone(UTC)


def _instant(day: date, t: time, zone: ZoneInfo) -> datetime:
    """The real instant of a wall-clock time (fold=0: see the module's DST rule)."""
    return datetime.combine(day, t, tzinfo=zone).astimezone(UTC)


def _day_intervals(schedule: Schedule, zone: ZoneInfo, day: date) -> list[tuple[datetime, datetime]]:
    """The open intervals of one local date in UTC, in order (none on a holiday; an interval the
    DST jump leaves empty is dropped)."""
    if day in schedule.holidays:
        return []
    out: list[tuple[datetime, datetime]] = []
    for start, end in schedule.week.get(DAYS[day.weekday()], []):
        start_at = _instant(day, start, zone)
        end_at = _instant(day + _DAY, MIDNIGHT, zone) if end == MIDNIGHT else _instant(day, end, zone)
        if end_at > start_at:
            out.append((start_at, end_at))
    return out


def open_intervals(schedule: Schedule, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The open periods overlapping `[start, end)`, merged (touching intervals, also across
    midnight, are one) and in UTC; the first and last may reach outside the range (but a
    period longer than a day is cut a day beyond it). Hours not in force: the whole range."""
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        return []
    if not schedule.enabled:
        return [(start, end)]
    zone = schedule.zone
    # One local day of margin either side: a DST jump moves an interval by at most an hour.
    first = start.astimezone(zone).date() - _DAY
    last = end.astimezone(zone).date() + _DAY
    raw: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        raw.extend(_day_intervals(schedule, zone, day))
        day += _DAY
    raw.sort()
    merged: list[tuple[datetime, datetime]] = []
    for s, e in raw:
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return [(s, e) for s, e in merged if e > start and s < end]


def _search_days(schedule: Schedule) -> int:
    """How many local days to walk before concluding no interval exists: a week per holiday
    (each can blank out one weekday) plus margin."""
    return 7 * (len(schedule.holidays) + 3)


def _never_opens(schedule: Schedule) -> bool:
    return not any(schedule.week.get(day) for day in DAYS)


def _intervals_walking(schedule: Schedule, at: datetime, step: int) -> Iterator[list[tuple[datetime, datetime]]]:
    zone = schedule.zone
    day = at.astimezone(zone).date() - step * _DAY  # start one day behind the walk's direction
    for _ in range(_search_days(schedule)):
        yield _day_intervals(schedule, zone, day)
        try:
            day += step * _DAY
        except OverflowError:
            return


# --- the questions ------------------------------------------------------------------------------


def is_open(schedule: Schedule, at: datetime) -> bool:
    """True when the business is open at the instant `at` (always, when the hours are off)."""
    at = _aware(at)
    if not schedule.enabled:
        return True
    zone = schedule.zone
    local_day = at.astimezone(zone).date()
    for day in (local_day - _DAY, local_day, local_day + _DAY):
        for start, end in _day_intervals(schedule, zone, day):
            if start <= at < end:
                return True
    return False


def closed_period_start(schedule: Schedule, at: datetime) -> datetime | None:
    """When the closed period containing `at` began (the end of the last opening before it),
    in UTC; None while open. Every instant of one closed period gives the same answer, so it
    keys "once per closed period". A business that never opens is closed since
    `ALWAYS_CLOSED_SINCE`."""
    at = _aware(at)
    if is_open(schedule, at):
        return None
    if _never_opens(schedule):
        return ALWAYS_CLOSED_SINCE
    best: datetime | None = None
    extra_days = 1  # a DST jump may reorder intervals across one day boundary: look one day further
    for intervals in _intervals_walking(schedule, at, -1):
        ends = [e for _, e in intervals if e <= at]
        if ends:
            best = max(best, *ends) if best is not None else max(ends)
        if best is not None:
            if extra_days == 0:
                break
            extra_days -= 1
    return best if best is not None else ALWAYS_CLOSED_SINCE


def next_opening(schedule: Schedule, at: datetime) -> datetime | None:
    """The first instant at or after `at` at which the business is open (`at` itself while open);
    None if it never opens again."""
    at = _aware(at)
    if is_open(schedule, at):
        return at
    if _never_opens(schedule):
        return None
    best: datetime | None = None
    extra_days = 1
    for intervals in _intervals_walking(schedule, at, 1):
        starts = [s for s, _ in intervals if s > at]
        if starts:
            best = min(best, *starts) if best is not None else min(starts)
        if best is not None:
            if extra_days == 0:
                break
            extra_days -= 1
    return best


def business_seconds(schedule: Schedule, start: datetime, end: datetime) -> float:
    """Seconds of `[start, end)` that fall inside opening hours (real seconds, DST-correct,
    holidays closed); 0 when `end <= start`; the wall seconds when the hours are off."""
    start, end = _aware(start, "start"), _aware(end, "end")
    total = 0.0
    for s, e in open_intervals(schedule, start, end):
        total += (min(e, end) - max(s, start)).total_seconds()
    return total

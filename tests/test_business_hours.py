"""The pure business-hours module (app/whatsapp/business_hours.py): the API shape, when the
business is open, the closed period's key, the next opening and business seconds, across
Europe/Madrid's DST changes; then hypothesis properties over random schedules and zones."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.whatsapp.business_hours import (
    ALWAYS_CLOSED_SINCE,
    DAYS,
    Schedule,
    ScheduleError,
    always_open,
    business_seconds,
    closed_period_start,
    is_open,
    next_opening,
    open_intervals,
    parse_schedule,
    schedule_to_dict,
)

MADRID = ZoneInfo("Europe/Madrid")
SPLIT = [["09:00", "14:00"], ["16:00", "20:00"]]
BODY = {
    "time_zone": "Europe/Madrid",
    "week": {"mon": SPLIT, "tue": SPLIT, "wed": SPLIT, "thu": SPLIT, "fri": SPLIT, "sat": [], "sun": []},
    "holidays": ["2026-12-25"],
    "enabled": True,
}


def madrid(*args: int) -> datetime:
    return datetime(*args, tzinfo=MADRID)  # type: ignore[misc]


def schedule(**changes: object) -> Schedule:
    return parse_schedule({**BODY, **changes})


def week(**days: list[list[str]]) -> dict[str, list[list[str]]]:
    return {day: days.get(day, []) for day in DAYS}


HOURS = schedule()

# --- the API shape ---------------------------------------------------------------------------


def test_the_api_shape_round_trips() -> None:
    parsed = parse_schedule(BODY)
    assert parsed.time_zone == "Europe/Madrid"
    assert parsed.week["mon"] == [(time(9), time(14)), (time(16), time(20))]
    assert parsed.week["sun"] == []
    assert parsed.holidays == frozenset({date(2026, 12, 25)})
    assert schedule_to_dict(parsed) == BODY
    assert parse_schedule(schedule_to_dict(parsed)) == parsed


def test_24_00_is_the_end_of_the_day_and_round_trips() -> None:
    parsed = schedule(week=week(sat=[["10:00", "24:00"]], sun=[["00:00", "24:00"]]))
    assert parsed.week["sat"] == [(time(10), time(0))]
    assert schedule_to_dict(parsed)["week"]["sun"] == [["00:00", "24:00"]]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "/etc/passwd"}, "time_zone"),
        ({"time_zone": 1}, "time_zone"),
        ({"time_zone": None}, "time_zone"),
        ({"week": []}, "week"),
        ({"week": {k: v for k, v in BODY["week"].items() if k != "sat"}}, "week.sat"),
        ({"week": {**BODY["week"], "monday": []}}, "week.monday"),
        ({"week": week(mon="09:00-14:00")}, "week.mon"),  # type: ignore[arg-type]
        ({"week": week(mon=[["9:00", "14:00"]])}, "week.mon[0]"),
        ({"week": week(mon=[["09:00", "14:60"]])}, "week.mon[0]"),
        ({"week": week(mon=[["24:00", "24:00"]])}, "week.mon[0]"),
        ({"week": week(mon=[["09:00", "25:00"]])}, "week.mon[0]"),
        ({"week": week(mon=[["09:00"]])}, "week.mon[0]"),
        ({"week": week(mon=[["09:00", 14]])}, "week.mon[0]"),
        ({"week": week(tue=[["14:00", "09:00"]])}, "week.tue[0]"),
        ({"week": week(tue=[["09:00", "09:00"]])}, "week.tue[0]"),
        ({"week": week(wed=[["09:00", "14:00"], ["13:00", "20:00"]])}, "week.wed[1]"),
        ({"week": week(wed=[["16:00", "20:00"], ["09:00", "14:00"]])}, "week.wed[1]"),
        ({"week": week(thu=[["00:00", "00:01"]] * 13)}, "week.thu"),
        ({"holidays": "2026-12-25"}, "holidays"),
        ({"holidays": ["2026-12-25", "2026-02-30"]}, "holidays[1]"),
        ({"holidays": ["25/12/2026"]}, "holidays[0]"),
        ({"holidays": [20261225]}, "holidays[0]"),
        ({"holidays": ["2026-01-01"] * 1001}, "holidays"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_a_wrong_field_is_named(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule({**BODY, **changes})
    assert caught.value.field == field
    assert caught.value.message


def test_touching_intervals_are_accepted() -> None:
    parsed = schedule(week=week(mon=[["09:00", "14:00"], ["14:00", "20:00"]]))
    assert business_seconds(parsed, madrid(2026, 11, 30, 8), madrid(2026, 11, 30, 21)) == 11 * 3600


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        is_open(HOURS, datetime(2026, 11, 30, 10))
    with pytest.raises(ValueError):
        business_seconds(HOURS, datetime(2026, 11, 30, 10), madrid(2026, 11, 30, 11))


# --- open or closed ------------------------------------------------------------------------------
# 2026-11-30 is a Monday; 2026-12-25 a Friday (a holiday here).


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (madrid(2026, 11, 30, 8, 59), False),
        (madrid(2026, 11, 30, 9, 0), True),
        (madrid(2026, 11, 30, 13, 59), True),
        (madrid(2026, 11, 30, 14, 0), False),  # half-open: 14:00 is closed
        (madrid(2026, 11, 30, 15, 0), False),
        (madrid(2026, 11, 30, 16, 0), True),
        (madrid(2026, 11, 30, 20, 0), False),
        (madrid(2026, 12, 5, 11, 0), False),  # Saturday
        (madrid(2026, 12, 25, 11, 0), False),  # the holiday, a Friday
        (madrid(2026, 12, 24, 11, 0), True),
    ],
)
def test_is_open(at: datetime, expected: bool) -> None:
    assert is_open(HOURS, at) is expected
    assert is_open(HOURS, at.astimezone(UTC)) is expected
    assert is_open(HOURS, at.astimezone(ZoneInfo("Asia/Tokyo"))) is expected


def test_hours_not_in_force_are_always_open() -> None:
    off = schedule(enabled=False)
    saturday = madrid(2026, 12, 5, 3)
    assert is_open(off, saturday)
    assert closed_period_start(off, saturday) is None
    assert next_opening(off, saturday) == saturday
    assert business_seconds(off, saturday, saturday + timedelta(hours=5)) == 5 * 3600
    assert is_open(always_open(), saturday)


# --- the closed period's key -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "began"),
    [
        (madrid(2026, 11, 30, 14, 0), madrid(2026, 11, 30, 14, 0)),  # lunch
        (madrid(2026, 11, 30, 15, 59), madrid(2026, 11, 30, 14, 0)),
        (madrid(2026, 11, 30, 21, 0), madrid(2026, 11, 30, 20, 0)),  # the night
        (madrid(2026, 12, 1, 8, 59), madrid(2026, 11, 30, 20, 0)),
        (madrid(2026, 12, 5, 12, 0), madrid(2026, 12, 4, 20, 0)),  # the weekend
        (madrid(2026, 12, 7, 8, 0), madrid(2026, 12, 4, 20, 0)),
        (madrid(2026, 12, 25, 12, 0), madrid(2026, 12, 24, 20, 0)),  # Christmas + weekend: one period
        (madrid(2026, 12, 28, 8, 0), madrid(2026, 12, 24, 20, 0)),
    ],
)
def test_closed_period_start(at: datetime, began: datetime) -> None:
    assert closed_period_start(HOURS, at) == began
    assert closed_period_start(HOURS, at).tzinfo is UTC  # type: ignore[union-attr]


def test_no_closed_period_while_open() -> None:
    assert closed_period_start(HOURS, madrid(2026, 11, 30, 10)) is None


def test_a_business_that_never_opens_has_one_closed_period() -> None:
    never = schedule(week=week())
    assert closed_period_start(never, madrid(2026, 11, 30, 10)) == ALWAYS_CLOSED_SINCE
    assert closed_period_start(never, madrid(2027, 6, 1, 10)) == ALWAYS_CLOSED_SINCE
    assert next_opening(never, madrid(2026, 11, 30, 10)) is None
    assert business_seconds(never, madrid(2026, 11, 30), madrid(2026, 12, 30)) == 0


def test_many_holidays_in_a_row_are_walked_past() -> None:
    # Open only on Mondays; every Monday of 2027 a holiday: the period began on the last Monday of 2026.
    mondays = [date(2027, 1, 4) + timedelta(weeks=n) for n in range(52)]
    only_mondays = schedule(week=week(mon=[["09:00", "10:00"]]), holidays=[d.isoformat() for d in mondays])
    assert closed_period_start(only_mondays, madrid(2027, 12, 30, 12)) == madrid(2026, 12, 28, 10)
    assert next_opening(only_mondays, madrid(2026, 12, 28, 11)) == madrid(2028, 1, 3, 9)


def test_the_night_across_midnight_is_one_open_period() -> None:
    night = schedule(week=week(mon=[["22:00", "24:00"]], tue=[["00:00", "02:00"]]))
    assert is_open(night, madrid(2026, 11, 30, 23, 59))
    assert is_open(night, madrid(2026, 12, 1, 0, 0))
    assert not is_open(night, madrid(2026, 12, 1, 2, 0))
    assert closed_period_start(night, madrid(2026, 12, 1, 3)) == madrid(2026, 12, 1, 2)
    assert open_intervals(night, madrid(2026, 11, 30, 12), madrid(2026, 12, 1, 12)) == [
        (madrid(2026, 11, 30, 22).astimezone(UTC), madrid(2026, 12, 1, 2).astimezone(UTC))
    ]
    assert business_seconds(night, madrid(2026, 11, 30, 23), madrid(2026, 12, 1, 1)) == 2 * 3600


# --- the next opening ---------------------------------------------------------------------------


def test_next_opening() -> None:
    assert next_opening(HOURS, madrid(2026, 11, 30, 15)) == madrid(2026, 11, 30, 16)
    assert next_opening(HOURS, madrid(2026, 11, 30, 20)) == madrid(2026, 12, 1, 9)
    assert next_opening(HOURS, madrid(2026, 12, 4, 21)) == madrid(2026, 12, 7, 9)
    assert next_opening(HOURS, madrid(2026, 12, 24, 21)) == madrid(2026, 12, 28, 9)
    at = madrid(2026, 11, 30, 10)
    assert next_opening(HOURS, at) == at


# --- business seconds ---------------------------------------------------------------------------


def test_business_seconds_over_a_week() -> None:
    # Monday 00:00 to the next Monday 00:00: five days of 9 hours.
    assert business_seconds(HOURS, madrid(2026, 11, 30), madrid(2026, 12, 7)) == 5 * 9 * 3600
    # The week of Christmas: four days.
    assert business_seconds(HOURS, madrid(2026, 12, 21), madrid(2026, 12, 28)) == 4 * 9 * 3600


def test_business_seconds_within_a_day() -> None:
    assert business_seconds(HOURS, madrid(2026, 11, 30, 13, 30), madrid(2026, 11, 30, 16, 30)) == 3600
    assert business_seconds(HOURS, madrid(2026, 11, 30, 20), madrid(2026, 12, 1, 9)) == 0
    assert business_seconds(HOURS, madrid(2026, 11, 30, 12), madrid(2026, 11, 30, 11)) == 0
    assert business_seconds(HOURS, madrid(2026, 11, 30, 12), madrid(2026, 11, 30, 12, 0, 0, 500000)) == 0.5


# --- daylight saving time in Madrid -------------------------------------------------------------
# 2026-03-29 (Sunday) 02:00 CET -> 03:00 CEST; 2026-10-25 (Sunday) 03:00 CEST -> 02:00 CET.


def test_a_whole_day_lasts_23_hours_in_spring_and_25_in_autumn() -> None:
    all_sunday = schedule(week=week(sun=[["00:00", "24:00"]]))
    assert business_seconds(all_sunday, madrid(2026, 3, 28), madrid(2026, 3, 31)) == 23 * 3600
    assert business_seconds(all_sunday, madrid(2026, 10, 24), madrid(2026, 10, 27)) == 25 * 3600
    assert business_seconds(all_sunday, madrid(2026, 11, 28), madrid(2026, 12, 1)) == 24 * 3600


def test_daytime_hours_are_unchanged_on_the_days_the_clocks_change() -> None:
    sunday_shop = schedule(week=week(sun=[["09:00", "20:00"]]))
    for day in (madrid(2026, 3, 29), madrid(2026, 10, 25)):
        assert business_seconds(sunday_shop, day, day + timedelta(days=1)) == 11 * 3600
        assert is_open(sunday_shop, day.replace(hour=9))
        assert not is_open(sunday_shop, day.replace(hour=8, minute=59))
    # Opening at 09:00 is 08:00 UTC before the spring change and 07:00 UTC after it.
    assert next_opening(sunday_shop, madrid(2026, 3, 28, 21)) == datetime(2026, 3, 29, 7, tzinfo=UTC)
    assert next_opening(sunday_shop, madrid(2026, 3, 22, 1)) == datetime(2026, 3, 22, 8, tzinfo=UTC)


def test_the_night_the_clocks_change_is_measured_in_real_seconds() -> None:
    # Saturday 20:00 to Monday 09:00 is closed; the period's key is Saturday 20:00 local.
    weekdays = schedule(week={**BODY["week"], "sat": [["10:00", "20:00"]]})
    assert closed_period_start(weekdays, madrid(2026, 3, 29, 12)) == madrid(2026, 3, 28, 20)
    assert closed_period_start(weekdays, madrid(2026, 10, 25, 12)) == madrid(2026, 10, 24, 20)
    # Saturday 19:00 to Monday 10:00 holds 1 + 1 business hours, whatever the clocks did.
    for saturday in (madrid(2026, 3, 28, 19), madrid(2026, 10, 24, 19)):
        assert business_seconds(weekdays, saturday, saturday.replace(day=saturday.day + 2, hour=10)) == 2 * 3600


def test_a_skipped_time_is_read_one_gap_later() -> None:
    # 02:30 does not exist on 2026-03-29: it reads as 03:30 CEST, so 02:30-04:00 is open 30 minutes.
    gap = schedule(week=week(sun=[["02:30", "04:00"]]))
    day = madrid(2026, 3, 29)
    assert business_seconds(gap, day, day + timedelta(days=1)) == 30 * 60
    assert not is_open(gap, datetime(2026, 3, 29, 1, 15, tzinfo=UTC))  # 03:15 CEST
    assert is_open(gap, datetime(2026, 3, 29, 1, 30, tzinfo=UTC))  # 03:30 CEST
    # An interval wholly inside the skipped hour is empty that day (and only that day).
    inside = schedule(week=week(sun=[["02:00", "03:00"]]))
    assert business_seconds(inside, day, day + timedelta(days=1)) == 0
    assert business_seconds(inside, madrid(2026, 3, 22), madrid(2026, 3, 23)) == 3600


def test_a_repeated_time_is_its_first_occurrence() -> None:
    # 02:30 happens twice on 2026-10-25: from the first (CEST) to 03:00 CET is an hour and a half.
    repeated = schedule(week=week(sun=[["02:30", "03:00"]]))
    day = madrid(2026, 10, 25)
    assert business_seconds(repeated, day, day + timedelta(days=1)) == 90 * 60
    assert is_open(repeated, datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 02:30 CEST
    assert is_open(repeated, datetime(2026, 10, 25, 1, 45, tzinfo=UTC))  # 02:45 CET
    assert not is_open(repeated, datetime(2026, 10, 25, 2, 0, tzinfo=UTC))  # 03:00 CET


# --- properties over random schedules --------------------------------------------------------

ZONES = ["Europe/Madrid", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago", "UTC"]


@st.composite
def day_intervals(draw: st.DrawFn) -> list[list[str]]:
    cuts = sorted(draw(st.sets(st.integers(0, 48), max_size=6)))
    if len(cuts) % 2:
        cuts = cuts[:-1]
    out = []
    for start, end in zip(cuts[::2], cuts[1::2], strict=True):
        # Half-hour grid, so 02:00, 02:30 and 03:00 (the DST edges) come up often.
        out.append([f"{start // 2:02d}:{(start % 2) * 30:02d}", f"{end // 2:02d}:{(end % 2) * 30:02d}"])
    return out


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    return parse_schedule(
        {
            "time_zone": draw(st.sampled_from(ZONES)),
            "week": {day: draw(day_intervals()) for day in DAYS},
            "holidays": [
                d.isoformat() for d in draw(st.sets(st.dates(date(2026, 1, 1), date(2027, 12, 31)), max_size=8))
            ],
            "enabled": draw(st.booleans()),
        }
    )


# Instants around 2026-2027, at whole seconds, biased to the DST nights of both hemispheres.
_SPAN = int((datetime(2027, 12, 31, tzinfo=UTC) - datetime(2026, 1, 1, tzinfo=UTC)).total_seconds())
_DST_NIGHTS = [
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2026, 4, 5, 3, tzinfo=UTC),
]
instants = st.one_of(
    st.integers(0, _SPAN).map(lambda s: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=s)),
    st.tuples(st.sampled_from(_DST_NIGHTS), st.integers(-6 * 3600, 6 * 3600)).map(
        lambda p: p[0] + timedelta(seconds=p[1])
    ),
)
gaps = st.integers(0, 10 * 24 * 3600).map(lambda s: timedelta(seconds=s))

properties = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@properties
@given(schedules(), instants, gaps)
def test_business_seconds_never_exceed_wall_seconds(hours: Schedule, start: datetime, gap: timedelta) -> None:
    seconds = business_seconds(hours, start, start + gap)
    assert 0 <= seconds <= gap.total_seconds()
    if not hours.enabled:
        assert seconds == gap.total_seconds()


@properties
@given(schedules(), instants, gaps, gaps)
def test_business_seconds_add_up_over_a_split_point(hours: Schedule, a: datetime, ab: timedelta, bc: timedelta) -> None:
    b, c = a + ab, a + ab + bc
    assert business_seconds(hours, a, c) == business_seconds(hours, a, b) + business_seconds(hours, b, c)


@properties
@given(schedules(), instants)
def test_open_is_a_business_second(hours: Schedule, at: datetime) -> None:
    assert is_open(hours, at) == (business_seconds(hours, at, at + timedelta(seconds=1)) == 1)


@properties
@given(schedules(), instants)
def test_the_closed_period_began_at_the_last_opening(hours: Schedule, at: datetime) -> None:
    began = closed_period_start(hours, at)
    assert (began is None) == is_open(hours, at)
    if began is None or began == ALWAYS_CLOSED_SINCE:
        return
    assert began <= at
    assert business_seconds(hours, began, at) == 0
    assert is_open(hours, began - timedelta(seconds=1))
    assert not is_open(hours, began)


@properties
@given(schedules(), instants, gaps)
def test_one_closed_period_has_one_key(hours: Schedule, first: datetime, gap: timedelta) -> None:
    later = first + gap
    if is_open(hours, first) or business_seconds(hours, first, later) > 0:
        return
    assert not is_open(hours, later)
    assert closed_period_start(hours, first) == closed_period_start(hours, later)


@properties
@given(schedules(), instants, gaps)
def test_a_new_closed_period_has_a_new_key(hours: Schedule, first: datetime, gap: timedelta) -> None:
    later = first + gap
    if is_open(hours, first) or is_open(hours, later) or business_seconds(hours, first, later) == 0:
        return
    assert closed_period_start(hours, later) > closed_period_start(hours, first)  # type: ignore[operator]


@properties
@given(schedules(), instants)
def test_the_next_opening_is_the_first_open_instant(hours: Schedule, at: datetime) -> None:
    opening = next_opening(hours, at)
    if opening is None:
        assert business_seconds(hours, at, at + timedelta(days=30)) == 0
        return
    assert opening >= at
    assert is_open(hours, opening)
    assert business_seconds(hours, at, opening) == 0
    if opening > at:
        assert not is_open(hours, opening - timedelta(seconds=1))


@properties
@given(schedules(), instants, gaps)
def test_open_intervals_are_sorted_and_apart(hours: Schedule, start: datetime, gap: timedelta) -> None:
    intervals = open_intervals(hours, start, start + gap)
    for (_, end), (next_start, _) in itertools.pairwise(intervals):
        assert end < next_start
    assert all(s < e for s, e in intervals)

"""The reports (`GET /informes`, the page /inbox/informes, the CSV): how fast the team answers
and resolves, how much arrives when, and who waits now. Read-only: a handful of statements over
the facts app/services/report_facts.py records when they happen (`conversation_events`,
`report_hours`) and the conversations' `awaiting_reply_since`, never over the messages, so a
report costs the same at a thousand messages or a million (bench/reports_benchmark.py).

The rules, decided here once:

- The range is `desde` … `hasta`, both included, local dates of the business time zone (the
  business-hours settings' `time_zone`, also while the hours are switched off): from local
  midnight of `desde` to local midnight after `hasta`, whatever DST does in between. At most
  `MAX_DAYS` days; `hasta` before `desde` is refused.
- Durations are seconds, to the millisecond.
- A fact belongs to the local day (and local hour) in which it happened. A day's median first
  response is given for ranges of up to `MAX_DAILY_MEDIAN_DAYS` days (null beyond).
- Medians and 90th percentiles are PostgreSQL's `percentile_cont` (linear interpolation between
  the two nearest values: the median of 10 s and 20 s is 15 s), exact up to `EXACT_PERCENTILES`
  events in the range and from a repeatable sample of pages beyond (the counts are always exact).
- First response: the team's first reply to a waiting customer, measured from the customer's
  first unanswered message, wall-clock and within business hours; attributed to the replying
  agent (an echo of a reply sent from the phone has no agent). Resolution: from the opening or
  last reopening to the resolution; attributed to the assignee at that moment.
- The backlog is now, not in the range: open conversations whose customer waits for an answer,
  by how long they have waited (wall-clock).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Table,
    and_,
    cast,
    extract,
    func,
    literal,
    literal_column,
    select,
    tablesample,
    text,
    true,
    tuple_,
)

from app.extensions import db
from app.models import Agent, Conversation, ConversationEvent, ReportHour
from app.services import business_hours
from app.services.errors import Invalid
from app.whatsapp.business_hours import business_seconds

MAX_DAYS = 366
# Each day's median first response is computed for ranges up to this many days (beyond, a sort
# per day of a year of replies costs more than a chart of 365 medians is worth: null).
MAX_DAILY_MEDIAN_DAYS = 92
# Up to this many first responses (or resolutions) in the range, medians and 90th percentiles
# are exact; beyond, they come from a repeatable sample of about SAMPLE_SIZE of them (one in k:
# whole pages by TABLESAMPLE SYSTEM when the range is most of the table, else every k-th id of
# the range; k is `percentile_sample_every` in the answer, 1 = exact). Counts are always exact.
EXACT_PERCENTILES = 50_000
SAMPLE_SIZE = 50_000
SAMPLE_SEED = 13
# The hour counters' metrics and the report's names for them.
COUNTED = {
    "in": "messages_in",
    "out": "messages_out",
    "opened": "opened",
    "reopened": "reopened",
    "resolved": "resolved",
    "first_response": "first_responses",
}
# The backlog's buckets: (key, waited at least, waited less than) in seconds.
BACKLOG_BUCKETS: tuple[tuple[str, float, float | None], ...] = (
    ("under_1h", 0, 3600),
    ("1h_to_4h", 3600, 4 * 3600),
    ("4h_to_24h", 4 * 3600, 24 * 3600),
    ("over_24h", 24 * 3600, None),
)


@dataclass(frozen=True)
class Range:
    first: date
    last: date
    time_zone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=self.zone).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=self.zone).astimezone(UTC)


def check_range(first: date, last: date) -> None:
    """`Invalid` (code `invalid_range` or `range_too_long`, field `hasta`) for a range the
    reports refuse."""
    if last < first:
        raise Invalid("'hasta' must not be before 'desde'.", field="hasta", code="invalid_range")
    if (last - first).days + 1 > MAX_DAYS:
        raise Invalid(f"The range is at most {MAX_DAYS} days.", field="hasta", code="range_too_long")


def _sample_every(count: int) -> int:
    """1 (exact) up to EXACT_PERCENTILES events, else the k of a one-in-k sample."""
    return 1 if count <= EXACT_PERCENTILES else math.ceil(count / SAMPLE_SIZE)


def cast_table(model: Any) -> Table:
    return model.__table__


def _ms(value: float | None) -> float | None:
    """Seconds to the millisecond (interpolation leaves float noise such as 3720.0000000000005)."""
    return None if value is None else round(value, 3)


def _stats(count: int, median: float | None, p90: float | None) -> dict[str, Any]:
    return {"count": count, "median_seconds": _ms(median), "p90_seconds": _ms(p90)}


def _percentiles(column: Any) -> list[Any]:
    return [
        func.percentile_cont(0.5).within_group(column),
        func.percentile_cont(0.9).within_group(column),
    ]


def build_report(first: date, last: date, now: datetime | None = None) -> dict[str, Any]:
    """The report of `first` … `last` (local dates, both included); see the module for the rules.
    Nothing is written (the read-only transaction is ended)."""
    check_range(first, last)
    now = now or datetime.now(UTC)
    session = db.session
    schedule = business_hours.load(session).schedule
    span = Range(first, last, schedule.time_zone)
    start, end = span.start, span.end
    tz = schedule.time_zone
    e = ConversationEvent
    in_range = and_(e.at >= start, e.at < end)

    # Per local day and hour of the day: the hour counters (their shards summed by UTC hour
    # first, then the few thousand hours read in the business time zone).
    days: dict[date, dict[str, Any]] = {}
    for offset in range(span.days):
        d = first + timedelta(days=offset)
        days[d] = {
            "date": d,
            "opened": 0,
            "reopened": 0,
            "resolved": 0,
            "first_responses": 0,
            "first_response_median_seconds": None,
            "first_response_business_median_seconds": None,
            "messages_in": 0,
            "messages_out": 0,
        }
    h = ReportHour
    summed = (
        select(h.hour, h.metric, func.sum(h.count).label("n"))
        .where(h.hour >= start, h.hour < end)
        .group_by(h.hour, h.metric)
        .subquery()
    )
    local = func.timezone(tz, summed.c.hour)
    local_date = cast(local, db.Date)
    local_hour = cast(extract("hour", local), db.Integer)
    hours = [{"hour": hour, "messages_in": 0, "messages_out": 0} for hour in range(24)]
    totals: dict[str, int] = dict.fromkeys(COUNTED.values(), 0)
    # One pass, two groupings: by local date (the days) and by local hour of the day (the hours).
    rows: Any = session.execute(
        select(
            func.grouping(local_date).label("by_hour"),
            local_date.label("day"),
            local_hour.label("hour"),
            summed.c.metric,
            func.sum(summed.c.n),
        ).group_by(func.grouping_sets(tuple_(local_date, summed.c.metric), tuple_(local_hour, summed.c.metric)))
    ).all()
    for row in rows:
        key, n = COUNTED[row.metric], int(row[4])
        if row.by_hour:
            if key.startswith("messages_"):
                hours[row.hour][key] += n
        else:
            totals[key] += n
            if row.day in days:
                days[row.day][key] += n

    # Percentiles sort their values: beyond EXACT_PERCENTILES events they are read from a sample.
    every_response = _sample_every(totals["first_responses"])
    every_resolution = _sample_every(totals["resolved"])

    events_table = cast_table(ConversationEvent)
    table_rows = 0.0
    if every_response > 1 or every_resolution > 1:
        table_rows = session.execute(
            select(literal_column("reltuples"))
            .select_from(text("pg_class"))
            .where(literal_column("oid") == text("'conversation_events'::regclass"))
        ).scalar_one()

    def source(every: int, in_range_count: int) -> tuple[Any, Any]:
        """The events to read percentiles from, and the condition that samples them: all of them;
        or one in `every`, either as whole pages of the table (TABLESAMPLE SYSTEM, the pages not
        drawn are not even read: cheaper when the range covers most of the table) or as every
        `every`-th id of the range (an index scan of the range: cheaper for a short range)."""
        if every == 1:
            return events_table, true()
        if table_rows / every < in_range_count:
            sampled = tablesample(events_table, func.system(100.0 / every), name="sampled", seed=literal(SAMPLE_SEED))
            return sampled, true()
        return events_table, events_table.c.id % every == 0

    def counted_by(group: Any, kind: str) -> dict[Any, int]:
        """Exact counts per agent (a hash aggregate over the index, nothing sorted)."""
        query = select(group, func.count()).where(e.kind == kind, in_range).group_by(group)
        return {row[0]: int(row[1]) for row in session.execute(query)}

    def percentiles_by(group: Any, kind: str, every: int, *columns: Any) -> Any:
        """Median and p90 of each column, overall (`total`) and per group, over the sample."""
        t, sampled = source(every, totals["first_responses" if kind == "first_response" else "resolved"])
        key = t.c[group]
        return session.execute(
            select(
                func.grouping(key).label("total"),
                key.label("key"),
                *[p for column in columns for p in _percentiles(t.c[column])],
            )
            .where(t.c.kind == kind, t.c.at >= start, t.c.at < end, sampled)
            .group_by(func.grouping_sets(literal_column("()"), key))
        ).all()

    # First responses: overall and by replying agent.
    counts = counted_by(e.agent_id, "first_response")
    responses: dict[Any, dict[str, Any]] = {}
    total_responses: dict[str, Any] = {"wall": _stats(0, None, None), "business": _stats(0, None, None)}
    for row in percentiles_by("agent_id", "first_response", every_response, "seconds", "business_seconds"):
        n = sum(counts.values()) if row.total else counts.get(row.key, 0)
        entry = {"wall": _stats(n, row[2], row[3]), "business": _stats(n, row[4], row[5])}
        if row.total:
            total_responses = entry
        else:
            responses[row.key] = entry
    for key, n in counts.items():  # a group the sample missed: counted, no percentiles
        responses.setdefault(key, {"wall": _stats(n, None, None), "business": _stats(n, None, None)})

    # Resolutions: overall and by assignee.
    counts = counted_by(e.assignee_id, "resolved")
    resolutions: dict[Any, dict[str, Any]] = {}
    total_resolution = _stats(0, None, None)
    for row in percentiles_by("assignee_id", "resolved", every_resolution, "seconds"):
        n = sum(counts.values()) if row.total else counts.get(row.key, 0)
        if row.total:
            total_resolution = _stats(n, row[2], row[3])
        else:
            resolutions[row.key] = _stats(n, row[2], row[3])
    for key, n in counts.items():
        resolutions.setdefault(key, _stats(n, None, None))

    # Each day's median first response (ranges up to MAX_DAILY_MEDIAN_DAYS).
    if span.days <= MAX_DAILY_MEDIAN_DAYS:
        t, sampled = source(every_response, totals["first_responses"])
        day = cast(func.timezone(tz, t.c.at), db.Date).label("day")
        rows = session.execute(
            select(
                day,
                func.percentile_cont(0.5).within_group(t.c.seconds),
                func.percentile_cont(0.5).within_group(t.c.business_seconds),
            )
            .where(t.c.kind == "first_response", t.c.at >= start, t.c.at < end, sampled)
            .group_by(day)
        ).all()
        for row in rows:
            if row.day in days:
                days[row.day]["first_response_median_seconds"] = _ms(row[1])
                days[row.day]["first_response_business_median_seconds"] = _ms(row[2])

    # The backlog, now: overall (with buckets) and by assignee.
    c = Conversation
    waiting = and_(c.status == "open", c.awaiting_reply_since.is_not(None))
    waited = extract("epoch", now - c.awaiting_reply_since)
    bucket_columns = []
    for _key, low, high in BACKLOG_BUCKETS:
        condition = waited >= low if high is None else and_(waited >= low, waited < high)
        bucket_columns.append(func.count().filter(condition))
    rows = session.execute(
        select(
            func.grouping(c.assignee_id).label("total"),
            c.assignee_id,
            func.count(),
            func.min(c.awaiting_reply_since),
            *bucket_columns,
        )
        .where(waiting)
        .group_by(func.grouping_sets(literal_column("()"), c.assignee_id))
    ).all()

    def backlog_entry(count: int, oldest: datetime | None) -> dict[str, Any]:
        return {
            "count": count,
            "oldest_since": oldest,
            "oldest_wait_seconds": max(0.0, (now - oldest).total_seconds()) if oldest else None,
            "oldest_business_wait_seconds": business_seconds(schedule, oldest, now) if oldest else None,
        }

    backlog = {**backlog_entry(0, None), "buckets": [{"key": key, "count": 0} for key, _, _ in BACKLOG_BUCKETS]}
    backlogs: dict[Any, dict[str, Any]] = {}
    for row in rows:
        if row.total:
            backlog = {
                **backlog_entry(row[2], row[3]),
                "buckets": [{"key": key, "count": row[4 + index]} for index, (key, _, _) in enumerate(BACKLOG_BUCKETS)],
            }
        else:
            backlogs[row.assignee_id] = backlog_entry(row[2], row[3])

    # Per agent: every agent with something in the range or waiting now, by name; "no agent" last.
    ids = {i for i in (*responses, *resolutions, *backlogs) if i is not None}
    names = {row.id: row.name for row in session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(ids)))}
    empty_responses = {"wall": _stats(0, None, None), "business": _stats(0, None, None)}
    agents = []
    keys = sorted(ids, key=lambda i: (names.get(i, "").lower(), i))
    if None in responses or None in resolutions or None in backlogs:
        keys.append(None)
    for agent_id in keys:
        agents.append(
            {
                "agent": None if agent_id is None else {"id": agent_id, "name": names.get(agent_id, "")},
                "first_response": responses.get(agent_id, empty_responses),
                "resolution": resolutions.get(agent_id, _stats(0, None, None)),
                "backlog": backlogs.get(agent_id, backlog_entry(0, None)),
            }
        )
    session.commit()  # ends the read-only transaction: no connection is held idle in one
    return {
        "range": {
            "desde": first,
            "hasta": last,
            "days": span.days,
            "time_zone": tz,
            "start": start,
            "end": end,
        },
        "generated_at": now,
        "business_hours_enabled": schedule.enabled,
        "percentile_sample_every": {"first_response": every_response, "resolution": every_resolution},
        "first_response": total_responses,
        "resolution": total_resolution,
        "days": list(days.values()),
        "hours": hours,
        "backlog": backlog,
        "agents": agents,
    }


def business_today(now: datetime | None = None) -> date:
    """Today's local date in the business time zone (the page's presets end on it)."""
    zone = business_hours.load(db.session).schedule.zone
    db.session.commit()
    return (now or datetime.now(UTC)).astimezone(zone).date()

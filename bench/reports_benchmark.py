"""Benchmark of GET /whatsapp/api/informes at 1 M messages, beside a naive query over the messages.

    .venv/bin/python -m bench.reports_benchmark [--rounds 5]   (`python -m bench.run_all --only reports`)

Two databases of 1,000,000 messages each, generated set-based (reused while the migrations and
this file are unchanged):

* realistic, `inbox_bench_reports_realistic`: 100,000 conversations × 10 messages over the last
  365 days; conversations start mostly 9–13 h and 16–20 h (Madrid), customer and agent take turns,
  the team answers after 1 s to 4 h (log-uniform), customers come back after 1 s to 1 h; 60 %
  resolved, 8 agents (one conversation in five unassigned);
* dense, `inbox_bench_reports_dense`: 50,000 conversations × 20 messages, all in the last 30 days.

The facts the report reads (`conversation_events`, `report_hours`, the conversations' open period
and wait) are then built by migration 0012's own backfill (downgrade, then upgrade, timed: the cost
of the migration at 1 M messages), with the business hours switched on (Madrid, 09–14 and 16–20
on weekdays), so every first response's business seconds are computed as in production.

Measured, in rounds whose order rotates: p50 / p99 of the API request (gunicorn as Render runs
it, an API token) for the last 7, 30 and 365 days (dense: 7 and 30), and, in the same rounds, the
naive baseline: the same figures computed from `messages` at query time (first responses with
window functions, conversations opened per day, messages per hour; no business seconds, which
SQL cannot compute). Results go to the "Reports" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg2
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from bench.common import (
    BENCH_AGENT,
    BENCH_ENV,
    GUNICORN_ENV,
    ROOT,
    BenchGunicorn,
    BenchServer,
    TargetCheck,
    apply_bench_env,
    autocommit,
    code_revision,
    fmt_ms,
    load_average,
    log,
    md_table,
    percentile,
    publish,
    rounds_line,
    run_facts,
    sequential,
    setup_app,
    setup_logging,
)
from bench.list_benchmark import issue_token

REPORT_PATH = "/whatsapp/api/informes"
MIGRATION = ROOT / "migrations" / "versions" / "20261202_0012_reports.py"
TARGET_MS = 500.0
ZONE = "Europe/Madrid"
SPLIT = [["09:00", "14:00"], ["16:00", "20:00"]]
HOURS = {
    "time_zone": ZONE,
    "week": {"mon": SPLIT, "tue": SPLIT, "wed": SPLIT, "thu": SPLIT, "fri": SPLIT, "sat": [], "sun": []},
    "holidays": [],
    "enabled": True,
    "away_message": "Estamos cerrados; le respondemos a partir de las 9:00.",
}


@dataclass(frozen=True)
class Dataset:
    key: str
    database: str
    conversations: int
    messages_per_conversation: int
    days: int
    ranges: tuple[int, ...]  # the report ranges measured, in days ending today

    @property
    def messages(self) -> int:
        return self.conversations * self.messages_per_conversation

    @property
    def label(self) -> str:
        return (
            f"{self.key}: {self.conversations:,} conv × {self.messages_per_conversation} msg = "
            f"{self.messages:,} messages over {self.days} days"
        )


DATASETS = (
    Dataset("realistic", "inbox_bench_reports_realistic", 100_000, 10, 365, (7, 30, 365)),
    Dataset("dense", "inbox_bench_reports_dense", 50_000, 20, 30, (7, 30)),
)
# Local hours a conversation starts at: the peaks 9–13 h and 16–20 h, a little at other times.
START_HOURS = [9, 9, 10, 10, 10, 11, 11, 11, 12, 12, 12, 13, 13, 16, 16, 17, 17, 17, 18, 18, 18, 19, 19]
START_HOURS += [7, 8, 8, 14, 15, 15, 20, 21, 22, 23, 0]


def generate_sql(d: Dataset) -> list[str]:
    hours = "ARRAY[" + ",".join(map(str, START_HOURS)) + "]"
    return [
        "INSERT INTO business_numbers (phone_number_id, display_phone_number) VALUES ('bench-reports', '+34 600')",
        f"""INSERT INTO contacts (wa_id, profile_name)
            SELECT '3460' || lpad(g::text, 9, '0'), 'Cliente ' || g FROM generate_series(1, {d.conversations}) g""",
        f"""CREATE TEMP TABLE starts AS
            WITH a AS (SELECT array_agg(id ORDER BY id) AS ids FROM agents)
            SELECT c.id AS contact_id, c.id AS g,
                CASE WHEN c.id % 10 < 6 THEN 'resolved' WHEN c.id % 10 < 9 THEN 'open' ELSE 'pending' END AS status,
                CASE WHEN c.id % 5 = 0 THEN NULL ELSE a.ids[1 + c.id % cardinality(a.ids)] END AS assignee_id,
                ((date_trunc('day', now() AT TIME ZONE '{ZONE}')
                  - make_interval(days => floor(random() * {d.days})::int)
                  + make_interval(hours => ({hours})[1 + floor(random() * {len(START_HOURS)})::int],
                                  secs => floor(random() * 3600)::int))
                 AT TIME ZONE '{ZONE}') AS started_at
            FROM contacts c CROSS JOIN a""",
        """INSERT INTO conversations (business_number_id, contact_id, status, assignee_id, last_activity_at, created_at)
           SELECT (SELECT id FROM business_numbers WHERE phone_number_id = 'bench-reports'), contact_id, status,
                  assignee_id, least(started_at, now()), least(started_at, now())
           FROM starts""",
        f"""INSERT INTO messages (wamid, conversation_id, direction, sender, agent_id, type, text, sent_at, status)
            SELECT 'wamid.bench.reports.' || conversation_id || '.' || k, conversation_id,
                   CASE WHEN k % 2 = 1 THEN 'in' ELSE 'out' END,
                   CASE WHEN k % 2 = 1 THEN 'customer' ELSE 'agent' END,
                   CASE WHEN k % 2 = 1 THEN NULL ELSE assignee_id END,
                   'text', CASE WHEN k % 2 = 1 THEN 'Hola, ¿tienen stock?' ELSE 'Sí, le enviamos hoy.' END,
                   least(started_at + make_interval(secs => sum(gap) OVER (PARTITION BY conversation_id ORDER BY k)),
                         now() - interval '1 minute'),
                   CASE WHEN k % 2 = 1 THEN NULL ELSE 'read' END
            FROM (
                SELECT conv.id AS conversation_id, conv.assignee_id, s.started_at, k,
                       CASE WHEN k = 1 THEN 0 WHEN k % 2 = 0 THEN exp(random() * ln(14400))
                            ELSE exp(random() * ln(3600)) END AS gap
                FROM conversations conv JOIN starts s ON s.contact_id = conv.contact_id
                CROSS JOIN generate_series(1, {d.messages_per_conversation}) k
            ) gaps""",
        "DROP TABLE starts",
        """UPDATE conversations c SET last_activity_at = m.last_at, last_message_at = m.last_at,
                  last_customer_message_at = m.last_customer_at
           FROM (SELECT conversation_id, max(sent_at) AS last_at,
                        max(sent_at) FILTER (WHERE sender = 'customer') AS last_customer_at
                 FROM messages GROUP BY conversation_id) m
           WHERE m.conversation_id = c.id""",
    ]


def data_key() -> str:
    digest = hashlib.sha256()
    for path in [*sorted((ROOT / "migrations" / "versions").glob("*.py")), Path(__file__)]:
        digest.update(path.read_bytes())
    return f"bench-reports {digest.hexdigest()[:16]}"


def run_migration(url: str, direction: str) -> float:
    """Migration 0010's own upgrade() or downgrade(), timed, in one transaction."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    spec = importlib.util.spec_from_file_location("reports_migration", MIGRATION)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            t0 = time.perf_counter()
            with Operations.context(MigrationContext.configure(conn)):
                getattr(module, direction)()
            took = time.perf_counter() - t0
    finally:
        engine.dispose()
    return took


def prepare(server: BenchServer, d: Dataset, force: bool) -> tuple[str, str, float | None]:
    """The dataset's database; the seconds migration 0012's upgrade took on it (None when reused)."""
    from app.embedded_db import create_database

    url = server.url(d.database)
    with server.admin() as conn:
        comment = conn.execute(
            text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :d"), {"d": d.database}
        ).scalar()
    if comment == data_key() and not force:
        return url, f"reused {d.database} (migrations and this benchmark unchanged)", None
    log.info("generating %s into %s (a few minutes; later runs reuse it)", d.label, d.database)
    started = time.perf_counter()
    create_database(server.admin_url, d.database, drop_first=True)
    from flask_migrate import upgrade

    from app.extensions import db
    from app.services import agents, business_hours

    app = setup_app(url)
    with app.app_context():
        upgrade()
        bench = agents.create_agent(BENCH_AGENT, "Bench Agent", "bench-password-123", role="admin")
        for n in range(1, 8):
            agents.create_agent(f"agent{n}@example.com", f"Agente {n}", "bench-password-123")
        business_hours.update_settings(HOURS, bench)
        db.session.remove()
        db.engine.dispose()
    with autocommit(url) as conn:
        conn.execute(text("SELECT setseed(0.42)"))
        for statement in generate_sql(d):
            conn.execute(text(statement))
        conn.execute(text("VACUUM ANALYZE"))
    generated = time.perf_counter() - started
    log.info("%s: generated in %.0f s; migration 0012 downgrade and upgrade (the backfill)", d.key, generated)
    run_migration(url, "downgrade")
    took = run_migration(url, "upgrade")
    with autocommit(url) as conn:
        conn.execute(text("VACUUM ANALYZE"))
    with server.admin() as conn:
        conn.execute(text(f'COMMENT ON DATABASE "{d.database}" IS :c').bindparams(c=data_key()))
    return url, f"generated {d.database} in {generated:.0f} s, then migration 0012's backfill", took


# --- the naive baseline: the same figures from the messages ------------------------------------------

NAIVE = [
    # first responses: the stretches of each conversation (as migration 0012 rebuilds them)
    """
    WITH visible AS (
        SELECT conversation_id, id, sent_at, agent_id, sender = 'customer' AS from_customer FROM messages
        WHERE type NOT IN ('reaction', 'edit', 'revoke', 'note') AND (sender = 'customer' OR direction = 'out')
          AND sent_at >= %(start)s - interval '7 days' AND sent_at < %(end)s
    ), marked AS (
        SELECT *, lag(from_customer) OVER w AS prev FROM visible
        WINDOW w AS (PARTITION BY conversation_id ORDER BY sent_at, id)
    ), grouped AS (
        SELECT *, count(*) FILTER (WHERE from_customer AND prev IS DISTINCT FROM true)
            OVER (PARTITION BY conversation_id ORDER BY sent_at, id) AS stretch FROM marked
    ), stretches AS (
        SELECT min(sent_at) FILTER (WHERE from_customer) AS since,
               min(sent_at) FILTER (WHERE NOT from_customer) AS answered,
               (array_agg(agent_id ORDER BY sent_at) FILTER (WHERE NOT from_customer))[1] AS agent_id
        FROM grouped WHERE stretch > 0 GROUP BY conversation_id, stretch
    )
    SELECT agent_id, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM answered - since)),
           percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM answered - since))
    FROM stretches WHERE answered >= %(start)s AND answered < %(end)s GROUP BY ROLLUP (agent_id)
    """,
    # conversations opened per local day: each conversation's first message
    """
    SELECT (first_at AT TIME ZONE %(zone)s)::date, count(*) FROM (
        SELECT conversation_id, min(sent_at) AS first_at FROM messages GROUP BY conversation_id
    ) f WHERE first_at >= %(start)s AND first_at < %(end)s GROUP BY 1
    """,
    # messages per local day and hour, by direction
    """
    SELECT (sent_at AT TIME ZONE %(zone)s)::date, extract(hour FROM sent_at AT TIME ZONE %(zone)s), direction, count(*)
    FROM messages WHERE sent_at >= %(start)s AND sent_at < %(end)s
      AND type NOT IN ('reaction', 'edit', 'revoke', 'note')
    GROUP BY 1, 2, 3
    """,
]


def bounds(days: int) -> tuple[str, str, datetime, datetime]:
    zone = ZoneInfo(ZONE)
    today = datetime.now(zone).date()
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(UTC)
    return first.isoformat(), today.isoformat(), start, end


def naive_ms(cursor: Any, days: int) -> float:
    _, _, start, end = bounds(days)
    t0 = time.perf_counter()
    for statement in NAIVE:
        cursor.execute(statement, {"start": start, "end": end, "zone": ZONE})
        cursor.fetchall()
    took = (time.perf_counter() - t0) * 1000
    cursor.connection.rollback()
    return took


@dataclass
class Results:
    p50: dict[str, list[float]] = field(default_factory=dict)
    p99: dict[str, list[float]] = field(default_factory=dict)
    naive: dict[str, list[float]] = field(default_factory=dict)
    facts: dict[str, dict[str, str]] = field(default_factory=dict)
    migration_s: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    samples: int = 0


def measure(server: BenchServer, args: argparse.Namespace) -> tuple[Results, dict[str, Any]]:
    r = Results()
    memory: dict[str, Any] = {}
    for d in DATASETS:
        url, note, took = prepare(server, d, args.reseed)
        r.notes.append(note)
        r.migration_s[d.key] = took
        token, _ = issue_token(url)
        auth = {"Authorization": f"Bearer {token}"}
        raw = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
        cursor = raw.cursor()
        cursor.execute(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM conversation_events), "
            "(SELECT count(*) FROM report_hours), (SELECT count(*) FROM conversations WHERE awaiting_reply_since "
            "IS NOT NULL AND status = 'open'), pg_size_pretty(pg_total_relation_size('conversation_events')), "
            "pg_size_pretty(pg_total_relation_size('report_hours'))"
        )
        row = cursor.fetchone()
        r.facts[d.key] = {
            "messages": f"{row[0]:,}",
            "conversation_events": f"{row[1]:,} ({row[4]})",
            "report_hours": f"{row[2]:,} ({row[5]})",
            "waiting now": f"{row[3]:,}",
        }
        raw.rollback()
        ours = BenchGunicorn(f"app-reports-{d.key}", "wsgi:app", url)
        ours.start()
        try:
            urls = {}
            for days in d.ranges:
                desde, hasta, _, _ = bounds(days)
                urls[f"{d.key} {days} d"] = f"{ours.base_url}{REPORT_PATH}?desde={desde}&hasta={hasta}"
            for target in urls.values():
                sequential(target, auth, 5, 1.0, 60)
            for round_no in range(args.rounds):
                log.info("reports %s: round %d/%d", d.key, round_no + 1, args.rounds)
                keys = list(urls)
                keys = keys[round_no % len(keys) :] + keys[: round_no % len(keys)]
                for key in keys:
                    latencies = sequential(urls[key], auth, args.sequential, args.budget, 60)
                    r.samples += len(latencies)
                    r.p50.setdefault(key, []).append(percentile(latencies, 50))
                    r.p99.setdefault(key, []).append(percentile(latencies, 99))
                    days = int(key.split()[1])
                    r.naive.setdefault(key, []).append(naive_ms(cursor, days))
                    log.info("  %-16s api p50 %7.1f ms  naive %8.1f ms", key, r.p50[key][-1], r.naive[key][-1])
        finally:
            ours.stop()
            raw.close()
        if ours.memory:
            memory[f"this project (reports), {d.key}"] = ours.memory.as_dict()
    return r, memory


def write_report(r: Results, memory: dict[str, Any], args: argparse.Namespace, took: float, load: str) -> str:
    med = statistics.median
    table = md_table(
        "dataset and range | API p50 ms | API p99 ms | naive query over messages ms | naive / ours",
        "lrrrr",
        (
            (
                key,
                fmt_ms(med(r.p50[key])),
                fmt_ms(med(r.p99[key])),
                fmt_ms(med(r.naive[key])),
                f"{med(r.naive[key]) / med(r.p50[key]):.0f}×",
            )
            for key in r.p50
        ),
    )
    checks = [
        TargetCheck(
            f"report p50 ≤ {TARGET_MS:g} ms at 1 M messages, {key}",
            f"{fmt_ms(med(r.p50[key]))} ms",
            med(r.p50[key]) <= TARGET_MS,
        )
        for key in r.p50
    ]
    facts = md_table(
        "dataset | messages | conversation_events | report_hours | waiting now | migration 0012 upgrade (backfill)",
        "lrrrrr",
        (
            (
                d.label,
                r.facts[d.key]["messages"],
                r.facts[d.key]["conversation_events"],
                r.facts[d.key]["report_hours"],
                r.facts[d.key]["waiting now"],
                "reused (not timed this run)" if r.migration_s[d.key] is None else f"{r.migration_s[d.key]:.1f} s",
            )
            for d in DATASETS
        ),
    )
    out = [
        "## Reports (issue 13)",
        "",
        *run_facts(args.command_line, took, args.revision, load, load_average()),
        "",
        f"`GET {REPORT_PATH}?desde=…&hasta=…` (ranges ending today, Madrid) under gunicorn as Render runs it "
        "(`" + ", ".join(f"{k}={v}" for k, v in {**BENCH_ENV, **GUNICORN_ENV}.items()) + "`), with an API token, "
        "business hours on; beside it, in the same rounds, the naive baseline: the same figures computed from "
        "`messages` at query time (three statements: first responses by window functions, opened per day, "
        "messages per day and hour; it does less — no business seconds, no resolutions, no backlog). "
        f"Medians over {args.rounds} rounds ({r.samples:,} API requests).",
        "",
        *table,
        "",
        "### Targets",
        "",
        *[c.line() for c in checks],
        "",
        "### The facts read, and what the migration costs",
        "",
        *facts,
        "",
        "The report reads `conversation_events` (one row per opening, reopening, resolution and first "
        "response, written by the services in the transaction that makes them true; index `(kind, at)`), "
        "`report_hours` (per UTC hour and one of 4 shards: visible messages by direction and events by kind; "
        "one upsert per message) and the partial index on waiting open conversations, never `messages`: its "
        "cost follows the number of events in the range, not the number of messages. Beyond 50,000 first "
        "responses (or resolutions) in the range the percentiles are read from an even sample (every k-th "
        "event; the counts stay exact). Migration 0010 builds them from "
        "the messages set-based (window functions); with the business hours on, each first response's "
        "business seconds are computed in Python by app/whatsapp/business_hours.py (batches of 5,000 updates).",
        "",
        "### Per-round figures",
        "",
        *[rounds_line(key, p50=r.p50[key]) for key in r.p50],
        *[f"- {key} / naive: " + ", ".join(fmt_ms(v) for v in r.naive[key]) + " ms" for key in r.naive],
        "",
        "### Set-up",
        "",
        *[f"- {note}." for note in r.notes],
        f"- Data: {__doc__.split('Two databases of ')[1].split('Measured')[0].strip()}",
    ]
    publish("reports", out, checks, memory, args.revision, args.server)
    return "\n".join([*table, "", *[c.line() for c in checks]])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sequential", type=int, default=30, help="max sequential API requests per round and range")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of sequential requests per round and range")
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args(argv)
    args.command_line = " ".join([".venv/bin/python", "-m", "bench.reports_benchmark", *argv]).strip()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging()
    load = load_average()
    apply_bench_env()
    args.revision = code_revision()
    started = time.perf_counter()
    args.server = BenchServer()
    r, memory = measure(args.server, args)
    summary = write_report(r, memory, args, time.perf_counter() - started, load)
    sys.stdout.write(summary + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

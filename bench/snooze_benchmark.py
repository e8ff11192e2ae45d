"""Snooze: what the wake job costs, and what waking on a customer's message adds to ingest.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.snooze_benchmark [--conversations 100000] [--snoozed 10000] [--due 1000]

On a throw-away database (`inbox_bench_snooze`, dropped afterwards) migrated to head:
`--conversations` conversations, `--snoozed` of them snoozed (a day ahead), `--due` of those due.
Measured, and logged (not published to RESULTS.md):

* `wake_due()` with `--due` conversations due (one statement: the UPDATE, the events' INSERT);
* `wake_due()` when nothing is due (what the job costs every minute): median of 50 runs;
* ingest's summary UPDATE for a customer's message (`touch_statement`), with the CTE that
  records a wake-up event and without it, on a conversation that is not snoozed: median µs over
  2,000 executions each, in a transaction rolled back.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.embedded_db import create_database, drop_database
from app.extensions import db
from app.services.snooze import wake_due
from app.services.summaries import Effect, touch_statement
from bench.common import setup_app, setup_logging

log = logging.getLogger("bench.snooze")

DATABASE = "inbox_bench_snooze"
CUSTOMER = Effect(activity=True, preview=True, customer=True, agent=False)


def _seed(conversations: int, snoozed: int, due: int) -> None:
    db.session.execute(text("INSERT INTO business_numbers (phone_number_id) VALUES ('bench')"))
    db.session.execute(
        text("INSERT INTO contacts (wa_id) SELECT '549110' || g FROM generate_series(1, :n) g"), {"n": conversations}
    )
    db.session.execute(
        text(
            "INSERT INTO conversations (business_number_id, contact_id, status, snoozed_until) "
            "SELECT 1, c.id, CASE WHEN c.id <= :s THEN 'snoozed' ELSE 'open' END, "
            "CASE WHEN c.id <= :d THEN now() - interval '1 minute' "
            "     WHEN c.id <= :s THEN now() + interval '1 day' END FROM contacts c"
        ),
        {"s": snoozed, "d": due},
    )
    db.session.commit()
    db.session.execute(text("ANALYZE conversations"))
    db.session.commit()


def _touch_micros(statement: object, conversation_id: int, runs: int) -> float:
    params = {"p_conversation_id": conversation_id, "p_message_id": None, "p_sent_at": datetime.now(UTC)}
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        db.session.execute(statement, params)  # type: ignore[call-overload]
        timings.append((time.perf_counter() - started) * 1e6)
    db.session.rollback()
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--snoozed", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=1_000)
    args = parser.parse_args()
    setup_logging()
    admin = os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    create_database(admin, DATABASE, drop_first=True)
    url = make_url(admin).set(database=DATABASE).render_as_string(hide_password=False)
    try:
        app = setup_app(url)
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            _seed(args.conversations, args.snoozed, args.due)
            started = time.perf_counter()
            woke = wake_due()
            first = (time.perf_counter() - started) * 1000
            idle = []
            for _ in range(50):
                started = time.perf_counter()
                again = wake_due()
                assert again == 0, again
                idle.append((time.perf_counter() - started) * 1000)
            with_cte = touch_statement(CUSTOMER)
            without_cte = with_cte._clone()  # the same UPDATE without the wake-up event's CTE
            without_cte._independent_ctes = ()
            awake = args.conversations  # the last conversation is open (not snoozed)
            _touch_micros(with_cte, awake, 200)  # warm up
            plain = _touch_micros(without_cte, awake, 2000)
            full = _touch_micros(with_cte, awake, 2000)
        log.info("conversations %d, snoozed %d, due %d", args.conversations, args.snoozed, args.due)
        log.info("wake_due with %s due: %.1f ms (one statement, committed)", f"{woke:,}", first)
        log.info("wake_due with nothing due: median %.2f ms over 50 runs", statistics.median(idle))
        log.info("customer summary UPDATE without the wake-up CTE: median %.0f µs", plain)
        log.info("customer summary UPDATE with the wake-up CTE: median %.0f µs (%+.0f µs)", full, full - plain)
    finally:
        drop_database(admin, DATABASE)


if __name__ == "__main__":
    main()

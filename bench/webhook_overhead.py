"""Where a webhook delivery's CPU goes in a worker: the request machinery around the service, or the service.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.webhook_overhead [--deliveries 2000] [--rounds 3]

In this process, one delivery at a time, on a throw-away database (`inbox_bench_overhead`, migrated
to head, dropped afterwards), with signed deliveries of one message built by the ingest benchmark's
generator (10 % redeliveries), measured by this process's CPU time (`time.process_time`) per delivery:

* **the app**: `POST /webhook/whatsapp` through the app's WSGI entry — Flask's request context, the
  app's before/after/teardown hooks (request id, limiter, CSRF exemption, request metrics, session
  cookie, security headers, the JSON access line, written to /dev/null as in production), the view;
* **the service alone**: what the view calls for a valid delivery — the signature check, the body's
  decoding and `inbound.receive_delivery()` in an app context — without any of the request machinery;
* **the minimal handler** (bench/baselines_ingest.py) through its own Flask WSGI entry: the floor the
  ingest benchmark compares against (its SQL is one statement, so it is mostly Flask's own cost).

The rounds alternate the order. The app minus the service is the most that taking signed deliveries
off Flask's request path (a WSGI lane of their own) could save a worker; gunicorn's HTTP handling is
outside all three (in the ingest and capacity benchmarks' CPU per delivery). Logged, not published
to RESULTS.md; README, "Capacity", quotes a run.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.embedded_db import create_database, drop_database
from bench.baselines_ingest import CREATE_TABLE as BASELINE_TABLE_DDL
from bench.common import setup_app, setup_logging
from bench.ingest_benchmark import APP_SECRET, CUSTOMERS, Item, build_workload

log = logging.getLogger("bench.webhook_overhead")

DATABASE = "inbox_bench_overhead"
PATH = "/webhook/whatsapp"


def _environ(item: Item) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": PATH,
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(item.body),
        "wsgi.errors": sys.stderr,
        "CONTENT_LENGTH": str(len(item.body)),
        "CONTENT_TYPE": "application/json",
        "HTTP_X_HUB_SIGNATURE_256": item.signature,
    }


def through_wsgi(app: Flask) -> Callable[[Iterable[Item]], None]:
    def post(items: Iterable[Item]) -> None:
        statuses: list[str] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            statuses.append(status)

        for item in items:
            b"".join(app.wsgi_app(_environ(item), start_response))
            if not statuses[-1].startswith("200"):
                raise RuntimeError(f"the delivery was answered {statuses[-1]}")

    return post


def service_alone(app: Flask) -> Callable[[Iterable[Item]], None]:
    from app.services.inbound import receive_delivery
    from app.whatsapp.payloads import SignatureCheck, decode_body, verify_signature

    def post(items: Iterable[Item]) -> None:
        for item in items:
            with app.app_context():
                if verify_signature(APP_SECRET, item.body, item.signature) is not SignatureCheck.OK:
                    raise RuntimeError("a delivery's signature did not match")
                receive_delivery(item.body, decode_body(item.body))

    return post


def cpu_ms_per_delivery(post: Callable[[Iterable[Item]], None], items: list[Item]) -> float:
    started = time.process_time()
    post(items)
    return (time.process_time() - started) * 1000 / len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=2000, help="deliveries per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup_logging()
    admin = os.environ.get("TEST_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    create_database(admin, DATABASE, drop_first=True)
    url = make_url(admin).set(database=DATABASE).render_as_string(hide_password=False)
    try:
        # As deployed: production settings, JSON lines.
        production = {"APP_ENV": "production", "DATABASE_URL": url, "SECRET_KEY": "bench-" + "k" * 40}
        os.environ.update(production, WHATSAPP_APP_SECRET=APP_SECRET)
        # The measured app is the process's first (the request metrics' exporter hooks into one).
        app = setup_app(url)
        root = logging.getLogger()
        app_handlers = [h for h in root.handlers if h.get_name() == "app"]
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
        # Alembic's logging configuration replaced the root logger's handlers: the app's again, with
        # the access line written as in production, but to /dev/null (not this output).
        devnull = open(os.devnull, "w")  # noqa: SIM115 (open for the whole run)
        for handler in app_handlers:
            handler.setStream(devnull)  # type: ignore[attr-defined]
        root.handlers = app_handlers
        root.setLevel(logging.INFO)
        from bench.baselines_ingest import create_app as create_baseline

        baseline = create_baseline(url, APP_SECRET)
        from app.extensions import db

        with app.app_context():
            db.session.execute(text(BASELINE_TABLE_DDL))
            db.session.commit()
        variants = {
            "the app (Flask, hooks, view)": through_wsgi(app),
            "the service alone": service_alone(app),
            "the minimal handler (Flask)": through_wsgi(baseline),
        }
        names = list(variants)
        # Every customer's contact and conversation first (7 deliveries per customer on average:
        # all but about 0.1 % of them), so that no variant pays for creating them; then every
        # variant warmed up (statements compiled and prepared).
        service_alone(app)(build_workload("customers", 7 * CUSTOMERS, 1, 98))
        for name, post in variants.items():
            post(build_workload(f"warm{names.index(name)}", 300, 1, 99))
        figures: dict[str, list[float]] = {name: [] for name in variants}
        for round_number in range(args.rounds):
            order = names if round_number % 2 == 0 else names[::-1]
            for name in order:
                items = build_workload(f"r{round_number}v{names.index(name)}", args.deliveries, 1, round_number)
                figures[name].append(cpu_ms_per_delivery(variants[name], items))
        medians = {name: statistics.median(values) for name, values in figures.items()}
        for name, values in figures.items():
            log.info(
                "%-30s %.2f ms CPU per delivery (rounds %s)",
                name,
                medians[name],
                ", ".join(f"{v:.2f}" for v in values),
            )
        whole, service = medians[names[0]], medians[names[1]]
        log.info(
            "the request machinery around the service: %.2f ms (%.0f %% of the app's); the service %.2f ms",
            whole - service,
            100 * (whole - service) / whole,
            service,
        )
        log.info(json.dumps({"medians_ms": medians, "rounds_ms": figures, "deliveries": args.deliveries}))
    finally:
        drop_database(admin, DATABASE)


if __name__ == "__main__":
    main()

"""The baseline for `bench/ingest_benchmark.py`: the minimal possible webhook handler.

`POST /webhook/whatsapp`: verify `X-Hub-Signature-256` (HMAC-SHA256 of the raw body with the
app secret, constant-time compare), parse the JSON, then one idempotent statement,
`INSERT INTO bench_ingest_baseline (wamid) SELECT unnest(:ids) ON CONFLICT DO NOTHING`, with
the message ids of the delivery, and commit. Nothing else: no raw body kept, no contact,
conversation or summary columns, no statuses, no logging, metrics or rate limiting. It is the
floor any correct ingest (durable and deduplicated before answering 200) can reach on this
stack; this project's handler does all of that work too, plus everything the product needs.

Served by its own gunicorn with the same settings as the app (gunicorn.conf.py, Render's
GUNICORN_CMD_ARGS), on the same database server and database, with the same pool options
(`config.engine_options()`, and the same pre-ping on checkout, skipped within its idle window:
app/pool_ping.py). The table is created by the
benchmark. Run: `gunicorn … bench.baselines_ingest:app` with DATABASE_URL and WHATSAPP_APP_SECRET.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from app.pool_ping import install_idle_ping
from config import engine_options, normalise_database_url, pool_ping_idle_seconds

TABLE = "bench_ingest_baseline"
CREATE_TABLE = f"CREATE TABLE IF NOT EXISTS {TABLE} (wamid text PRIMARY KEY)"
INSERT = text(f"INSERT INTO {TABLE} (wamid) SELECT unnest(CAST(:ids AS text[])) ON CONFLICT DO NOTHING")


def message_ids(data: Any) -> list[str]:
    return [
        message["id"]
        for entry in data.get("entry", [])
        for change in entry.get("changes", [])
        for message in change.get("value", {}).get("messages", [])
    ]


def create_app(database_url: str | None = None, app_secret: str | None = None) -> Flask:
    url = normalise_database_url(database_url or os.environ["DATABASE_URL"])
    secret = (app_secret or os.environ["WHATSAPP_APP_SECRET"]).encode("utf-8")
    engine: Engine = create_engine(url, **engine_options(os.environ))
    idle_seconds = pool_ping_idle_seconds(os.environ)
    if idle_seconds is not None:
        install_idle_ping(engine, idle_seconds)
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    @app.post("/webhook/whatsapp")
    def receive() -> Any:
        body = request.get_data()
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
            return jsonify(error="signature_invalid"), 403
        ids = message_ids(json.loads(body))
        with engine.begin() as conn:  # commits before the answer
            conn.execute(INSERT, {"ids": ids})
        return jsonify(status="ok")

    return app


app = create_app() if os.environ.get("DATABASE_URL") and os.environ.get("WHATSAPP_APP_SECRET") else None

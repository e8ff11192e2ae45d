"""The baselines of `bench/capacity_benchmark.py` in one gunicorn (one cgroup, one 0.5 CPU quota).

`POST /webhook/whatsapp` is the minimal webhook handler of `bench/baselines_ingest.py` (verify,
one idempotent insert, commit) and every other path is `bench/baselines.py` (the analysis'
proposed list query at `/proposed/conversaciones`, `/healthz`): the same code the ingest and list
benchmarks compare with, dispatched by path so that both share one confined service, as the
project's app does. Run: `gunicorn … bench.baselines_capacity:app` with DATABASE_URL and
WHATSAPP_APP_SECRET.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from bench import baselines, baselines_ingest

WEBHOOK_PATH = "/webhook/whatsapp"


def create_app(database_url: str | None = None, app_secret: str | None = None) -> Callable[..., Iterable[bytes]]:
    lists = baselines.create_app(database_url)
    ingest = baselines_ingest.create_app(database_url, app_secret)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = ingest if environ.get("PATH_INFO") == WEBHOOK_PATH else lists
        return target(environ, start_response)

    return app


app = create_app() if os.environ.get("DATABASE_URL") and os.environ.get("WHATSAPP_APP_SECRET") else None

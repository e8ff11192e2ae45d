"""Background jobs: Procrastinate (a PostgreSQL-backed queue) on the app's own database.

Two Procrastinate apps per Flask app, sharing one schema (applied by Alembic revision 0003):

- `web_queue()` defers jobs from requests and commands through the app's SQLAlchemy session,
  so it uses the connections the pool already has (no second pool in each gunicorn worker), each
  defer in a short transaction of its own; `defer_owed()` instead defers inside the webhook's
  transaction, so the jobs commit with the rows that owe them;
- `worker_queue()` (app/jobs/worker.py) runs them: an asyncio worker on psycopg 3 with a small
  pool of its own, started by `flask --app wsgi jobs worker` (`make run` and gunicorn's master
  start it; see README, "Media & jobs").

The work itself lives on the rows it concerns (`messages.media_state`), so every job is
idempotent and a periodic sweep re-enqueues whatever a crash dropped (app/jobs/media.py).
"""

from __future__ import annotations

from app.jobs.queue import (
    FETCH_MEDIA,
    MEDIA_QUEUE,
    SWEEP_MEDIA,
    defer_fetch,
    defer_owed,
    web_queue,
)

__all__ = ["FETCH_MEDIA", "MEDIA_QUEUE", "SWEEP_MEDIA", "defer_fetch", "defer_owed", "web_queue"]

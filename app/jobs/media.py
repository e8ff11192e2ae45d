"""The media jobs: fetch one message's media, and the sweep that makes good what a crash dropped.

- `media.fetch(message_id)`: app/services/media_fetch.py does the work; idempotent (a row that
  is no longer pending, or claimed by another worker, is left alone). Transient failures are
  retried with exponential backoff: `RETRY` waits about 1 min, 1.5 min, 4.5 min, 23 min and
  2 h 11 min between its 6 attempts, so a Graph outage of more than two hours is ridden out;
  on the last attempt the row is marked `failed` (or `corrupt`) instead.
- `media.sweep` (every minute): retries fetch jobs left `doing` by a worker that stopped
  sending heartbeats (killed mid-download), gives up on rows that failed far too often, and
  queues a fetch for every pending row that has none (the queueing lock makes that a no-op
  for rows whose job is still waiting, even for a retry hours away).
- `media.prune` (daily, only when MEDIA_RETENTION_DAYS is set): removes copies older than the
  retention, where the storage is (the worker runs beside the files); `flask --app wsgi
  maintenance prune-media` does the same by hand.
"""

from __future__ import annotations

import asyncio
import logging

import procrastinate
from flask import Flask
from procrastinate import JobContext
from procrastinate import exceptions as queue_errors

from app.jobs.queue import FETCH_MEDIA, MEDIA_QUEUE, PRUNE_MEDIA, SWEEP_MEDIA, fetch_lock
from app.services import media_fetch

log = logging.getLogger(__name__)

MAX_RETRIES = 5  # 6 attempts in all
RETRY = procrastinate.RetryStrategy(max_attempts=MAX_RETRIES, wait=60, exponential_wait=6)
SWEEP_CRON = "* * * * *"
PRUNE_CRON = "17 4 * * *"


def register(queue: procrastinate.App, flask_app: Flask) -> None:
    @queue.task(name=FETCH_MEDIA, queue=MEDIA_QUEUE, retry=RETRY, pass_context=True)
    def fetch(context: JobContext, message_id: int) -> str:
        with flask_app.app_context():
            outcome = media_fetch.fetch_media(message_id, last_attempt=context.job.attempts >= MAX_RETRIES)
        log.info("media.fetch message %s: %s (attempt %d)", message_id, outcome, context.job.attempts + 1)
        return outcome

    @queue.periodic(cron=SWEEP_CRON)
    @queue.task(name=SWEEP_MEDIA, queue=MEDIA_QUEUE, queueing_lock=SWEEP_MEDIA, pass_context=True)
    async def sweep(context: JobContext, timestamp: int) -> int:
        return await sweep_media(context.app, flask_app)

    @queue.periodic(cron=PRUNE_CRON)
    @queue.task(name=PRUNE_MEDIA, queue=MEDIA_QUEUE, queueing_lock=PRUNE_MEDIA)
    def prune(timestamp: int) -> int:
        """Daily: the copies older than MEDIA_RETENTION_DAYS (when set), then orphaned files."""
        days = int(flask_app.config["MEDIA_RETENTION_DAYS"])
        removed = 0
        with flask_app.app_context():
            if days:
                removed = media_fetch.prune_media(days)
                log.info("media.prune removed %d copies older than %d days", removed, days)
            removed += media_fetch.prune_orphans()
        return removed


async def sweep_media(queue: procrastinate.App, flask_app: Flask) -> int:
    """Queue a fetch for every pending media without a live job; returns how many were queued."""
    # Every task here is idempotent, so a job whose worker stopped is simply run again.
    for job in await queue.job_manager.get_stalled_jobs():
        log.warning("%s job %s stalled (its worker stopped); retrying it", job.task_name, job.id)
        await queue.job_manager.retry_job(job)
    owed = await asyncio.to_thread(_owed, flask_app)
    queued = 0
    for message_id in owed:
        try:
            deferrer = queue.configure_task(FETCH_MEDIA, queue=MEDIA_QUEUE, queueing_lock=fetch_lock(message_id))
            await deferrer.defer_async(message_id=message_id)
        except queue_errors.AlreadyEnqueued:
            continue
        queued += 1
    if queued:
        log.info("media.sweep queued %d fetches that had no job", queued)
    return queued


def _owed(flask_app: Flask) -> list[int]:
    with flask_app.app_context():
        media_fetch.give_up_exhausted()
        return media_fetch.owed_media()

"""The worker side: a Procrastinate app on psycopg 3 that runs the tasks, and how it is run."""

from __future__ import annotations

import logging
import os

import procrastinate
from flask import Flask
from sqlalchemy.engine import make_url

from app.jobs import media, replies, snooze
from app.jobs.queue import MEDIA_QUEUE, REPLIES_QUEUE, SNOOZE_QUEUE

log = logging.getLogger(__name__)

QUEUES = (MEDIA_QUEUE, REPLIES_QUEUE, SNOOZE_QUEUE)


def psycopg_conninfo(sqlalchemy_url: str) -> str:
    """The app's SQLAlchemy URL (psycopg2 driver) as a libpq URI for psycopg 3."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


def worker_queue(app: Flask) -> procrastinate.App:
    """The app's worker-side queue, built once per Flask app."""
    queue = app.extensions.get("worker_queue")
    if not isinstance(queue, procrastinate.App):
        queue = app.extensions["worker_queue"] = build_worker_queue(app)
    return queue


def build_worker_queue(app: Flask) -> procrastinate.App:
    """A worker-side queue with its own connection pool; its tasks close over `app`."""
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("connect_args", {})
    connector = procrastinate.PsycopgConnector(
        conninfo=psycopg_conninfo(app.config["SQLALCHEMY_DATABASE_URI"]),
        min_size=1,
        max_size=app.config["JOBS_DB_POOL_SIZE"],
        kwargs={
            "application_name": f"{options.get('application_name', 'whatsapp-inbox')}-jobs",
            "connect_timeout": options.get("connect_timeout", 5),
        },
    )
    queue = procrastinate.App(connector=connector)
    media.register(queue, app)
    replies.register(queue, app)
    snooze.register(queue, app)
    return queue


def lower_priority(nice: int) -> int:
    """Run this process at `nice` (never raising its priority): when the webhook, the pages and
    the downloads want the same CPU (Render's 0.5 CPU, a burst), the web workers get it first and
    the queue catches up afterwards. Called before the worker starts threads, which inherit it."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    target = min(max(current, nice), 19)
    if target != current:
        os.setpriority(os.PRIO_PROCESS, 0, target)
    return target


def run_worker(app: Flask, *, once: bool = False, concurrency: int | None = None) -> None:
    """Run the worker: until stopped (SIGTERM / Ctrl-C), or `once` until the queues are empty."""
    queue = worker_queue(app)
    if app.config["APP_ENV"] == "production" and not app.config.get("MEDIA_S3_BUCKET"):
        log.warning(
            "media is kept on the local filesystem (%s): on Render that is lost at every deploy unless it is "
            "on a persistent disk; set MEDIA_S3_BUCKET or mount a disk there (README: Media & jobs)",
            app.config["MEDIA_STORAGE_PATH"],
        )
    if not once:
        lower_priority(app.config["JOBS_NICE"])
    log.info("jobs worker starting (queues: %s%s)", ", ".join(QUEUES), ", once" if once else "")
    queue.run_worker(
        queues=list(QUEUES),
        wait=not once,
        concurrency=concurrency or app.config["JOBS_CONCURRENCY"],
        install_signal_handlers=not once,
        listen_notify=not once,
        delete_jobs="successful",
    )

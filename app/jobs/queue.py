"""Deferring jobs from the web side (requests, commands), through the app's SQLAlchemy session."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import procrastinate
from flask import current_app
from procrastinate import exceptions as queue_errors
from procrastinate.contrib.sqlalchemy.psycopg2_connector import (
    PERCENT_PATTERN,
    SQLAlchemyPsycopg2Connector,
    wrap_exceptions,
)
from procrastinate.jobs import Job
from sqlalchemy.exc import IntegrityError

from app.extensions import db

log = logging.getLogger(__name__)

MEDIA_QUEUE = "media"
FETCH_MEDIA = "media.fetch"
SWEEP_MEDIA = "media.sweep"
PRUNE_MEDIA = "media.prune"
REPLIES_QUEUE = "replies"
SEND_REPLY = "replies.send"
SWEEP_REPLIES = "replies.sweep"
SNOOZE_QUEUE = "snooze"
WAKE_SNOOZED = "snooze.wake"
TASK_NAMES = (FETCH_MEDIA, SWEEP_MEDIA, PRUNE_MEDIA, SEND_REPLY, SWEEP_REPLIES, WAKE_SNOOZED)


def reply_lock(reply_id: int) -> str:
    """The queueing lock of an automatic reply's send job."""
    return f"replies.send:{reply_id}"


def fetch_lock(message_id: int) -> str:
    """The queueing lock of a message's fetch: at most one such job waits in the queue."""
    return f"media.fetch:{message_id}"


class SessionConnector(SQLAlchemyPsycopg2Connector):
    """Procrastinate's SQLAlchemy connector, run through `db.session` instead of its own engine.

    Each query runs in its own short transaction on the session (committed at once), so a job is
    recorded only after the caller committed the data it concerns. In the tests' rolled-back
    transaction it joins the test's savepoint like everything else."""

    def _run(self, query: str, arguments: dict[str, Any]) -> Any:
        return db.session.connection().exec_driver_sql(PERCENT_PATTERN.sub("%%", query), self._wrap_json(arguments))

    def _in_transaction(self, query: str, arguments: dict[str, Any], fetch: str | None) -> Any:
        try:
            with wrap_exceptions():
                result = self._run(query, arguments)
                rows = None
                if fetch == "one":
                    rows = result.mappings().fetchone()
                elif fetch == "all":
                    rows = result.mappings().all()
                db.session.commit()
                return rows
        except BaseException:
            db.session.rollback()
            raise

    def execute_query(self, query: str, **arguments: Any) -> None:
        self._in_transaction(query, arguments, None)

    def execute_query_one(self, query: str, **arguments: Any) -> Mapping[str, Any]:  # type: ignore[override]
        row: Mapping[str, Any] = self._in_transaction(query, arguments, "one")
        return row

    def execute_query_all(self, query: str, **arguments: Any) -> list[Mapping[str, Any]]:  # type: ignore[override]
        rows: list[Mapping[str, Any]] = self._in_transaction(query, arguments, "all")
        return rows


class TransactionConnector(SessionConnector):
    """Runs each query in the caller's open transaction on `db.session` and never commits: the jobs
    commit, or roll back, with the rows that owe them. Database errors reach the caller as
    SQLAlchemy's own (a deadlock is retried, an outage answers 503), not wrapped."""

    def _in_transaction(self, query: str, arguments: dict[str, Any], fetch: str | None) -> Any:
        result = self._run(query, arguments)
        if fetch == "one":
            return result.mappings().fetchone()
        if fetch == "all":
            return result.mappings().all()
        return None


def web_queue() -> procrastinate.App:
    queue = current_app.extensions.get("web_queue")
    if queue is None:
        queue = current_app.extensions["web_queue"] = procrastinate.App(connector=SessionConnector())
    assert isinstance(queue, procrastinate.App)
    return queue


def defer_fetch(message_id: int, *, queue: procrastinate.App | None = None) -> bool:
    """Queue the fetch of one message's media; False when one is already waiting."""
    queue = queue or web_queue()
    try:
        queue.configure_task(FETCH_MEDIA, queue=MEDIA_QUEUE, queueing_lock=fetch_lock(message_id)).defer(
            message_id=message_id
        )
    except queue_errors.AlreadyEnqueued:
        return False
    return True


def defer_reply(reply_id: int, *, queue: procrastinate.App | None = None) -> bool:
    """Queue the send of one automatic reply; False when one is already waiting."""
    queue = queue or web_queue()
    try:
        queue.configure_task(SEND_REPLY, queue=REPLIES_QUEUE, queueing_lock=reply_lock(reply_id)).defer(
            reply_id=reply_id
        )
    except queue_errors.AlreadyEnqueued:
        return False
    return True


def owed_queue() -> procrastinate.App:
    """The queue that defers inside the caller's open transaction (`TransactionConnector`)."""
    queue = current_app.extensions.get("owed_queue")
    if queue is None:
        queue = current_app.extensions["owed_queue"] = procrastinate.App(connector=TransactionConnector())
    assert isinstance(queue, procrastinate.App)
    return queue


def owed_jobs(queue: procrastinate.App, message_ids: Iterable[int], reply_ids: Iterable[int]) -> list[Job]:
    """The fetch job of each media message and the send job of each automatic reply."""
    fetches = [
        queue.configure_task(FETCH_MEDIA, queue=MEDIA_QUEUE, queueing_lock=fetch_lock(item)).make_new_job(
            message_id=item
        )
        for item in message_ids
    ]
    replies = [
        queue.configure_task(SEND_REPLY, queue=REPLIES_QUEUE, queueing_lock=reply_lock(item)).make_new_job(
            reply_id=item
        )
        for item in reply_ids
    ]
    return fetches + replies


def defer_owed(message_ids: Sequence[int], reply_ids: Sequence[int]) -> int:
    """Inside the webhook's transaction, before its commit: queue the jobs its new rows owe.

    One statement for all of them (Procrastinate's batch defer), committed with the rows, so the
    webhook pays no second transaction and no job exists for a row that was rolled back. It runs
    in a savepoint: should a job with the same queueing lock already wait (the new rows' ids make
    that impossible in practice), it is left out and the rows still commit as owed (`pending`),
    which the periodic sweep queues. Any other database error is the webhook's (retry, 503)."""
    if not message_ids and not reply_ids:
        return 0
    queue = owed_queue()
    jobs = owed_jobs(queue, message_ids, reply_ids)
    try:
        with db.session.begin_nested():
            queue.job_manager.batch_defer_jobs(jobs)
    except IntegrityError as exc:
        log.warning("could not queue %d owed jobs (the sweep will): %s", len(jobs), exc.orig)
        return 0
    return len(jobs)

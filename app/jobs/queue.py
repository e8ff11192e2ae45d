"""Deferring jobs from the web side (requests, commands), through the app's SQLAlchemy session."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import procrastinate
from flask import current_app
from procrastinate import exceptions as queue_errors
from procrastinate.contrib.sqlalchemy.psycopg2_connector import (
    PERCENT_PATTERN,
    SQLAlchemyPsycopg2Connector,
    wrap_exceptions,
)

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


def _defer_after_commit(defer: Callable[[int], bool], ids: Iterable[int], what: str) -> int:
    """After the webhook's commit: queue each job its rows made owed.

    A failure here loses nothing — the rows say `pending` and a periodic sweep queues them — so
    it is logged, never raised into the webhook's answer."""
    queued = 0
    for item in ids:
        try:
            queued += defer(item)
        except Exception as exc:  # the database went away between commit and enqueue
            log.warning("could not queue the %s %s (the sweep will): %s", what, item, exc)
            return queued
    return queued


def defer_fetches(message_ids: Iterable[int]) -> int:
    """After the webhook's commit: queue each new media message's fetch."""
    return _defer_after_commit(defer_fetch, message_ids, "media fetch of message")


def defer_replies(reply_ids: Iterable[int]) -> int:
    """After the webhook's commit: queue the send of each automatic reply it made owed."""
    return _defer_after_commit(defer_reply, reply_ids, "send of automatic reply")

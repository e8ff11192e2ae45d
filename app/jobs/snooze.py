"""The snooze job (app/services/snooze.py does the work).

- `snooze.wake` (every minute): wakes every conversation whose `snoozed_until` has passed, in
  one set-based statement. Idempotent: a conversation already awake no longer matches, so a run
  that repeats, overlaps another or follows a stopped worker wakes each conversation once; a
  queueing lock keeps one run waiting at most. Nothing is owed between runs (the time is on the
  row), so there is nothing to sweep.
"""

from __future__ import annotations

import logging

import procrastinate
from flask import Flask

from app.jobs.queue import SNOOZE_QUEUE, WAKE_SNOOZED
from app.services import snooze

log = logging.getLogger(__name__)

WAKE_CRON = "* * * * *"


def register(queue: procrastinate.App, flask_app: Flask) -> None:
    @queue.periodic(cron=WAKE_CRON)
    @queue.task(name=WAKE_SNOOZED, queue=SNOOZE_QUEUE, queueing_lock=WAKE_SNOOZED)
    def wake(timestamp: int) -> int:
        with flask_app.app_context():
            return snooze.wake_due()

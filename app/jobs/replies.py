"""The automatic-reply jobs (app/services/auto_replies.py does the work).

- `replies.send(reply_id)`: sends one owed reply; idempotent (a row no longer pending is left
  alone), so running it twice, or beside the sweep's copy, sends once. A database hiccup is
  retried a few times; Graph's own retries are the Graph client's (a send that timed out is
  never repeated), and Graph's refusal is kept on the message.
- `replies.sweep` (every minute): queues a send for every pending row whose job was lost (the
  queueing lock makes that a no-op while its job still waits). Stalled jobs of every task are
  retried by the media sweep.
"""

from __future__ import annotations

import asyncio
import logging

import procrastinate
from flask import Flask
from procrastinate import exceptions as queue_errors

from app.jobs.queue import REPLIES_QUEUE, SEND_REPLY, SWEEP_REPLIES, reply_lock
from app.services import auto_replies

log = logging.getLogger(__name__)

RETRY = procrastinate.RetryStrategy(max_attempts=3, wait=10, exponential_wait=2)
SWEEP_CRON = "* * * * *"


def register(queue: procrastinate.App, flask_app: Flask) -> None:
    @queue.task(name=SEND_REPLY, queue=REPLIES_QUEUE, retry=RETRY)
    def send(reply_id: int) -> str:
        with flask_app.app_context():
            outcome = auto_replies.send_reply(reply_id)
        log.info("replies.send %s: %s", reply_id, outcome)
        return outcome

    @queue.periodic(cron=SWEEP_CRON)
    @queue.task(name=SWEEP_REPLIES, queue=REPLIES_QUEUE, queueing_lock=SWEEP_REPLIES, pass_context=True)
    async def sweep(context: procrastinate.JobContext, timestamp: int) -> int:
        return await sweep_replies(context.app, flask_app)


async def sweep_replies(queue: procrastinate.App, flask_app: Flask) -> int:
    """Queue a send for every pending automatic reply without a waiting job; how many were queued."""
    owed = await asyncio.to_thread(_owed, flask_app)
    queued = 0
    for reply_id in owed:
        try:
            deferrer = queue.configure_task(SEND_REPLY, queue=REPLIES_QUEUE, queueing_lock=reply_lock(reply_id))
            await deferrer.defer_async(reply_id=reply_id)
        except queue_errors.AlreadyEnqueued:
            continue
        queued += 1
    if queued:
        log.info("replies.sweep queued %d automatic replies that had no job", queued)
    return queued


def _owed(flask_app: Flask) -> list[int]:
    with flask_app.app_context():
        return auto_replies.owed_replies()

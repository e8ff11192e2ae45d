"""What `flask --app wsgi jobs` shows and does: failed jobs, media given up on, retrying them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from app.extensions import db
from app.jobs.queue import FETCH_MEDIA, defer_fetch, web_queue

FAILED_JOBS = text(
    """
    SELECT j.id, j.task_name, j.queue_name, j.args, j.attempts,
           (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id) AS failed_at
      FROM procrastinate_jobs j
     WHERE j.status = 'failed'
     ORDER BY j.id
    """
)
GIVEN_UP_MEDIA = text(
    """
    SELECT id, type, media_state, media_attempts, media_error FROM messages
     WHERE media_state IN ('failed', 'corrupt') ORDER BY id
    """
)


@dataclass(frozen=True)
class FailedJob:
    id: int
    task_name: str
    queue_name: str
    args: dict[str, Any]
    attempts: int
    failed_at: datetime | None


@dataclass(frozen=True)
class GivenUpMedia:
    message_id: int
    type: str
    state: str
    attempts: int
    error: str | None


def failed_jobs() -> list[FailedJob]:
    rows = db.session.execute(FAILED_JOBS).all()
    db.session.commit()
    return [FailedJob(r.id, r.task_name, r.queue_name, dict(r.args or {}), r.attempts, r.failed_at) for r in rows]


def given_up_media() -> list[GivenUpMedia]:
    rows = db.session.execute(GIVEN_UP_MEDIA).all()
    db.session.commit()
    return [GivenUpMedia(r.id, r.type, r.media_state, r.media_attempts, r.media_error) for r in rows]


def retry_failed_jobs(job_ids: list[int] | None = None) -> int:
    """Queue each failed job again as a new job (same task and arguments) and drop the failed one."""
    retried = 0
    for job in failed_jobs():
        if job_ids is not None and job.id not in job_ids:
            continue
        if job.task_name == FETCH_MEDIA and isinstance(job.args.get("message_id"), int):
            defer_fetch(job.args["message_id"])
        else:
            web_queue().configure_task(job.task_name, queue=job.queue_name).defer(**job.args)
        db.session.execute(text("DELETE FROM procrastinate_jobs WHERE id = :id AND status = 'failed'"), {"id": job.id})
        db.session.commit()
        retried += 1
    return retried


def retry_given_up_media(message_ids: list[int] | None = None) -> int:
    """Owe the media of messages marked failed or corrupt again (attempts start over) and queue it."""
    rows = db.session.execute(
        text(
            """
            UPDATE messages SET media_state = 'pending', media_attempts = 0, media_claimed_until = NULL
             WHERE media_state IN ('failed', 'corrupt') AND (CAST(:ids AS bigint[]) IS NULL OR id = ANY(:ids))
            RETURNING id
            """
        ),
        {"ids": message_ids},
    ).all()
    db.session.commit()
    for row in rows:
        defer_fetch(row.id)
    return len(rows)

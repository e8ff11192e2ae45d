"""How many processes serve the app, as the app sees it: the warnings about per-process rate
limits and the list cache appear under gunicorn with several workers and no Redis (where they
are true), with gunicorn's final worker count, and not with one worker."""

from __future__ import annotations

import pytest

from tests.live import Gunicorn

pytestmark = pytest.mark.live

WARNINGS = ("the conversation list cache is off", "rate limits are counted in memory by each of 3 workers")


def _log_of(database_url: str, workers: int, extra_args: tuple[str, ...] = ()) -> str:
    with Gunicorn(database_url, workers=workers, extra_args=extra_args, env={"REDIS_URL": ""}) as server:
        return server.log_path.read_text()


def test_several_workers_without_redis_warn_with_gunicorns_worker_count(committed_db):
    log = _log_of(committed_db, workers=2, extra_args=("--preload", "--workers", "3"))
    assert all(warning in log for warning in WARNINGS), log[-2000:]


def test_one_worker_does_not_warn(committed_db):
    log = _log_of(committed_db, workers=1)
    assert "Booting worker" in log
    assert "cache is off" not in log and "counted in memory" not in log, log[-2000:]

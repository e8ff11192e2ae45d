"""gunicorn settings for Render's 512 MB instances (and the benchmarks and live tests).

Render sets GUNICORN_CMD_ARGS="--preload ..." which gunicorn applies after this file, so the
app may be imported in the master before forking: `post_fork` drops any connection the
master opened, so no PostgreSQL connection is ever shared between processes.
"""

import logging
import os
import shutil
import tempfile

from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker

# Metrics from every worker are written here and summed on /metrics (prometheus_client
# multiprocess mode). Set before the app — and prometheus_client — is imported.
_own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), f"inbox-metrics-{os.getpid()}")
)
shutil.rmtree(_metrics_dir, ignore_errors=True)  # samples of a previous run are stale
os.makedirs(_metrics_dir, exist_ok=True)

bind = f"0.0.0.0:{os.environ.get('PORT', '10000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 25  # inside Render's default 30 s shutdown delay
keepalive = 5
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
max_requests = 1000
max_requests_jitter = 100
# Render adds --access-logfile - ; its lines are then JSON like the app's own.
access_log_format = (
    '{"logger": "gunicorn.access", "remote": "%(h)s", "method": "%(m)s", "path": "%(U)s", '
    '"status": %(s)s, "bytes": "%(B)s", "duration_ms": %(M)s, "request_id": "%({x-request-id}o)s", '
    '"user_agent": "%(a)s"}'
)


def when_ready(server: Arbiter) -> None:
    from config import connection_budget

    total, limit, explain = connection_budget(os.environ)
    log = server.log or logging.getLogger("gunicorn.error")  # the arbiter's logger is set before any hook
    if total > limit:
        log.warning("database connection budget exceeded: %s > DB_MAX_CONNECTIONS=%d", explain, limit)
    else:
        log.info("database connection budget: %s (DB_MAX_CONNECTIONS=%d)", explain, limit)


def nworkers_changed(server: Arbiter, new_value: int, old_value: int | None) -> None:
    # Called with the final worker count (command-line flags applied) before the app is loaded,
    # in the master or, without --preload, in each worker: the app reads WEB_CONCURRENCY to know
    # whether several processes count rate limits and cache the list apart (config.py).
    os.environ["WEB_CONCURRENCY"] = str(new_value)


def on_exit(server: Arbiter) -> None:
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


def child_exit(server: Arbiter, worker: Worker) -> None:
    from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

    GunicornInternalPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)


def post_fork(server: Arbiter, worker: Worker) -> None:
    # Only under --preload has the master imported the app (and perhaps connected); without
    # it the worker imports the app after this hook, with no connection to drop. (Importing
    # wsgi here would also build the inbox inside workers serving another app: the benchmarks'
    # baselines run with these same settings.)
    import sys

    wsgi = sys.modules.get("wsgi")
    if wsgi is None:
        return
    from app.extensions import db

    with wsgi.app.app_context():
        db.engine.dispose(close=False)

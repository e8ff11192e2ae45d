"""gunicorn settings for Render's 512 MB instances (and the benchmarks and live tests).

Render sets GUNICORN_CMD_ARGS="--preload ..." which gunicorn applies after this file, so the
app may be imported in the master before forking: `post_fork` drops any connection the
master opened, so no PostgreSQL connection is ever shared between processes.
"""

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import MutableMapping
from typing import Any

from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger as GunicornLogger
from gunicorn.workers.base import Worker

# config.py beside this file: gunicorn applies --chdir only after reading this file.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from config import GUNICORN_MAX_REQUESTS, GUNICORN_MAX_REQUESTS_JITTER, LIVE_STREAM_PATH, live_streams_per_worker

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
# GUNICORN_THREADS threads serve requests; the inbox's live streams (app/inbox/live.py), which
# stay open while they wait, get threads of their own on top: RequestSlots (below) lets no more
# than GUNICORN_THREADS other requests run at once, so they keep their threads and pool.
request_threads = int(os.environ.get("GUNICORN_THREADS", "4"))
live_streams = live_streams_per_worker(os.environ)
threads = request_threads + live_streams
timeout = 30
graceful_timeout = 25  # inside Render's default 30 s shutdown delay
keepalive = 5
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
max_requests = GUNICORN_MAX_REQUESTS
max_requests_jitter = GUNICORN_MAX_REQUESTS_JITTER
# Render adds --access-logfile - , which on_starting (below) switches off: the app writes one
# access line per request itself (app/observability.py), so gunicorn's would be a second line
# for every request, and its formatting a few percent of a webhook delivery's CPU (measured,
# bench/RESULTS.md). GUNICORN_ACCESS_LOG=true keeps gunicorn's lines too, in this JSON form.
access_log_format = (
    '{"logger": "gunicorn.access", "remote": "%(h)s", "method": "%(m)s", "path": "%(U)s", '
    '"status": %(s)s, "bytes": "%(B)s", "duration_ms": %(M)s, "request_id": "%({x-request-id}o)s", '
    '"user_agent": "%(a)s"}'
)


# The background jobs worker (`flask --app wsgi jobs worker`, app/jobs/) runs beside the web
# workers by default, as a child of this master: on Render that keeps one web service (no
# $7/month background worker). JOBS_IN_WEB=false when it runs elsewhere (README: Media & jobs).
JOBS_WORKER_COMMAND = [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker"]
JOBS_WORKER_RESTART_SECONDS = 5
Log = logging.Logger | GunicornLogger
_jobs_worker: subprocess.Popen[bytes] | None = None
_stopping = threading.Event()


def _jobs_in_web() -> bool:
    return os.environ.get("JOBS_IN_WEB", "true").strip().lower() not in ("0", "false", "no", "off")


def _start_jobs_worker(log: Log) -> None:
    global _jobs_worker
    _jobs_worker = subprocess.Popen(JOBS_WORKER_COMMAND)
    log.info("jobs worker started (pid %d)", _jobs_worker.pid)


def _watch_jobs_worker(log: Log) -> None:
    """Start the worker again when it exits (a crash, the OOM killer) until gunicorn stops."""
    while not _stopping.wait(2):
        worker = _jobs_worker
        if worker is not None and worker.poll() is not None:
            log.warning(
                "jobs worker exited (%s); starting it again in %d s", worker.returncode, JOBS_WORKER_RESTART_SECONDS
            )
            if _stopping.wait(JOBS_WORKER_RESTART_SECONDS):
                return
            _start_jobs_worker(log)


def _stop_jobs_worker(log: Log) -> None:
    _stopping.set()
    worker = _jobs_worker
    if worker is None or worker.poll() is not None:
        return
    worker.terminate()  # Procrastinate finishes the running jobs, then exits
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        log.warning("jobs worker did not stop in 20 s; killed (its jobs are retried by the sweep)")
        worker.kill()


def on_starting(server: Arbiter) -> None:
    if not _bool_env("GUNICORN_ACCESS_LOG"):
        server.cfg.set("accesslog", None)
        if server.log is not None:
            server.log.setup(server.cfg)  # as a reload would: the workers fork with it off


def _bool_env(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def when_ready(server: Arbiter) -> None:
    from config import connection_budget

    total, limit, explain = connection_budget(os.environ)
    log = server.log or logging.getLogger("gunicorn.error")  # the arbiter's logger is set before any hook
    if total > limit:
        log.warning("database connection budget exceeded: %s > DB_MAX_CONNECTIONS=%d", explain, limit)
    else:
        log.info("database connection budget: %s (DB_MAX_CONNECTIONS=%d)", explain, limit)
    if _jobs_in_web():
        _start_jobs_worker(log)
        threading.Thread(target=_watch_jobs_worker, args=(log,), name="jobs-worker-watch", daemon=True).start()


def nworkers_changed(server: Arbiter, new_value: int, old_value: int | None) -> None:
    # Called with the final worker count (command-line flags applied) before the app is loaded,
    # in the master or, without --preload, in each worker: the app reads WEB_CONCURRENCY to know
    # whether several processes count rate limits and cache the list apart (config.py).
    os.environ["WEB_CONCURRENCY"] = str(new_value)


def on_exit(server: Arbiter) -> None:
    _stop_jobs_worker(server.log or logging.getLogger("gunicorn.error"))
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)


class RequestSlots:
    """WSGI middleware: at most `limit` requests other than live streams run at once in this
    worker, the others waiting for a slot (as they would wait for a thread if the worker had
    only GUNICORN_THREADS). A slot is held until the app returns its response: Flask has closed
    the database session by then, and the body is written as before (sendfile included)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.slots = threading.BoundedSemaphore(limit)

    def __call__(self, environ: MutableMapping[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == LIVE_STREAM_PATH:
            return self.app(environ, start_response)  # counted by the app's own stream slots
        with self.slots:
            return self.app(environ, start_response)


def post_worker_init(worker: Worker) -> None:
    # The threads beyond GUNICORN_THREADS are the streams' (fewer if --threads says otherwise).
    spare = max(0, worker.cfg.threads - request_threads)
    if spare:
        worker.wsgi = RequestSlots(worker.wsgi, min(request_threads, worker.cfg.threads))
    wsgi = sys.modules.get("wsgi")
    extensions = wsgi.app.extensions if wsgi is not None and hasattr(wsgi, "app") else {}
    listener = extensions.get("inbox_version_listener")
    if listener is not None:
        listener.current()  # connects now, not on the first poll or stream
    streams = extensions.get("live_streams")
    if streams is not None:
        streams.resize(min(streams.slots, spare))
        # gunicorn says a worker is stopping (SIGTERM, max_requests) only by this flag.
        streams.draining = lambda: not worker.alive


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

"""Prometheus metrics, served at `/metrics` by app/health.py (Bearer METRICS_TOKEN).

Under gunicorn, `gunicorn.conf.py` sets PROMETHEUS_MULTIPROC_DIR before the app is imported,
so every worker writes its samples there and any worker serves the sum
(prometheus-flask-exporter's GunicornInternalPrometheusMetrics). Without it (development,
tests) the metrics live in the process.

The four alarm signals of the capacity analysis map to these series (see
monitoring/alerts.yml): request latency of the conversation list
(`flask_http_request_duration_seconds{endpoint="api.conversations"}`), database trouble
(`inbox_db_unavailable_total`), failing webhooks (`inbox_webhook_deliveries_total`), and
memory (`inbox_process_resident_memory_bytes`).

The background jobs are measured where they live, in the queue's tables: at each scrape
`JobsCollector` counts Procrastinate's jobs by task and state and the age of the oldest job
waiting to run, so the numbers are right whichever process (gunicorn's master, a separate
worker) runs the jobs, and the same from every web worker.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import threading
import time
from collections.abc import Iterator

from flask import Flask, current_app
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_flask_exporter import PrometheusMetrics
from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import QueuePool

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
log = logging.getLogger(__name__)

WEBHOOK_DELIVERIES = Counter(
    "inbox_webhook_deliveries_total",
    "Webhook POSTs by outcome (stored, partial, duplicate, bad_signature, missing_signature, invalid_body, "
    "db_unavailable, error)",
    ["outcome"],
)
MESSAGES_INGESTED = Counter("inbox_messages_ingested_total", "Messages stored from webhooks, by type", ["type"])
STATUSES_RECEIVED = Counter("inbox_statuses_total", "Delivery statuses received from webhooks, by value", ["status"])
GRAPH_REQUESTS = Counter(
    "inbox_graph_requests_total",
    "Graph API calls by operation and result (ok, a Meta error code, timeout, unreachable, http_<status>)",
    ["operation", "result"],
)
READ_RECEIPTS = Counter(
    "inbox_read_receipts_total",
    "Marking a conversation read: the read receipt to WhatsApp was sent, failed or not needed",
    ["result"],
)
DB_UNAVAILABLE = Counter(
    "inbox_db_unavailable_total",
    "Requests answered 503 because the database was unreachable or the pool exhausted",
    ["reason"],
)
POOL_CHECKED_OUT = Gauge("inbox_db_pool_checked_out", "Database connections in use", multiprocess_mode="livesum")
POOL_OVERFLOW = Gauge("inbox_db_pool_overflow", "Connections open beyond pool_size", multiprocess_mode="livesum")
LIVE_STREAMS_OPEN = Gauge(
    "inbox_live_streams_open",
    "Inbox live streams open (server-sent events, app/inbox/live.py)",
    multiprocess_mode="livesum",
)
LIVE_STREAMS_REFUSED = Counter(
    "inbox_live_streams_refused_total",
    "Inbox live streams refused, by reason (no_slot: LIVE_STREAMS_PER_WORKER taken; no_listener): those inboxes poll",
    ["reason"],
)
for _reason in ("no_slot", "no_listener"):
    LIVE_STREAMS_REFUSED.labels(_reason)  # exported at 0 from the start, for the alert rule
MEMORY = Gauge(
    "inbox_process_resident_memory_bytes",
    "Resident memory of the serving processes (sum over live workers)",
    multiprocess_mode="livesum",
)

# The queue's task names (app/jobs/queue.py) and the states shown for each, always exported (0
# when empty) so alerts and dashboards find the series.
JOB_TASKS = ("media.fetch", "media.sweep", "media.prune")
JOB_STATES = ("queued", "running", "failed", "retried")
JOB_COUNTS = text(
    """
    SELECT task_name,
           count(*) FILTER (WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())) AS queued,
           count(*) FILTER (WHERE status = 'doing') AS running,
           count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status IN ('todo', 'doing') AND attempts > 0) AS retried
      FROM procrastinate_jobs GROUP BY task_name
    """
)
# Waiting since it was (re)queued, or since it became due when scheduled for later (a retry).
OLDEST_QUEUED = text(
    """
    SELECT coalesce(extract(epoch FROM now() - min(greatest(coalesce(j.scheduled_at, e.at), e.at))), 0)
      FROM procrastinate_jobs j
      CROSS JOIN LATERAL (SELECT max(at) AS at FROM procrastinate_events
                           WHERE job_id = j.id AND type IN ('deferred', 'deferred_for_retry', 'retried')) e
     WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
    """
)
MEDIA_PENDING = text("SELECT count(*) FROM messages WHERE media_state = 'pending'")


class JobsCollector:
    """Queue depth by task and state, the oldest queued job's age and the media still owed, read
    from PostgreSQL at scrape time (cheap: the jobs table holds only unfinished and failed jobs,
    successful ones are deleted; pending media is a partial index)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "inbox_jobs",
            "Background jobs by task and state: queued (due, waiting for a worker), running, failed "
            "(gave up: `flask --app wsgi jobs`), retried (being retried after a failure)",
            labels=["task", "state"],
        )
        oldest = GaugeMetricFamily("inbox_jobs_oldest_queued_age_seconds", "How long the oldest due job has waited")
        pending = GaugeMetricFamily("inbox_media_pending", "Inbound media not stored yet (fetch owed)")
        counts: dict[str, dict[str, int]] = {task: dict.fromkeys(JOB_STATES, 0) for task in JOB_TASKS}
        try:
            with self.engine.connect() as connection:
                for row in connection.execute(JOB_COUNTS):
                    counts[row.task_name] = {state: int(getattr(row, state)) for state in JOB_STATES}
                oldest.add_metric([], float(connection.execute(OLDEST_QUEUED).scalar_one()))
                pending.add_metric([], float(connection.execute(MEDIA_PENDING).scalar_one()))
        except SQLAlchemyError as exc:
            log.warning("job metrics unavailable: %s", exc)
            return
        for task, states in counts.items():
            for state, value in states.items():
                jobs.add_metric([task, state], value)
        yield jobs
        yield oldest
        yield pending


_exporter: PrometheusMetrics | None = None
_exporter_lock = threading.Lock()
_memory_checked = 0.0


def resident_memory_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _update_memory(force: bool = False) -> None:
    global _memory_checked
    now = time.monotonic()
    if force or now - _memory_checked > 5:
        _memory_checked = now
        MEMORY.set(resident_memory_bytes())


def _exporter_instance() -> PrometheusMetrics:
    """One exporter per process: its default request metrics can only be registered once."""
    global _exporter
    with _exporter_lock:
        if _exporter is None:
            if MULTIPROCESS:
                _exporter = GunicornInternalPrometheusMetrics.for_app_factory(path=None, group_by="endpoint")
            else:
                _exporter = PrometheusMetrics.for_app_factory(path=None, group_by="endpoint")
        return _exporter


# How often each serving process sets its pool gauges (PoolGauges).
POOL_SAMPLE_SECONDS = 2.0


class PoolGauges:
    """The pool's gauges, set every POOL_SAMPLE_SECONDS by a daemon thread of each serving
    process, so a scrape reads values at most that old and no request pays for them: set at
    every checkout and checkin, they were four writes to the metrics files per request, about
    2 % of a worker's CPU under webhook load (py-spy). The thread starts in the process that
    serves (`running()`, from a request hook: gunicorn forks its workers after --preload)."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def watch(self, engine: Engine) -> None:
        if isinstance(engine.pool, QueuePool):  # only a queue pool counts checked-out and overflow
            self.engine = engine

    def running(self) -> None:
        if self._pid == os.getpid() or self.engine is None:
            return
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, args=(self._pid,), name="pool-gauges", daemon=True).start()

    def sample(self) -> None:
        pool = self.engine.pool if self.engine is not None else None  # dispose() replaces it
        if isinstance(pool, QueuePool):
            POOL_CHECKED_OUT.set(pool.checkedout())
            POOL_OVERFLOW.set(max(0, pool.overflow()))

    def _run(self, pid: int) -> None:
        while self._pid == pid:
            self.sample()
            time.sleep(POOL_SAMPLE_SECONDS)


pool_gauges = PoolGauges()


def graph_observer(operation: str, result: str) -> None:
    GRAPH_REQUESTS.labels(operation=operation, result=result).inc()


def init_metrics(app: Flask, engine: Engine) -> None:
    exporter = _exporter_instance()
    exporter.init_app(app)
    pool_gauges.watch(engine)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobsCollector(engine))
    app.extensions["jobs_metrics"] = registry
    app.before_request(_before_request)
    _update_memory(force=True)


def _before_request() -> None:
    pool_gauges.running()
    _update_memory()


def render_metrics(accept: str | None) -> tuple[bytes, str]:
    """Every series (the request metrics and the jobs read from the queue) in the format that
    `accept` asks for (Prometheus text, or OpenMetrics), and its content type."""
    _update_memory(force=True)
    pool_gauges.sample()  # this process's own pool as it is now
    data, content_type = _exporter_instance().generate_metrics(accept)
    encoder, _ = choose_encoder(accept or "")
    jobs = encoder(current_app.extensions["jobs_metrics"])
    body = data.encode() if isinstance(data, str) else bytes(data)
    eof = b"# EOF\n"
    return (body[: -len(eof)] if body.endswith(eof) else body) + jobs, content_type

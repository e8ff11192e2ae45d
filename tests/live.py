"""Real processes for tests and benchmarks: a gunicorn serving the app, and a TCP proxy to
PostgreSQL that a test can cut and restore to make the database "go away" for the server under test."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import requests
from sqlalchemy.engine import URL, make_url

from tests import meta

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresProxy:
    """Forwards 127.0.0.1:<port> to the PostgreSQL server of `database_url` (TCP or Unix socket).

    `cut()` closes the listener and every open connection (the database "goes away");
    `restore()` listens again on the same port.
    """

    def __init__(self, database_url: str) -> None:
        self.upstream = make_url(database_url)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def url(self) -> str:
        url: URL = self.upstream.set(host="127.0.0.1", port=self.port, query={})
        return url.render_as_string(hide_password=False)

    def _connect_upstream(self) -> socket.socket:
        socket_dir = self.upstream.query.get("host")
        port = self.upstream.port or 5432
        if socket_dir:
            path = os.path.join(str(socket_dir), f".s.PGSQL.{port}")
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(path)
        else:
            upstream = socket.create_connection((self.upstream.host or "127.0.0.1", port))
        return upstream

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would not.
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._connect_upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update({client, upstream})
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


# What a test's gunicorn runs with unless told otherwise: the test secrets and short database
# timeouts, so a drill's outage shows within seconds. The benchmarks pass their own.
TEST_SERVER_ENV = {
    "SECRET_KEY": "live-test-secret",
    "WHATSAPP_APP_SECRET": meta.APP_SECRET,
    "WHATSAPP_VERIFY_TOKEN": meta.VERIFY_TOKEN,
    "DB_POOL_TIMEOUT": "2",
    "DB_CONNECT_TIMEOUT": "2",
    # The live tests and benchmarks measure the web process; the jobs worker has its own tests
    # (tests/test_media_jobs.py; tests/test_render.py starts it under gunicorn).
    "JOBS_IN_WEB": "false",
}


class Gunicorn:
    """The app under gunicorn as deployed: the repository's gunicorn.conf.py (gthread workers,
    WEB_CONCURRENCY × GUNICORN_THREADS), on its own port and without a control socket, so
    several run at once. The one launcher of the live tests and the benchmarks (bench/common.py).

    Its output goes to `log_path` (a temporary file, removed afterwards, unless given).
    """

    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 2,
        threads: int = 4,
        env: Mapping[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
        app_spec: str = "wsgi:app",
        config: str = "gunicorn.conf.py",
        base_env: Mapping[str, str] = TEST_SERVER_ENV,
        graceful_timeout: int | None = 5,
        log_path: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **base_env,
            "DATABASE_URL": database_url,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
            **(env or {}),
        }
        timeout = ("--graceful-timeout", str(graceful_timeout)) if graceful_timeout is not None else ()
        self.args = [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            config,
            "--bind",
            f"127.0.0.1:{self.port}",
            "--no-control-socket",
            *timeout,
            *extra_args,
            app_spec,
        ]
        self._own_log = log_path is None
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> str:
        """The command line as a reader would type it (with GUNICORN_CMD_ARGS when set)."""
        cmd = " ".join(["gunicorn", *self.args[3:]])
        extra = self.env.get("GUNICORN_CMD_ARGS", "")
        return f'GUNICORN_CMD_ARGS="{extra}" {cmd}' if extra else cmd

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(self.args, cwd=PROJECT_ROOT, env=self.env, stdout=log_file, stderr=log_file)
        self.spawned(self.process.pid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(requests.RequestException):  # refused, or a worker still booting
                if requests.get(self.base_url + "/healthz", timeout=5).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not answer /healthz within 60 s")

    def spawned(self, pid: int) -> None:
        """Called as soon as the master runs, before it answers (the benchmarks sample memory)."""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._own_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Gunicorn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def post_webhook(self, body: bytes, session: requests.Session | None = None) -> requests.Response:
        poster = session or requests
        return poster.post(
            self.base_url + "/webhook/whatsapp", data=body, headers=meta.signed_headers(body), timeout=30
        )


@contextlib.contextmanager
def proxied(database_url: str) -> Iterator[PostgresProxy]:
    proxy = PostgresProxy(database_url)
    proxy.restore()
    try:
        yield proxy
    finally:
        proxy.cut()

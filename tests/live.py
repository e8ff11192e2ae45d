"""Real processes for tests: a gunicorn serving the app, and a TCP proxy to PostgreSQL that a
test can cut and restore to make the database "go away" for the server under test."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
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


class Gunicorn:
    """The app under gunicorn (gthread workers), as deployed."""

    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 2,
        threads: int = 4,
        env: dict | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "live-test-secret",
            "WHATSAPP_APP_SECRET": meta.APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": meta.VERIFY_TOKEN,
            "GUNICORN_THREADS": str(threads),
            "DB_POOL_TIMEOUT": "2",
            "DB_CONNECT_TIMEOUT": "2",
            **(env or {}),
        }
        self.args = [
            sys.executable,
            "-m",
            "gunicorn",
            "--worker-class",
            "gthread",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--graceful-timeout",
            "5",
            "wsgi:app",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gunicorn:
        self.process = subprocess.Popen(
            self.args, cwd=PROJECT_ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.process.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
            try:
                if requests.get(self.base_url + "/healthz", timeout=5).status_code == 200:
                    return self
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start within 60 s")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

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

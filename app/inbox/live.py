"""`GET /inbox/events`: the inbox version pushed to an open inbox (server-sent events).

Polling costs the server a request every 2 s per open inbox even when nothing happens; issue
14 wants an idle inbox to cost nothing. So the inbox page opens this stream (static/js/app.js,
the browser's own `EventSource`) and, while it is healthy, polls only every 30 s as a safety
net: the stream sends the inbox version (app/cache.py) as soon as a bump is heard, and the page
then asks for the list and the open thread at once, as their polls would.

Each stream holds a gunicorn thread while it is open, but not one of the threads requests
need: gunicorn.conf.py starts `LIVE_STREAMS_PER_WORKER` threads more than `GUNICORN_THREADS`
and lets at most `GUNICORN_THREADS` requests other than streams run at once in a worker
(`RequestSlots` there), so requests have exactly the threads, database pool and memory they
had before, and streams take only the extra threads, here counted by `LiveStreams`. A stream
holds no database connection (the agent is loaded and the session closed before the first
byte) and no CPU while it waits: it sleeps on the worker's version listener
(app/version_listener.py `wait_newer`), woken by the bump's NOTIFY.

When there is no listener to wait on, when it cannot vouch for the version, or when every
stream slot of the worker is taken, the answer is 204 No Content (server-sent events' own "do
not reconnect"), and the page keeps polling every 2 s as before, trying the stream again after
`Retry-After` seconds: live updates never depend on the stream.

A stream ends by itself after `LIVE_STREAM_SECONDS` (the browser reconnects, and the session is
checked again), as soon as the listener stops vouching, and within a couple of
seconds of its worker stopping (a deploy, gunicorn's max_requests), so it never holds a
stopping worker up. A client that has gone (a page reloaded or closed) is noticed within the same
couple of seconds, from gunicorn's socket, and its slot given back.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Generator, Iterator

from flask import Flask, Response, current_app, request
from flask.typing import ResponseReturnValue
from flask_login import login_required

from app.api.docs import LOGIN_REDIRECT, RATE_LIMITED_PAGE, RETRY_AFTER, SESSION, documented
from app.api.docs import Response as Documented
from app.extensions import db
from app.inbox.views import bp
from app.metrics import LIVE_STREAMS_OPEN, LIVE_STREAMS_REFUSED
from app.version_listener import VersionListener
from config import LIVE_STREAM_PATH

EXTENSION = "live_streams"
# How often a waiting stream looks whether its worker is stopping (gunicorn says so only by a flag).
DRAIN_CHECK_SECONDS = 2.0
# How long the browser waits before reconnecting a stream that ended (the `retry:` field), in ms.
RECONNECT_MS = 1000
# How long a stream waits for its worker's listener to connect before it is refused.
LISTENER_WAIT_SECONDS = 2.0
# A refused stream is tried again after this long (the page polls meanwhile).
RETRY_AFTER_SECONDS = 30


class LiveStreams:
    """The stream slots of one worker process, and whether that worker is stopping."""

    def __init__(self, slots: int) -> None:
        self._lock = threading.Lock()
        self.open = 0
        self.resize(slots)
        # Set by gunicorn.conf.py in each worker: whether the worker is stopping.
        self.draining: Callable[[], bool] = lambda: False

    def resize(self, slots: int) -> None:
        """Set the number of slots; before any stream is open (gunicorn.conf.py, as a worker starts)."""
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots) if slots > 0 else None

    def take(self) -> bool:
        if self._free is None or not self._free.acquire(blocking=False):
            return False
        with self._lock:
            self.open += 1
        LIVE_STREAMS_OPEN.inc()
        return True

    def give_back(self) -> None:
        assert self._free is not None
        with self._lock:
            self.open -= 1
        LIVE_STREAMS_OPEN.dec()
        self._free.release()


def init_live(app: Flask) -> None:
    app.extensions[EXTENSION] = LiveStreams(int(app.config.get("LIVE_STREAMS_PER_WORKER") or 0))


def _gone(sock: socket.socket | None) -> bool:
    """Whether the client has closed the connection (it never sends anything on a stream)."""
    if sock is None:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False  # nothing to read: still there
    except OSError:
        return True


def event(version: int) -> bytes:
    """One server-sent event: the inbox version, also as the event id."""
    return f"id: {version}\nevent: version\ndata: {version}\n\n".encode()


UNAVAILABLE = Documented(
    "No live stream from this worker now (no version listener, one that cannot vouch for the version, "
    "or every stream slot taken, `LIVE_STREAMS_PER_WORKER`): server-sent events' way of saying \"do not "
    'reconnect". The page keeps polling and tries again after `Retry-After` seconds.',
    headers={"Retry-After": RETRY_AFTER},
)


@bp.get(LIVE_STREAM_PATH)
@documented(
    "inboxEvents",
    tag="pages",
    security=SESSION,
    responses={
        200: Documented(
            "A stream of server-sent events (`text/event-stream`): `event: version` with the inbox version as "
            "`data` and `id`, first at once, then whenever it moves and every `LIVE_HEARTBEAT_SECONDS`; "
            "it ends after `LIVE_STREAM_SECONDS` (the browser reconnects after the `retry` it was sent).",
            {"text/event-stream": {"type": "string"}},
        ),
        204: UNAVAILABLE,
        302: LOGIN_REDIRECT,
        429: RATE_LIMITED_PAGE,
    },
)
@login_required
def events() -> ResponseReturnValue:
    """The inbox version, pushed (server-sent events)

    The inbox page listens to it and asks for its fragments as soon as the version moves, so
    that an open inbox need not poll every 2 s. Holds no database connection while open.
    """
    if request.method == "HEAD":  # gunicorn would run the stream to its end to send no body
        return Response(mimetype="text/event-stream", headers={"Cache-Control": "no-store"})
    listener: VersionListener | None = current_app.extensions.get("inbox_version_listener")
    streams: LiveStreams = current_app.extensions[EXTENSION]
    # A listener still connecting (its worker just started, or `flask run`): wait for it a moment.
    version = listener.vouched(LISTENER_WAIT_SECONDS) if listener is not None else None
    if listener is None or version is None:
        return _unavailable("no_listener")
    if not streams.take():
        return _unavailable("no_slot")
    db.session.close()  # the agent is loaded: no connection is held while the stream is open
    config = current_app.config
    lifetime = float(config["LIVE_STREAM_SECONDS"])
    heartbeat = float(config["LIVE_HEARTBEAT_SECONDS"])
    # gunicorn's socket for this request: a client gone (a page reloaded, a tab closed) is noticed
    # within DRAIN_CHECK_SECONDS instead of at the next write, and its slot given back.
    sock = request.environ.get("gunicorn.socket")
    response = Response(
        _Stream(listener, streams, version, lifetime, heartbeat, sock if isinstance(sock, socket.socket) else None),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    return response


def _unavailable(reason: str) -> Response:
    LIVE_STREAMS_REFUSED.labels(reason).inc()
    response = Response(status=204)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class _Stream:
    """The events of one stream. Its slot is given back however it ends, once: run out, closed
    by the server (a client gone is seen on gunicorn's socket, else at the next write), or never
    iterated at all."""

    def __init__(
        self,
        listener: VersionListener,
        streams: LiveStreams,
        version: int,
        lifetime: float,
        heartbeat: float,
        sock: socket.socket | None = None,
    ) -> None:
        self._listener, self._streams, self._sock = listener, streams, sock
        self._version, self._lifetime, self._heartbeat = version, lifetime, heartbeat
        self._events: Generator[bytes, None, None] | None = None
        self._slot = True

    def __iter__(self) -> Iterator[bytes]:
        self._events = self._run()
        return self._events

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
        self._give_back()

    def _give_back(self) -> None:
        if self._slot:
            self._slot = False
            self._streams.give_back()

    def _run(self) -> Generator[bytes, None, None]:
        listener, streams, version, heartbeat = self._listener, self._streams, self._version, self._heartbeat
        try:
            yield f"retry: {RECONNECT_MS}\n".encode() + event(version)
            now = time.monotonic()
            ends, sent_at = now + self._lifetime, now
            while not streams.draining() and not _gone(self._sock):
                now = time.monotonic()
                if now >= ends:
                    return
                wait = min(DRAIN_CHECK_SECONDS, ends - now, max(0.0, sent_at + heartbeat - now))
                newer = listener.wait_newer(version, wait)
                if newer is None:
                    return  # the listener cannot vouch any more: the page polls until it reconnects
                if newer != version or time.monotonic() >= sent_at + heartbeat:
                    version, sent_at = newer, time.monotonic()
                    yield event(version)
        finally:
            self._give_back()

"""The inbox version in each worker's memory, kept current by PostgreSQL LISTEN/NOTIFY.

An unchanged poll (app/inbox/polls.py) would otherwise spend most of its cost on the database:
a pool checkout with its pre-ping, one read of the `inbox_version` sequence and the checkin's
reset — three round trips to learn that nothing changed. Instead each web worker keeps one
connection that LISTENs on the channel the writers NOTIFY with the new value when they bump the
sequence (app/cache.py `BUMP_INBOX`: `pg_notify` in the same autocommitted statement as the
`nextval`, so the notification leaves when the bump commits), in a daemon thread that also reads
the sequence itself every `HEARTBEAT_SECONDS`. Under load, when bumps come faster than one per
`GATHER_SECONDS`, it reads them in batches rather than waking for each one.

The value is only trusted while the listener has proven itself recently: `current()` answers
None — read the sequence as before — unless the connection has LISTENed, read the sequence after
that, and heard from the server (a notification or a heartbeat) within `TRUST_SECONDS`. A
notification lost or late can only keep a poll on an older version, which the heartbeat corrects;
the version only ever moves forward. So a bump missed costs at most one render later (the next
heartbeat), and a dead listener (a dropped connection, a database restart) sends every poll back
to the sequence until it has reconnected. The connection is opened in the worker, on first use
or as gunicorn.conf.py starts the worker (gunicorn forks after --preload: a thread started in the
master would not exist in the workers).

The inbox's live stream (app/inbox/live.py) waits on the same value (`wait_newer`): a bump
heard wakes every stream of the worker at once, and a listener that stops vouching wakes them too.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

CHANNEL = "inbox_version"
# How often the listener reads the sequence anyway, and how long its value is trusted without
# hearing from the server: a silently dead connection sends polls back to the sequence by then.
HEARTBEAT_SECONDS = 2.0
TRUST_SECONDS = 5.0
RECONNECT_SECONDS = 2.0
# Under load every delivery's bump wakes every worker's listener; read one by one, they cost
# each worker about 0.27 ms of CPU per delivery (py-spy under ingest load). So after hearing a
# bump the listener waits this long before it looks again: the first bump after a quiet spell
# is heard at once, and a burst is read in batches, at most one wake per GATHER_SECONDS.
GATHER_SECONDS = 0.1


class VersionListener:
    """One worker's LISTEN connection and the newest inbox version it knows."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], read_sql: str) -> None:
        self._connect = connect
        self._read_sql = read_sql
        self._lock = threading.Lock()
        self._moved = threading.Condition(self._lock)  # notified when the value moves or trust is lost
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._value = 0
        self._heard_at = 0.0  # time.monotonic() of the last notification or heartbeat; 0: not listening

    def current(self) -> int | None:
        """The inbox version, or None when it cannot be vouched for (read the sequence instead).

        Starts the listener in this process on first use."""
        if self._pid != os.getpid():
            self._start()
            return None
        if self._trusted():
            return self._value
        return None

    def vouched(self, timeout: float) -> int | None:
        """`current()`, waiting up to `timeout` seconds for a listener still connecting."""
        value = self.current()
        if value is not None or timeout <= 0:
            return value
        deadline = time.monotonic() + timeout
        with self._moved:
            while not self._trusted():
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._moved.wait(left)
            return self._value

    def wait_newer(self, known: int, timeout: float) -> int | None:
        """The version as soon as it is newer than `known` (at once if it already is), waiting
        at most `timeout` seconds: `known` when nothing newer came by then; None as soon as the
        listener cannot vouch for its value (the caller must not wait on it any more)."""
        deadline = time.monotonic() + timeout
        with self._moved:
            while self._pid == os.getpid() and self._trusted():
                if self._value > known:
                    return self._value
                left = deadline - time.monotonic()
                if left <= 0:
                    return known
                self._moved.wait(left)
            return None

    def _trusted(self) -> bool:
        return time.monotonic() - self._heard_at < TRUST_SECONDS

    def stop(self) -> None:
        self._stop.set()
        self._lost()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._heard_at = 0.0
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="inbox-version-listener", daemon=True)
            self._thread.start()

    def _heard(self, value: int) -> None:
        with self._lock:
            moved = value > self._value or not self._trusted()  # or trusted again
            self._value = max(self._value, value)  # a late notification never moves it back
            self._heard_at = time.monotonic()
            if moved:
                self._moved.notify_all()

    def _lost(self) -> None:
        with self._lock:
            self._heard_at = 0.0
            self._moved.notify_all()  # the streams waiting on the value stop trusting it now

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as connection:
                    self._listen(connection)
            except Exception:
                log.warning("inbox version listener disconnected; polls read the sequence", exc_info=True)
            self._lost()
            self._stop.wait(RECONNECT_SECONDS)

    def _listen(self, connection: psycopg.Connection[Any]) -> None:
        connection.execute(f"LISTEN {CHANNEL}")
        # Listening first, then the sequence: a bump between the two is heard as well.
        while not self._stop.is_set():
            row = connection.execute(self._read_sql).fetchone()
            self._heard(int(row[0]) if row else 0)
            # Sleep in select() until the server sends something or the heartbeat is due: psycopg's
            # own `notifies(timeout=…)` wakes every 0.1 s to look for Ctrl-C, which in every web
            # worker cost about 0.8 ms of CPU a second for nothing (measured, bench/RESULTS.md).
            deadline = time.monotonic() + HEARTBEAT_SECONDS
            while True:
                newest = None
                for notification in connection.notifies(timeout=0):  # what has arrived (or was kept)
                    if notification.payload.isdigit():
                        newest = max(newest or 0, int(notification.payload))
                if newest is not None:
                    self._heard(newest)
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    break
                if newest is not None:
                    # Just woken by a bump: let the next ones gather before looking again.
                    self._stop.wait(min(GATHER_SECONDS, left))
                    continue
                select.select([connection.fileno()], [], [], left)

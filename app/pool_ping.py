"""The pool's pre-ping, skipped for a connection that was in use a moment ago.

SQLAlchemy's `pool_pre_ping` sends `SELECT 1` at every checkout, so that a connection the
database dropped (a restart, a failover, an idle timeout) is replaced before a request uses it.
Under load a connection goes back to the pool and out again within milliseconds, and that ping
is one more round trip per request (one in six of a webhook delivery's) that tells nothing new.
As HikariCP does (`aliveBypassWindowMs`), a connection checked in less than
`DB_POOL_PING_IDLE_MS` (1 s) ago is handed out as it is; an older one is pinged with the
dialect's own ping, and one that fails is replaced: the checkout listener raises
`DisconnectionError`, on which the pool connects afresh (SQLAlchemy's documented pessimistic
handling). A connection that dies within the window fails its request's first statement; that
error invalidates the worker's whole pool, so the next requests reconnect (a delivery answered
503 is delivered again by Meta).
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from sqlalchemy import Engine, event, exc

_CHECKED_IN = "checked_in_at"  # in the pool record's info, which a new DBAPI connection starts empty
_installed: weakref.WeakSet[Engine] = weakref.WeakSet()


def install_idle_ping(engine: Engine, idle_seconds: float) -> None:
    """Ping `engine`'s connections at checkout when idle for `idle_seconds` or longer (the
    engine is created with `pool_pre_ping=False`; config.engine_options does so)."""
    if engine in _installed:
        return
    _installed.add(engine)
    dialect = engine.dialect

    def checkin(dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_CHECKED_IN] = time.monotonic()

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is None or time.monotonic() - checked_in < idle_seconds:
            return  # just connected, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(f"the pool's ping failed: {error}") from error

    event.listen(engine, "checkin", checkin)
    event.listen(engine, "checkout", checkout)

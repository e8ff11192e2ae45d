"""The pool's pre-ping with its idle window (app/pool_ping.py), on a real PostgreSQL: a
connection just checked in is handed out untested, an idle one is tested and replaced when the
server dropped it, and a connection dropped inside the window fails one statement, after which
the pool reconnects."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, exc, text

from app.pool_ping import install_idle_ping
from config import engine_options, pool_ping_idle_seconds

WINDOW = 0.3


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    options = engine_options({"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_PING_IDLE_MS": "300"})
    assert options["pool_pre_ping"] is False  # the window's listener pings instead
    engine = create_engine(database_url, **options)
    install_idle_ping(engine, WINDOW)
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(database_url: str, pid: int) -> None:
    killer = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with killer.connect() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    finally:
        killer.dispose()
    time.sleep(0.05)  # the backend is gone before the next checkout


def test_settings_choose_the_window_or_sqlalchemys_own_ping():
    assert pool_ping_idle_seconds({}) == 1.0
    assert engine_options({})["pool_pre_ping"] is False
    assert pool_ping_idle_seconds({"DB_POOL_PING_IDLE_MS": "0"}) is None
    assert engine_options({"DB_POOL_PING_IDLE_MS": "0"})["pool_pre_ping"] is True  # every checkout
    assert pool_ping_idle_seconds({"DB_POOL_PRE_PING": "false"}) is None
    assert engine_options({"DB_POOL_PRE_PING": "false"})["pool_pre_ping"] is False  # none at all


def test_an_idle_connection_the_server_dropped_is_replaced_at_checkout(engine, database_url):
    first = _backend_pid(engine)
    _terminate(database_url, first)
    time.sleep(WINDOW + 0.1)
    second = _backend_pid(engine)  # pinged, found dead, replaced: no error
    assert second != first


def test_inside_the_window_no_ping_is_sent_so_a_dropped_connection_fails_once(engine, database_url):
    first = _backend_pid(engine)
    _terminate(database_url, first)
    # Checked in moments ago: handed out untested, so its first statement meets the closed
    # connection (with a ping it would have been replaced, as in the test above).
    with pytest.raises(exc.OperationalError) as raised, engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    assert raised.value.connection_invalidated
    assert _backend_pid(engine) != first  # the pool connected again

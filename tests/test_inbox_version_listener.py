"""The inbox version listener (app/version_listener.py) on committed data: an unchanged poll
queries nothing, and a delivery committed elsewhere still renders at the next poll. Apart from
tests/test_inbox_polls.py: its polls run in a rolled-back transaction, whose NOTIFY never leaves."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from flask import Flask
from sqlalchemy import Engine, event, make_url, select

from app import create_app
from app.cache import BUMP_INBOX_SQL, READ_INBOX_SQL
from app.extensions import db
from app.models import Conversation
from app.services import agents as agent_service
from app.version_listener import VersionListener
from tests import meta
from tests.conftest import TEST_CONFIG, WebhookPoster
from tests.test_inbox_polls import CUSTOMER, Inbox
from tests.test_pages import login


def _listening_app(database_url: str, **config: Any) -> Flask:
    listening = create_app(
        {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "INBOX_VERSION_LISTEN": True, **config}
    )
    with listening.app_context():
        agent_service.create_agent("lea@example.com", "Lea", "correct horse battery", role="admin")
    return listening


def _wait_for_listener(listening: Flask) -> None:
    listener = listening.extensions["inbox_version_listener"]
    deadline = time.monotonic() + 10
    while listener.current() is None:
        assert time.monotonic() < deadline, "the listener did not connect"
        time.sleep(0.05)


@contextmanager
def _listening_inbox(database_url: str) -> Iterator[tuple[Flask, VersionListener, Inbox, Engine]]:
    """A listening app with one conversation ("uno"), its logged-in browser's polls, and its engine."""
    listening = _listening_app(database_url)
    listener = listening.extensions["inbox_version_listener"]
    try:
        browser = listening.test_client()
        login(browser, "lea@example.com")
        WebhookPoster(browser)(
            meta.delivery(meta.value(messages=[meta.message(sender=CUSTOMER, content={"body": "uno"})]))
        )
        with listening.app_context():
            conversation_id = db.session.execute(select(Conversation.id)).scalar_one()
            engine = db.engine
        _wait_for_listener(listening)
        yield listening, listener, Inbox(browser, conversation_id), engine
    finally:
        listener.stop()


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on `engine` meanwhile."""
    statements: list[str] = []
    record = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_with_the_listener_an_unchanged_poll_queries_nothing_and_news_still_renders(committed_db):  # type: ignore[no-untyped-def]
    with _listening_inbox(committed_db) as (listening, _, inbox, engine):
        for which in ("list", "thread"):
            inbox.poll(which)
        with _statements(engine) as statements:
            for which in ("list", "thread"):
                assert inbox.poll(which).status_code == 304
        assert statements == []  # not the agent, not the version, not even a pool checkout
        # A delivery committed by another worker: its NOTIFY reaches this worker's listener.
        WebhookPoster(listening.test_client())(
            meta.delivery(meta.value(messages=[meta.message(sender=CUSTOMER, content={"body": "una novedad"})]))
        )
        deadline = time.monotonic() + 2
        while (polled := inbox.poll("list")).status_code == 304:
            assert time.monotonic() < deadline, "the bump was not heard"
            time.sleep(0.02)
        assert "una novedad" in polled.text
        assert "una novedad" in inbox.poll("thread").text


def test_a_poll_sent_with_a_pushed_version_its_listener_has_not_heard_reads_the_sequence(  # type: ignore[no-untyped-def]
    committed_db, monkeypatch
):
    """The live stream of one worker pushed a version the listener of the worker answering the
    poll has not heard yet (two workers hear a bump a moment apart): with the version the page
    sends (`X-Inbox-Version`), that worker reads the sequence and renders the news, instead of a
    304 under its older version after which the page would ask nothing more for 30 s."""
    from app import version_listener

    monkeypatch.setattr(version_listener, "HEARTBEAT_SECONDS", 60.0)  # the listener reads nothing by itself
    with _listening_inbox(committed_db) as (_, listener, inbox, engine):
        deadline = time.monotonic() + 2
        while listener.current() != _sequence(engine):  # the delivery's bump heard
            assert time.monotonic() < deadline, "the delivery's bump was not heard"
            time.sleep(0.02)
        heard = listener.current()
        etags = {which: inbox.poll(which).headers["ETag"] for which in ("list", "thread")}
        # A write whose bump this worker's listener does not hear (no NOTIFY): as if still on its way.
        conninfo = make_url(committed_db).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute("UPDATE contacts SET display_name = 'Nombre nuevo'")
            row = connection.execute("SELECT nextval('inbox_version')").fetchone()
        assert row is not None
        pushed = int(row[0])
        assert listener.current() == heard < pushed

        def poll(which: str, version: int | str | None) -> Any:
            headers = {"HX-Request": "true", "HX-Trigger": which, "If-None-Match": etags[which]}
            if version is not None:
                headers["X-Inbox-Version"] = str(version)
            return inbox.client.get(inbox.urls[which], headers=headers)

        with _statements(engine) as statements:
            for which in ("list", "thread"):
                # Without it (or with a version the listener knows), the listener's older version: a 304, no query.
                assert poll(which, None).status_code == 304
                assert poll(which, heard).status_code == 304
        assert statements == []
        for bad in ("", "x1", "-3", "1" * 40):  # not a version: ignored, as if none were sent
            assert poll("list", bad).status_code == 304, bad
        for which in ("list", "thread"):
            news = poll(which, pushed)
            assert news.status_code == 200 and "Nombre nuevo" in news.text, which
            assert news.headers["ETag"] != etags[which]


class _CountingListener(VersionListener):
    """The listener, counting how often it took in a value (a wake, or a heartbeat's read)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.takes = 0

    def _heard(self, value: int) -> None:
        self.takes += 1
        super()._heard(value)


def test_the_listener_hears_a_lone_bump_at_once_and_reads_a_burst_in_batches(committed_db: str) -> None:
    conninfo = make_url(committed_db).set(drivername="postgresql").render_as_string(hide_password=False)
    listener = _CountingListener(lambda: psycopg.connect(conninfo, autocommit=True), READ_INBOX_SQL)
    with psycopg.connect(conninfo, autocommit=True) as writer:
        try:
            listener.current()
            deadline = time.monotonic() + 10
            while (known := listener.current()) is None:
                assert time.monotonic() < deadline, "the listener did not connect"
                time.sleep(0.02)
            time.sleep(0.3)  # a quiet spell
            writer.execute(BUMP_INBOX_SQL)
            started = time.monotonic()
            heard = listener.wait_newer(known, 2.0)
            assert heard is not None and heard > known
            assert time.monotonic() - started < 1.0  # no gathering before the first bump of a spell
            # A burst: 100 bumps, one every 5 ms, each its own NOTIFY.
            takes_before = listener.takes
            for _ in range(100):
                writer.execute(BUMP_INBOX_SQL)
                time.sleep(0.005)
            newest = writer.execute(READ_INBOX_SQL).fetchone()
            assert newest is not None
            deadline = time.monotonic() + 2
            while listener.current() != newest[0]:
                assert time.monotonic() < deadline, "the burst's last bump was not heard"
                time.sleep(0.02)
            # Read one by one that is a hundred takes; gathered, one per GATHER_SECONDS (and a heartbeat).
            assert listener.takes - takes_before <= 20
        finally:
            listener.stop()


def test_the_first_bump_of_a_new_sequence_moves_the_version(committed_db: str) -> None:
    conninfo = make_url(committed_db).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        kept = connection.execute("SELECT last_value FROM inbox_version").fetchone()
        assert kept is not None
        connection.execute("ALTER SEQUENCE inbox_version RESTART")  # as the migration left it
        try:
            before = connection.execute(READ_INBOX_SQL).fetchone()
            connection.execute(BUMP_INBOX_SQL)
            after = connection.execute(READ_INBOX_SQL).fetchone()
            assert before is not None and after is not None
            assert after[0] > before[0]
        finally:  # versions only move forward for the tests after this one
            connection.execute("SELECT setval('inbox_version', %s)", (kept[0] + 1,))


def _sequence(engine: Any) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql(READ_INBOX_SQL).scalar_one())


def _settled(bumps: Any, engine: Any) -> int:
    """The version once the bumps' thread has nothing left to do."""
    time.sleep(2 * bumps.GATHER_SECONDS)
    deadline = time.monotonic() + 5
    while bumps._wanted.is_set():
        assert time.monotonic() < deadline, "the bumps never settled"
        time.sleep(0.01)
    time.sleep(0.1)  # a bump that had started is done
    return _sequence(engine)


def test_a_burst_of_commits_is_bumped_once_and_none_after_a_bump_starts_is_missed(committed_db):
    """Deliveries' bumps join one bump per burst (app/cache.py CoalescedBumps): a hundred
    commits asking at once cost a few nextvals, not a hundred, and a commit that asks after a
    bump has run still gets one of its own."""
    from sqlalchemy import create_engine

    from app.cache import CoalescedBumps

    engine = create_engine(committed_db)
    bumps = CoalescedBumps()
    try:
        before = _sequence(engine)
        for _ in range(100):
            bumps.request(engine)
        burst = _settled(bumps, engine)
        assert before < burst <= before + 3  # one bump, two if the burst straddled a gather
        assert bumps.bumps == burst - before

        bumps.request(engine)  # after the burst's bump: not covered by it
        assert _settled(bumps, engine) == burst + 1
    finally:
        engine.dispose()


def test_a_webhook_delivery_bumps_the_version_after_its_commit(committed_db):
    """Through the app: a delivery's commit moves the inbox version (its bump joins the
    coalesced ones) within the gather window, and a duplicate delivery moves nothing."""
    from app.cache import coalesced_bumps

    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": committed_db})
    body = meta.encode(meta.delivery(meta.value(messages=[meta.message()])))
    with app.app_context():
        before = _sequence(db.engine)
        client = app.test_client()
        response = client.post("/webhook/whatsapp", data=body, headers=meta.signed_headers(body))
        assert response.status_code == 200 and response.json["messages_stored"] == 1
        moved = _settled(coalesced_bumps, db.engine)
        assert moved > before
        again = client.post("/webhook/whatsapp", data=body, headers=meta.signed_headers(body))
        assert again.json["outcome"] == "duplicate"
        assert _settled(coalesced_bumps, db.engine) == moved
        db.engine.dispose()

"""The inbox version listener (app/version_listener.py) on committed data: an unchanged poll
queries nothing, and a delivery committed elsewhere still renders at the next poll. Apart from
tests/test_inbox_polls.py: its polls run in a rolled-back transaction, whose NOTIFY never leaves."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from sqlalchemy import event, select

from app import create_app
from app.extensions import db
from app.models import Conversation
from app.services import agents as agent_service
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


def test_with_the_listener_an_unchanged_poll_queries_nothing_and_news_still_renders(committed_db):  # type: ignore[no-untyped-def]
    listening = _listening_app(committed_db)
    listener = listening.extensions["inbox_version_listener"]
    try:
        browser = listening.test_client()
        login(browser, "lea@example.com")
        WebhookPoster(browser)(
            meta.delivery(meta.value(messages=[meta.message(sender=CUSTOMER, content={"body": "uno"})]))
        )
        with listening.app_context():
            conversation_id = db.session.execute(select(Conversation.id)).scalar_one()
        _wait_for_listener(listening)
        inbox = Inbox(browser, conversation_id)
        for which in ("list", "thread"):
            inbox.poll(which)
        statements: list[str] = []
        with listening.app_context():
            engine = db.engine
        record = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
        event.listen(engine, "before_cursor_execute", record)
        try:
            for which in ("list", "thread"):
                assert inbox.poll(which).status_code == 304
        finally:
            event.remove(engine, "before_cursor_execute", record)
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
    finally:
        listener.stop()

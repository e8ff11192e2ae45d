"""Test fixtures on a real PostgreSQL.

The database is the embedded PostgreSQL (under instance/pg-test) unless TEST_DATABASE_URL
names another server. It is recreated and migrated once per run with Alembic; each test runs
inside a transaction that is rolled back (SQLAlchemy's "joining a session into an external
transaction" recipe, savepoint mode), so tests are fast and isolated. Tests that need
committed data seen by another process (a live gunicorn) use `committed_db` instead and
leave the tables empty.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages import mofile, pofile
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from flask_sqlalchemy.session import _app_ctx_id
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import scoped_session, sessionmaker

from app import create_app
from app.embedded_db import create_database, drop_database, embedded_server_url
from app.extensions import db
from app.models import Agent, MessageTemplate
from app.models import agents as agent_models
from app.ratelimits import rate_limiter
from app.services import agents as agent_service
from app.whatsapp.rules import template_placeholders
from config import normalise_database_url
from tests import fake_graph, meta

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures" / "meta-webhooks"
# Passwords are hashed and checked hundreds of times: a cheap method (production keeps scrypt).
agent_models.PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
# One database per test run, so runs in parallel (two checkouts, a helper) never collide.
TEST_DATABASE = f"inbox_test_{os.getpid()}"
TABLES = (
    "messages, conversations, contacts, business_numbers, status_events, webhook_deliveries, api_tokens, agents, "
    "report_hours"
)


def compile_catalogues(translations: Path = PROJECT_ROOT / "translations") -> list[Path]:
    """Compile every messages.po whose .mo is missing or older (as `make` does with pybabel);
    the .mo files are not in git, so plain `pytest` on a fresh checkout needs this."""
    compiled = []
    for po_path in sorted(translations.glob("*/LC_MESSAGES/messages.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po:
            catalog = pofile.read_po(po, locale=po_path.parent.parent.name)
        # Written aside and renamed: several xdist workers may compile at once.
        fd, tmp = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.tmp")
        with os.fdopen(fd, "wb") as mo:
            mofile.write_mo(mo, catalog, use_fuzzy=True)
        os.replace(tmp, mo_path)
        compiled.append(mo_path)
    return compiled


def pytest_configure(config: pytest.Config) -> None:
    compile_catalogues()


def _admin_url() -> str:
    configured = os.environ.get("TEST_DATABASE_URL", "").strip()
    if configured:
        # A fresh database beside the one named, so nothing of the user's is touched.
        url = make_url(normalise_database_url(configured))
        return url.set(database=url.database or "postgres").render_as_string(hide_password=False)
    return embedded_server_url(PROJECT_ROOT / "instance" / "pg-test", "postgres")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    admin = _admin_url()
    create_database(admin, TEST_DATABASE, drop_first=True)
    yield make_url(admin).set(database=TEST_DATABASE).render_as_string(hide_password=False)
    drop_database(admin, TEST_DATABASE)


TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key",
    "WHATSAPP_APP_SECRET": meta.APP_SECRET,
    "WHATSAPP_VERIFY_TOKEN": meta.VERIFY_TOKEN,
    "WHATSAPP_PHONE_NUMBER_ID": meta.PHONE_NUMBER_ID,
    "WHATSAPP_BUSINESS_ACCOUNT_ID": meta.WABA_ID,
    "WHATSAPP_ACCESS_TOKEN": fake_graph.ACCESS_TOKEN,
    "GRAPH_READ_TIMEOUT": 0.5,
    "GRAPH_RETRY_BACKOFF": 0.01,
    # The suite makes hundreds of deliberate 401s from 127.0.0.1; the tests of this budget set their own.
    "RATELIMIT_API_AUTH_FAILURES": "100000 per minute",
    "WHATSAPP_MEDIA_HOSTS": ("http://127.0.0.1",),  # the fake Graph server serves the downloads too
    # A test's writes are rolled back, so their NOTIFY never leaves: polls read the sequence
    # (tests/test_inbox_polls.py starts a listener of its own on committed data).
    "INBOX_VERSION_LISTEN": False,
}


@pytest.fixture(scope="session")
def graph_server() -> Iterator[fake_graph.FakeGraph]:
    server = fake_graph.FakeGraph(timeout_seconds=1.5)
    yield server
    server.close()


@pytest.fixture
def graph(graph_server: fake_graph.FakeGraph) -> Iterator[fake_graph.FakeGraph]:
    """The fake Graph API, emptied of recorded requests and scripts for each test."""
    graph_server.reset()
    yield graph_server
    graph_server.reset()


@pytest.fixture(scope="session")
def app(database_url: str, graph_server: fake_graph.FakeGraph) -> Iterator[Flask]:
    app = create_app(
        {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "WHATSAPP_GRAPH_URL": graph_server.base_url}
    )
    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield app


def store_approved_template(name: str, components: list, language: str = "es") -> MessageTemplate:
    """An APPROVED template as `templates sync` would store it, committed in the test's transaction."""
    template = MessageTemplate(
        name=name,
        language=language,
        status="APPROVED",
        category="UTILITY",
        components=components,
        placeholders=template_placeholders(components),
    )
    db.session.add(template)
    db.session.commit()
    return template


@pytest.fixture(autouse=True)
def _fresh_rate_limits(app: Flask) -> None:
    """Rate-limit counters and the list cache (in memory in tests) start empty for every test."""
    with app.app_context():
        rate_limiter().reset()
        app.extensions["list_cache"].clear()


@pytest.fixture
def db_session(app: Flask) -> Iterator[object]:
    """Every session in the test (including those of requests) joins one rolled-back transaction."""
    with app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        original = db.session
        # A plain Session: Flask-SQLAlchemy's own Session.get_bind() would pick the engine
        # and escape the outer transaction.
        db.session = scoped_session(
            sessionmaker(bind=connection, join_transaction_mode="create_savepoint"), scopefunc=_app_ctx_id
        )
        try:
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            transaction.rollback()
            connection.close()


@pytest.fixture
def client(app: Flask, db_session: object) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask, db_session: object):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


@pytest.fixture
def agent(db_session: object) -> Agent:
    return agent_service.create_agent("ana@example.com", "Ana Agente", "correct horse battery", role="admin")


@pytest.fixture
def other_agent(db_session: object) -> Agent:
    return agent_service.create_agent("beto@example.com", "Beto", "correct horse battery 2")


@pytest.fixture
def token(agent: Agent) -> str:
    return agent_service.create_token(agent.email)


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class WebhookPoster:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def __call__(self, payload: object, *, secret: str = meta.APP_SECRET):  # type: ignore[no-untyped-def]
        body = payload if isinstance(payload, bytes) else meta.encode(payload)
        return self.client.post("/webhook/whatsapp", data=body, headers=meta.signed_headers(body, secret))


@pytest.fixture
def post_webhook(client: FlaskClient) -> WebhookPoster:
    return WebhookPoster(client)


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
            self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_statements(app: Flask, db_session: object):  # type: ignore[no-untyped-def]
    """Count SQL statements sent to PostgreSQL while the block runs (savepoints excluded)."""

    class _Context:
        def __enter__(self) -> StatementCounter:
            self.counter = StatementCounter()
            event.listen(db.engine, "before_cursor_execute", self.counter)
            return self.counter

        def __exit__(self, *exc: object) -> None:
            event.remove(db.engine, "before_cursor_execute", self.counter)

    with app.app_context():
        yield _Context


@pytest.fixture
def committed_db(app: Flask, database_url: str) -> Iterator[str]:
    """Committed data for tests that use another process; the tables are emptied afterwards."""
    engine = create_engine(database_url)

    def truncate() -> None:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))

    truncate()
    try:
        yield database_url
    finally:
        truncate()
        engine.dispose()


@pytest.fixture
def fresh_app_context(app: Flask, db_session: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each request gets its own app context, as under gunicorn.

    Otherwise every request of a test runs in the test's app context and shares its `g`: an
    agent logged in (Flask-Login caches the user in `g`) by one request stays logged in for
    the next, even one from another client without a cookie. Auth tests need this fixture.
    """
    wsgi_app = app.wsgi_app

    def in_own_app_context(environ, start_response):  # type: ignore[no-untyped-def]
        with app.app_context():
            return wsgi_app(environ, start_response)

    monkeypatch.setattr(app, "wsgi_app", in_own_app_context)

"""A short cache for the conversation list (Flask-Caching), invalidated by every write.

Every transaction that writes conversations, messages or labels bumps a "list version" when it
commits — whatever the code path, because the hook is on the SQLAlchemy session. Cache keys
carry the version, so the first read after a write misses, and a TTL of a few seconds bounds
staleness even if a bump were lost. An agent therefore never sees a list older than their own
last action, nor older than `LIST_CACHE_SECONDS`.

The version must be shared by every process that serves the list: with Redis (`REDIS_URL`) it
is; without Redis the cache is per process, so it is only used when one worker serves
(`WEB_CONCURRENCY=1`, development, tests) and switched off otherwise. If Redis fails, reads go
to the database and it is logged; nothing fails because of the cache.

The same hooks keep the *inbox version* the inbox's polls are answered 304 from
(app/inbox/views.py): the PostgreSQL sequence `inbox_version`, which every process sees without
Redis, bumped with nextval once the writing transaction has committed, by one autocommitted
statement on the connection that committed it, before it goes back to the pool (no second
connection, no checkout, no lock: a sequence is outside transactions); a webhook delivery's
joins those of the deliveries around it (`CoalescedBumps`: one bump per burst). A reader reads
the version *before* the data, so a bump it missed can only make it render once more, never
answer 304 over data it has not shown. With Redis the inbox reads the Redis version instead
(one GET), bumped in the same place. Every table counts except the few no page shows
(`_UNSEEN_TABLES`), and raw SQL that writes counts whatever its table: a spare bump costs one
render, a missed one a stale inbox.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from typing import Any

import psycopg
from flask import Flask, current_app
from flask_caching import Cache
from sqlalchemy import Connection, Engine, event, make_url, text
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction
from sqlalchemy.sql.elements import TextClause

from app.extensions import DbSession
from app.models import Conversation, ConversationLabel, Label, Message
from app.version_listener import CHANNEL as LISTEN_CHANNEL
from app.version_listener import VersionListener

log = logging.getLogger(__name__)

VERSION_KEY = "conversation-list-version"
# Labels too: the list shows each conversation's labels, and a renamed label changes every row.
_WATCHED_CLASSES = (Conversation, Message, ConversationLabel, Label)
_WATCHED_TABLES = frozenset(cls.__tablename__ for cls in _WATCHED_CLASSES)
# Written on requests or deliveries no page shows (a token's last use, a delivery's receipt, an
# idempotency key): alone they bump no inbox version, so a duplicate delivery re-renders nothing.
_UNSEEN_TABLES = frozenset({"api_tokens", "idempotency_keys", "webhook_deliveries"})
_WRITING_SQL = ("INSERT", "UPDATE", "DELETE", "WITH")
INBOX_SEQUENCE = "inbox_version"
# The new value is NOTIFYed in the same statement: each web worker's listener hears it when the
# bump commits (app/version_listener.py).
BUMP_INBOX_SQL = f"SELECT pg_notify('{LISTEN_CHANNEL}', nextval('{INBOX_SEQUENCE}')::text)"
BUMP_INBOX = text(BUMP_INBOX_SQL)
# A new sequence's last_value is already 1 before any nextval (is_called false), and its first
# nextval answers 1 as well: read 0 until then, or the first bump would not move the version.
READ_INBOX_SQL = f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {INBOX_SEQUENCE}"


def init_cache(app: Flask, session_class: type[Session] | Any) -> Cache:
    config = app.config
    seconds = int(config.get("LIST_CACHE_SECONDS", 5))
    redis_url = config.get("REDIS_URL")
    settings: dict[str, Any]
    if seconds <= 0:
        settings = {"CACHE_TYPE": "NullCache"}
    elif redis_url:
        settings = {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": redis_url,
            "CACHE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    elif int(config.get("WEB_CONCURRENCY") or 1) == 1 or app.testing or app.debug:
        settings = {"CACHE_TYPE": "SimpleCache"}
    else:
        log.warning("the conversation list cache is off: several workers need REDIS_URL to share it")
        settings = {"CACHE_TYPE": "NullCache"}
    cache = Cache(
        config={
            **settings,
            "CACHE_DEFAULT_TIMEOUT": seconds,
            "CACHE_KEY_PREFIX": "inbox:",
            "CACHE_NO_NULL_WARNING": True,
        }
    )
    cache.init_app(app)
    app.extensions["list_cache"] = cache
    app.extensions["inbox_version_in_redis"] = settings["CACHE_TYPE"] == "RedisCache"
    if config.get("INBOX_VERSION_LISTEN"):
        app.extensions["inbox_version_listener"] = VersionListener(_listener_connection(app), READ_INBOX_SQL)
    _watch_writes(session_class)
    return cache


def _listener_connection(app: Flask) -> Any:
    """How the listener connects: the app's database, its own autocommitted connection (outside
    the pool, so it never takes a request's slot; counted in config.connection_budget)."""
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).get("connect_args", {})
    name = f"{options.get('application_name', 'whatsapp-inbox')}-listen"

    def connect() -> psycopg.Connection[Any]:
        return psycopg.connect(
            conninfo,
            autocommit=True,
            application_name=name,
            connect_timeout=options.get("connect_timeout", 5),
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=2,
        )

    return connect


def _cache() -> Cache:
    return current_app.extensions["list_cache"]


# --- invalidation ------------------------------------------------------------------------------

_registered: set[int] = set()


def _watch_writes(session_class: Any) -> None:
    if id(session_class) in _registered:
        return
    _registered.add(id(session_class))
    event.listen(session_class, "do_orm_execute", _note_statement)
    event.listen(session_class, "after_flush", _note_flush)
    event.listen(session_class, "after_begin", _after_begin)
    event.listen(session_class, "after_commit", _after_commit)
    event.listen(session_class, "after_rollback", _after_rollback)
    event.listen(session_class, "after_transaction_end", _after_transaction_end)


def note_write(session: DbSession, table: str | None) -> None:
    """Count a write to `table` run on the session's Connection, which the ORM hook below never
    sees (the webhook's hot path, app/services/ingest.py): the same rule as for the session's own."""
    if table in _WATCHED_TABLES:
        session.info["list_dirty"] = True
    if table not in _UNSEEN_TABLES:
        session.info["inbox_dirty"] = True


def _note_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        note_write(state.session, getattr(getattr(state.statement, "table", None), "name", None))
    elif isinstance(state.statement, TextClause) and state.statement.text.lstrip()[:6].upper().startswith(_WRITING_SQL):
        state.session.info["list_dirty"] = state.session.info["inbox_dirty"] = True


def _note_flush(session: Session, flush_context: UOWTransaction) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, _WATCHED_CLASSES):
            session.info["list_dirty"] = True
        if getattr(getattr(obj, "__table__", None), "name", None) not in _UNSEEN_TABLES:
            session.info["inbox_dirty"] = True


def _after_begin(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    session.info["connection"] = connection  # the one the inbox version is bumped on, after commit


def _after_commit(session: Session) -> None:
    list_dirty = session.info.pop("list_dirty", False)
    connection = session.info.pop("connection", None)
    later = session.info.pop("inbox_bump_later", False)
    if session.info.pop("inbox_dirty", False):
        list_dirty = True  # with Redis, the inbox reads the list's version: bump it too
        if connection is not None and not connection.in_transaction():
            if later:
                coalesced_bumps.request(connection.engine)
            else:
                bump_inbox_version(connection)  # committed, and the connection not yet back in the pool
        else:
            session.info["inbox_bump"] = True  # joined to an outer transaction (the tests)
    if list_dirty:
        bump_version()


def _after_rollback(session: Session) -> None:
    session.info.pop("list_dirty", None)
    session.info.pop("inbox_dirty", None)
    session.info.pop("connection", None)
    session.info.pop("inbox_bump_later", None)


def bump_inbox_later(session: DbSession) -> None:
    """Have this transaction's inbox bump, if it writes anything a page shows, join the process's
    coalesced bumps (`CoalescedBumps`) instead of costing a round trip of its own after the
    commit: the webhook's deliveries, which come in bursts and which no agent waits on."""
    session.info["inbox_bump_later"] = True


class CoalescedBumps:
    """The inbox version bumped once for a burst of commits (a group commit), by a thread of
    each process that asks for it.

    A commit asks (`request`) once it has committed; the thread waits `GATHER_SECONDS` for the
    commits that follow, then runs one nextval + NOTIFY for all of them on a pooled connection.
    Every commit that asked before the bump started is covered by it (the bump runs after the
    commit, as the immediate one does), and one that asks while it runs sets the flag again, so
    another bump follows: none is missed. Under load this takes a round trip off every delivery
    but one in a burst (at 150 deliveries/s, 50 ms gather about eight); an open inbox hears of
    a new message up to GATHER_SECONDS later."""

    GATHER_SECONDS = 0.05

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._engine: Engine | None = None
        self._pid: int | None = None
        self.bumps = 0  # bumps run by this process (tests)

    def request(self, engine: Engine) -> None:
        if self._pid != os.getpid():  # first use in this process (gunicorn forks the workers)
            with self._lock:
                if self._pid != os.getpid():
                    self._wanted = threading.Event()
                    threading.Thread(target=self._run, name="inbox-version-bumps", daemon=True).start()
                    self._pid = os.getpid()
        self._engine = engine
        self._wanted.set()

    def _run(self) -> None:
        wanted = self._wanted
        while True:
            wanted.wait()
            time.sleep(self.GATHER_SECONDS)
            wanted.clear()  # a commit asking from here on gets a bump of its own
            engine = self._engine
            if engine is None:
                continue
            try:
                pooled = engine.raw_connection()
                try:
                    _bump_on(pooled.dbapi_connection)
                finally:
                    pooled.close()  # back to the pool
                self.bumps += 1
            except Exception:  # the data is committed; the minute in the pages' key bounds the staleness
                log.warning("could not bump the inbox version", exc_info=True)


coalesced_bumps = CoalescedBumps()


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None and session.info.pop("inbox_bump", False):
        _bump_joined(session)


def bump_inbox_version(connection: Connection) -> None:
    """nextval on the inbox version, after a commit that wrote what it shows: one statement in
    autocommit on the DBAPI connection the commit ran on (idle between transactions), so it
    costs one round trip and no pool checkout, ping or transaction of its own."""
    try:
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is None:
            raise RuntimeError("the connection was invalidated")
        _bump_on(dbapi_connection)
    except Exception:  # the data is committed; the minute in the pages' key bounds the staleness
        log.warning("could not bump the inbox version", exc_info=True)


def _bump_on(dbapi_connection: Any) -> None:
    """The bump, autocommitted, on a DBAPI connection outside any transaction."""
    dbapi_connection.autocommit = True
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(BUMP_INBOX_SQL)
        finally:
            cursor.close()
    finally:
        dbapi_connection.autocommit = False


def _bump_joined(session: Session) -> None:
    """The bump of a session joined to an outer transaction (the tests): on that connection, in
    that transaction; else (no connection was noted) on a connection of its own."""
    try:
        bind = session.get_bind()
        if isinstance(bind, Connection):
            bind.execute(BUMP_INBOX)
        else:
            with bind.connect() as connection:
                connection.execute(BUMP_INBOX)
                connection.commit()
    except Exception:
        log.warning("could not bump the inbox version", exc_info=True)


def bump_version() -> None:
    try:
        cache = _cache()
        if cache.cache.inc(VERSION_KEY) is None:
            cache.set(VERSION_KEY, 1, timeout=0)
    except RuntimeError:
        return  # outside an app (a script): no cache to invalidate
    except Exception:  # Redis down: readers bypass the cache too, see cached_list()
        log.warning("could not bump the conversation list version", exc_info=True)


# --- reading -----------------------------------------------------------------------------------


def inbox_version(session: DbSession, at_least: int | None = None) -> str:
    """The inbox version a poll's key starts with: the worker's listener's when it vouches for
    it (no round trip), else one Redis GET when Redis is configured, else one read of the
    sequence. Read it before the data the response is rendered from.

    `at_least`: a version the browser was pushed (the live stream of another worker may have
    heard a bump this worker's listener has not yet): a listener behind it is passed over for
    the sequence itself, which holds every committed bump, so that the answer is no 304 under a
    version older than the one that made the page ask."""
    listener: VersionListener | None = current_app.extensions.get("inbox_version_listener")
    value = listener.current() if listener is not None else None
    if value is not None:
        if at_least is None or value >= at_least:
            return f"p{value}"  # the sequence's own value: the key is the same as if read there
    elif current_app.extensions.get("inbox_version_in_redis"):
        try:
            return f"r{_cache().get(VERSION_KEY) or 0}"
        except Exception:
            log.warning("Redis unavailable; reading the inbox version from the database", exc_info=True)
    # On the session's connection but past the ORM's statement handling: this runs on every poll.
    return f"p{session.connection().exec_driver_sql(READ_INBOX_SQL).scalar_one()}"


def list_cache_key(agent_id: int, query: dict[str, Any], version: int) -> str:
    canonical = json.dumps(query, sort_keys=True, default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:24]
    return f"conversation-list:{version}:{agent_id}:{digest}"


def cached_list(agent_id: int, query: dict[str, Any], build: Any) -> dict[str, Any]:
    """The list body for this agent and query: from the cache when current, else `build()`."""
    cache = _cache()
    try:
        version = cache.get(VERSION_KEY) or 0
        key = list_cache_key(agent_id, query, version)
        body = cache.get(key)
    except Exception:
        log.warning("conversation list cache unavailable; reading the database", exc_info=True)
        return build()
    if body is not None:
        return body
    body = build()
    try:
        cache.set(key, body)
    except Exception:
        log.warning("could not store the conversation list in the cache", exc_info=True)
    return body

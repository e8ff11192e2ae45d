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
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from flask import Flask, current_app
from flask_caching import Cache
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from app.models import Conversation, ConversationLabel, Label, Message

log = logging.getLogger(__name__)

VERSION_KEY = "conversation-list-version"
# Labels too: the list shows each conversation's labels, and a renamed label changes every row.
_WATCHED_CLASSES = (Conversation, Message, ConversationLabel, Label)
_WATCHED_TABLES = frozenset(cls.__tablename__ for cls in _WATCHED_CLASSES)


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
    _watch_writes(session_class)
    return cache


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
    event.listen(session_class, "after_commit", _after_commit)
    event.listen(session_class, "after_rollback", _after_rollback)


def _note_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in _WATCHED_TABLES:
            state.session.info["list_dirty"] = True


def _note_flush(session: Session, flush_context: UOWTransaction) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, _WATCHED_CLASSES):
            session.info["list_dirty"] = True
            return


def _after_commit(session: Session) -> None:
    if session.info.pop("list_dirty", False):
        bump_version()


def _after_rollback(session: Session) -> None:
    session.info.pop("list_dirty", None)


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

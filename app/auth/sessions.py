"""Agent sessions that can be ended: a generation per agent, and an idle and an absolute lifetime.

The session stays Flask's signed cookie. At login it gets the agent's `session_generation`
and the login time; on every request the user loader (app/__init__.py) accepts it only while
the generation still matches the agent's row (the row it loads anyway: no extra query), the
login is younger than SESSION_MAX_SECONDS and the last request younger than
SESSION_IDLE_SECONDS. Bumping the generation (`Agent.end_sessions()`: logout, log out
everywhere, a password reset, deactivation, a role change) ends every copy of every cookie
issued to that agent before, in every browser and every worker at once.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from flask import Flask, Request, current_app, g, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import login_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.models import Agent

GENERATION_KEY = "_gen"
LOGIN_AT_KEY = "_login_at"
SEEN_AT_KEY = "_seen_at"
# The last-seen time is rewritten at most this often: not every poll needs a new cookie.
SEEN_AT_GRANULARITY = 60
# Preferences chosen before logging in (the login page has the language menu) survive it.
KEPT_ACROSS_LOGIN = ("lang", "tz")
FLASK_LOGIN_KEYS = ("_user_id", "_fresh", "_id", "_remember", "_remember_seconds")


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed cookie session, cheaper per request (every delivery and poll opens one):

    - its serializer is built once per set of keys, not on every request;
    - a cookie whose signature was verified once is not verified and decoded again while the
      same browser keeps sending it (a poll every 2 s): its contents and signing time are kept
      in this process, keyed by the exact cookie and the keys, and its age is still checked on
      every request, as itsdangerous checks it. A changed cookie (every write to the session
      signs a new one) is simply another entry; the oldest entries go when `VERIFIED_KEPT` are kept.
    """

    VERIFIED_KEPT = 2048

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], URLSafeTimedSerializer | None] = {}
        self._verified: dict[tuple[int, str], tuple[dict[str, Any], float]] = {}
        self._lock = threading.Lock()

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        value = request.cookies.get(self.get_cookie_name(app))
        serializer = self.get_signing_serializer(app)
        if not value or serializer is None:
            return super().open_session(app, request)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        key = (id(serializer), value)
        known = self._verified.get(key)
        if known is not None and 0 <= time.time() - known[1] <= max_age:
            return self.session_class(_copied(known[0]))  # the session is mutable; the entry is not
        try:
            data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        with self._lock:  # the request threads of this worker share the entries
            if len(self._verified) >= self.VERIFIED_KEPT:
                self._verified.pop(next(iter(self._verified)), None)
            self._verified[key] = (_copied(data), signed_at.timestamp())
        return self.session_class(data)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        serializer = self._serializers.get(keys)
        if serializer is None and keys not in self._serializers:
            serializer = self._serializers[keys] = super().get_signing_serializer(app)
        return serializer


def _copied(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a session's contents that shares nothing mutable with it: its values are
    scalars, or lists and dicts of immutable values (the flashed messages: a list of tuples)."""
    return {key: copy.copy(value) if isinstance(value, (list, dict)) else value for key, value in data.items()}


def start_session(agent: Agent) -> None:
    """Log the agent in with a fresh session (nothing of the anonymous one but its preferences)."""
    kept = {key: session[key] for key in KEPT_ACROSS_LOGIN if key in session}
    session.clear()  # the CSRF token too: one known before logging in is worth nothing after
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)  # Flask-WTF's cached copy
    session.update(kept)
    login_user(agent)
    now = int(time.time())
    session[GENERATION_KEY] = agent.session_generation
    session[LOGIN_AT_KEY] = now
    session[SEEN_AT_KEY] = now


def session_is_current(agent: Agent) -> bool:
    """Whether the session cookie of this request may still act as `agent`; refreshes last-seen."""
    return session.get(GENERATION_KEY) == agent.session_generation and session_is_live()


def session_is_live() -> bool:
    """The cookie's own checks, without the agent's row: issued by this app's login, within its
    lifetimes (absolute and idle); refreshes last-seen. An unchanged poll (app/inbox/polls.py)
    checks only these: the row's generation is covered there by the inbox version."""
    generation, login_at, seen_at = (session.get(k) for k in (GENERATION_KEY, LOGIN_AT_KEY, SEEN_AT_KEY))
    if not (isinstance(generation, int) and isinstance(login_at, int) and isinstance(seen_at, int)):
        return False  # a cookie from before sessions could be ended, or not one we issued
    now = int(time.time())
    config = current_app.config
    if now - login_at > config["SESSION_MAX_SECONDS"] or now - seen_at > config["SESSION_IDLE_SECONDS"]:
        return False
    if now - seen_at >= SEEN_AT_GRANULARITY:
        session[SEEN_AT_KEY] = now
    return True


def forget_session() -> None:
    """Drop the login a rejected cookie carried, so this browser is plainly logged out.

    Only the login: a page being rendered may already have put the session's CSRF token in
    its forms (the login form among them), which must keep working.
    """
    for key in (*FLASK_LOGIN_KEYS, GENERATION_KEY, LOGIN_AT_KEY, SEEN_AT_KEY):
        session.pop(key, None)

"""The inbox's polled fragments: their ETag key, and the 304 of an unchanged poll before anything loads.

An open, idle inbox polls the list every 2 s (static/js/app.js), and almost every poll is
unchanged; issue 14 wants that to cost next to nothing. So the two polled fragments
(`POLLED`) are decided in two request hooks, ahead of everything else the app does per request:

- `note_poll` (app-level, registered before the rate limiter) reads the inbox version —
  from the worker's memory when its LISTEN connection vouches for it (app/version_listener.py),
  else the sequence or Redis (app/cache.py) — *before* the agent's row is loaded, and, when the
  browser's ETag was issued under the same key and still holds, makes the 304 and
- answers it there, once the poll is counted on the agent's budget of unchanged polls
  (`app/ratelimits.py` `unchanged_poll_counted`: the pages' limit, counted apart with the limits
  library directly, so none of Flask-Limiter's per-request machinery runs): no agent row, no
  pool checkout, no render. Once that budget is spent, `answer_unchanged` (the inbox
  blueprint's) answers it after Flask-Limiter has counted it on the pages' budget, which ends in
  429 like any page.

The key (`poll_key`) is made of the request alone — the session's agent id and session
generation, the language and time zone the session or the browser asks for, the query string,
the deploy — and the inbox version. What the agent's row adds (their language, time zone and
notification scope, whether they are active, their current session generation) is not in it,
and need not be: every write to the row bumps the inbox version (app/cache.py counts every table a
page shows, `agents` included), so under an unchanged version the row is the one the ETag was
rendered with. That holds because the version is read before the row, also when the poll
renders: a write that commits after the read bumps the version, and the next poll renders again.
Deactivating an agent, logging out (here or everywhere), a password reset or a role change end
the agent's sessions by writing the row (app/auth/sessions.py), so the next poll under such a
cookie misses the key and goes the usual way — the user loader refuses it and the browser is
sent to the login page. The cookie's own lifetimes (idle and absolute) are checked here as the
user loader checks them, and its last-seen time refreshed the same way.

A page with the live stream (app/inbox/live.py) asks for its fragments when the stream pushes a
newer version, and sends that version with them (`X-Inbox-Version`). The stream and the poll
may be answered by different workers, whose listeners hear a bump a moment apart: a worker whose
listener is still behind the pushed version reads the sequence instead, or it would answer 304
under the older version, and the page, told nothing newer, would show the old list until the
next push or its 30 s safety-net poll.
"""

from __future__ import annotations

import hashlib
import os
import time

from flask import Flask, Response, g, request, session

from app.auth.sessions import GENERATION_KEY, session_is_live
from app.cache import inbox_version
from app.extensions import db, login_manager
from app.ratelimits import unchanged_poll_counted

POLLED = {"inbox.list_fragment": "list", "inbox.thread_fragment": "thread"}
# The version the page's live stream last pushed, sent with each poll (static/js/app.js).
PUSHED_VERSION_HEADER = "X-Inbox-Version"
LIST_POLLER = "list"  # the id of the element that polls the list (htmx sends it as HX-Trigger)
# A deploy may change the templates: its commit is in the key (Render sets RENDER_GIT_COMMIT).
_BUILD = os.environ.get("RENDER_GIT_COMMIT", "")


def init_polls(app: Flask) -> None:
    """Call before the rate limiter is set up: its check must come after `note_poll`. (The inbox
    blueprint registers `answer_unchanged`, app/inbox/views.py.)"""
    app.before_request(note_poll)


def note_poll() -> Response | None:
    """For a polled fragment: read the inbox version first, and answer 304 when it is unchanged."""
    kind = POLLED.get(request.endpoint or "")
    if kind is None or request.method != "GET":
        return None
    # before the agent's row (the module's docstring); at least the version the page was pushed
    g.inbox_version = inbox_version(db.session, at_least=pushed_version())
    if not request.if_none_match or (kind == "list" and request.headers.get("HX-Trigger") != LIST_POLLER):
        return None  # nothing to compare; or the list asked by a filter or tab (its answer moves the URL)
    agent_id = _session_agent_id()
    if agent_id is None:
        return None
    response = unchanged(poll_key(kind))
    if response is not None:
        g.agent_id = g.poll_agent_id = agent_id  # the access log's and the rate limiter's
        if unchanged_poll_counted(agent_id):
            return response  # here: ahead of Flask-Limiter and every later hook
        g.unchanged_poll = response  # the polls' budget is spent: Flask-Limiter's pages budget decides
    return None


def pushed_version() -> int | None:
    """The inbox version the live stream pushed the page before it asked (`X-Inbox-Version`),
    or None: none sent, or not a version (then it is ignored, as a poll without one)."""
    sent = request.headers.get(PUSHED_VERSION_HEADER, "")
    return int(sent) if sent.isascii() and sent.isdigit() and len(sent) <= 18 else None


def answer_unchanged() -> Response | None:
    return g.pop("unchanged_poll", None)


def _session_agent_id() -> int | None:
    """The agent a session cookie names when the user loader would take it but for the row's
    checks, which the inbox version stands for; None: let the request go the usual way."""
    user_id = session.get("_user_id")
    if not (isinstance(user_id, str) and user_id.isdigit() and isinstance(session.get(GENERATION_KEY), int)):
        return None
    # Flask-Login's session protection compares the session with the browser's address and agent
    # on every load; a session it would mark (or drop) is left to it.
    if login_manager.session_protection and session.get("_id") != login_manager._session_identifier_generator():
        return None
    if not session_is_live():
        return None
    return int(user_id)


def poll_key(kind: str) -> str:
    """The key of what a polled fragment would show, read BEFORE its data and the agent's row:
    the inbox version, the session's agent and generation, the language and time zone the session
    or the browser asks for (the agent's own choices are on their row, which the version covers),
    the query and the deploy. What time alone changes is not in it: the ETag says until when it holds."""
    version = g.get("inbox_version")
    if version is None:  # only the hook reads it; a caller outside a polled endpoint reads it here
        version = g.inbox_version = inbox_version(db.session)
    parts = (
        kind,
        version,
        session.get("_user_id"),  # the rendering poll's: login_required has accepted it
        session.get(GENERATION_KEY),
        session.get("lang"),
        session.get("tz"),
        request.headers.get("Accept-Language", ""),
        request.cookies.get("tz", ""),
        request.full_path,
        _BUILD,
    )
    return hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()


def known_etags() -> list[list[str]]:
    """The browser's ETags, each as its parts: key, holds-until (epoch seconds), body digest."""
    tags = request.headers.get("If-None-Match", "").split(",")
    return [tag.strip().removeprefix("W/").strip('"').split("-") for tag in tags]


def fragment_headers(response: Response, etag: str) -> Response:
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Vary"] = "Cookie"
    response.set_etag(etag)
    return response


def unchanged(key: str) -> Response | None:
    """304 when the browser's ETag was issued under this same key and still holds: nothing it
    shows can differ (no write since, and no text of it has changed with the time)."""
    now = time.time()
    for parts in known_etags():
        if len(parts) == 3 and parts[0] == key and parts[1].isdigit() and now < int(parts[1]):
            return fragment_headers(Response(status=304), "-".join(parts))
    return None

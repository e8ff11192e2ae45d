"""Sessions that end, client addresses behind a proxy, and the login and API throttles
(issue 10, items 1–3), in process; tests/test_live_sessions_and_limits.py checks the same over HTTP."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient

from app import create_app
from app.auth.sessions import GENERATION_KEY, LOGIN_AT_KEY, SEEN_AT_KEY
from app.extensions import db
from app.models import Agent
from app.services import agents as agent_service
from app.services.tokens import bearer_token
from config import load_config
from tests.conftest import TEST_CONFIG
from tests.test_pages import PASSWORD, csrf_token, login

pytestmark = pytest.mark.usefixtures("fresh_app_context")


def _logged_in(client: FlaskClient, email: str) -> FlaskClient:
    assert login(client, email).status_code == 302
    return client


def _age(client: FlaskClient, **seconds_ago: int) -> None:
    """Move the session's login or last-request time into the past."""
    keys = {"login": LOGIN_AT_KEY, "seen": SEEN_AT_KEY}
    with client.session_transaction() as session:
        for name, ago in seconds_ago.items():
            session[keys[name]] = int(time.time()) - ago


def _is_logged_out(client: FlaskClient) -> bool:
    page = client.get("/")
    return page.status_code == 302 and page.headers["Location"].startswith("/login")


# --- lifetimes ----------------------------------------------------------------------------------


def test_a_session_idle_longer_than_the_idle_lifetime_ends(app: Flask, client, agent):
    _logged_in(client, agent.email)
    _age(client, seen=app.config["SESSION_IDLE_SECONDS"] - 120)
    assert client.get("/").status_code == 200  # still within it; the request refreshes last-seen
    _age(client, seen=app.config["SESSION_IDLE_SECONDS"] + 1)
    assert _is_logged_out(client)
    assert client.get("/whatsapp/api/conversaciones").status_code == 401


def test_a_busy_session_still_ends_at_the_absolute_lifetime(app: Flask, client, agent):
    _logged_in(client, agent.email)
    _age(client, login=app.config["SESSION_MAX_SECONDS"] - 60)
    assert client.get("/").status_code == 200
    _age(client, login=app.config["SESSION_MAX_SECONDS"] + 1)
    assert _is_logged_out(client)


def test_requests_refresh_the_last_seen_time(client, agent):
    _logged_in(client, agent.email)
    _age(client, seen=3600)
    assert client.get("/").status_code == 200
    with client.session_transaction() as session:
        assert int(time.time()) - session[SEEN_AT_KEY] < 5


def test_a_cookie_without_a_generation_is_refused(client, agent):
    """Cookies issued before sessions could be ended (or forged without the fields) end."""
    with client.session_transaction() as session:
        session["_user_id"] = str(agent.id)
        session["_fresh"] = True
    assert _is_logged_out(client)


def test_changing_the_password_ends_sessions_and_reset_revokes_tokens(client, agent, token):
    _logged_in(client, agent.email)
    with client.session_transaction() as session:
        before = session[GENERATION_KEY]
    agent_service.reset_password(agent, "a brand new password")
    assert agent.session_generation > before
    assert _is_logged_out(client)
    assert client.get("/whatsapp/api/conversaciones", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_logging_in_again_after_logout_everywhere_works_and_keeps_the_language(client, agent: Agent):
    client.get("/login")
    with client.session_transaction() as session:
        session["lang"] = "en"
    _logged_in(client, agent.email)
    page = client.get("/")
    assert '<html lang="en">' in page.text
    assert client.post("/logout/everywhere", data={"csrf_token": csrf_token(page.text)}).status_code == 302
    assert _is_logged_out(client)
    _logged_in(client, agent.email)
    assert client.get("/").status_code == 200


def test_a_new_secret_key_ends_sessions_unless_the_old_one_is_a_fallback(app: Flask, client, agent):
    """The session's serializer is built once per set of keys (app/auth/sessions.py): a rotated
    key is still honoured at once, in both directions."""
    _logged_in(client, agent.email)
    assert client.get("/").status_code == 200
    old_key = app.secret_key
    try:
        app.secret_key = "a rotated secret key, long enough"
        assert _is_logged_out(client)
        _logged_in(client, agent.email)
        app.secret_key, app.config["SECRET_KEY_FALLBACKS"] = "the next key, rotated again", [app.secret_key]
        assert client.get("/").status_code == 200  # signed with the fallback: still accepted
    finally:
        app.secret_key = old_key
        app.config["SECRET_KEY_FALLBACKS"] = None


def test_a_cookie_verified_before_still_expires_and_a_changed_one_is_verified_again(app: Flask, client, agent):
    """The cookie's signature is verified once per process (app/auth/sessions.py); its age is
    still checked on every request, and any other value is verified from scratch."""
    _logged_in(client, agent.email)
    assert client.get("/").status_code == 200
    assert client.get("/").status_code == 200  # the same cookie again: from the verified entries
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    forged = app.test_client()
    forged.set_cookie(cookie.key, cookie.value[:-2] + ("AA" if cookie.value[-2:] != "AA" else "BB"))
    assert _is_logged_out(forged)
    lifetime = app.permanent_session_lifetime
    try:
        app.permanent_session_lifetime = timedelta(seconds=-1)  # every signature is now too old
        assert _is_logged_out(client)
    finally:
        app.permanent_session_lifetime = lifetime


def test_session_lifetimes_come_from_the_environment():
    defaults = load_config({})
    assert defaults["SESSION_IDLE_SECONDS"] == 12 * 3600 and defaults["SESSION_MAX_SECONDS"] == 7 * 86400
    config = load_config({"SESSION_IDLE_HOURS": "1", "SESSION_MAX_DAYS": "2"})
    assert config["SESSION_IDLE_SECONDS"] == 3600 and config["SESSION_MAX_SECONDS"] == 2 * 86400
    assert config["PERMANENT_SESSION_LIFETIME"].days == 2  # Flask refuses older signatures too


# --- proxies ------------------------------------------------------------------------------------


def test_trusted_proxy_hops_default_to_one_in_production_only():
    production = {"APP_ENV": "production", "SECRET_KEY": "x" * 64, "DATABASE_URL": "postgres://h/db"}
    assert load_config(production)["TRUSTED_PROXY_HOPS"] == 1
    assert load_config({})["TRUSTED_PROXY_HOPS"] == 0
    assert load_config({"TRUSTED_PROXY_HOPS": "2"})["TRUSTED_PROXY_HOPS"] == 2


def _echo_app(database_url: str, hops: int) -> Flask:
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "TRUSTED_PROXY_HOPS": hops})

    def echo():  # type: ignore[no-untyped-def]
        return jsonify(address=request.remote_addr, scheme=request.scheme, secure=request.is_secure, host=request.host)

    app.add_url_rule("/_echo", "echo", echo)
    return app


FORWARDED = {"X-Forwarded-For": "192.0.2.66, 203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil"}


def test_one_trusted_hop_takes_the_address_and_scheme_the_proxy_appended(database_url):
    client = _echo_app(database_url, 1).test_client()
    answer = client.get("/_echo", headers={**FORWARDED, "Host": "inbox.onrender.com"}).json
    # The client wrote 192.0.2.66 itself; Render appended the real peer.
    assert answer == {"address": "203.0.113.9", "scheme": "https", "secure": True, "host": "inbox.onrender.com"}


def test_without_trusted_hops_forwarding_headers_are_ignored(database_url):
    client = _echo_app(database_url, 0).test_client()
    answer = client.get("/_echo", headers={**FORWARDED, "Host": "localhost"}).json
    assert answer == {"address": "127.0.0.1", "scheme": "http", "secure": False, "host": "localhost"}


# --- the login throttle -------------------------------------------------------------------------


def _attempt(client: FlaskClient, address: str, email: str, password: str) -> int:
    environ = {"REMOTE_ADDR": address}
    page = client.get("/login", environ_base=environ)
    data = {"email": email, "password": password, "csrf_token": csrf_token(page.text)}
    return client.post("/login", data=data, environ_base=environ).status_code


def test_the_account_ceiling_stops_failing_addresses_but_not_a_clean_one(app, client, agent, monkeypatch):
    """A guess from each of many addresses: once the account's ceiling is reached, addresses that
    failed for it wait; an address that never failed still gets in with the right password."""
    monkeypatch.setitem(app.config, "RATELIMIT_LOGIN_ACCOUNT_CEILING", "3 per hour")
    for n in range(3):
        assert _attempt(client, f"192.0.2.{n}", agent.email, "wrong password!") == 401
    assert _attempt(client, "192.0.2.0", agent.email, PASSWORD) == 429  # failed here: waits
    assert _attempt(client, "192.0.2.10", agent.email, "wrong password!") == 401  # a new address: one guess
    assert _attempt(client, "192.0.2.10", agent.email, "wrong password!") == 429
    assert _attempt(app.test_client(), "198.51.100.7", agent.email, PASSWORD) == 302  # the agent at their desk


def test_backoff_windows_grow_and_a_correct_password_clears_the_addresses_failures(app, client, agent, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_LOGIN_ACCOUNT", "2 per 5 minutes;3 per hour")
    assert [_attempt(client, "192.0.2.1", agent.email, "wrong password!") for _ in range(3)] == [401, 401, 429]
    limited = client.post("/login", data={}, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert limited.status_code == 400  # no CSRF token: refused before any counting
    page = client.get("/login", environ_base={"REMOTE_ADDR": "192.0.2.1"})
    blocked = client.post(
        "/login",
        data={"email": agent.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)},
        environ_base={"REMOTE_ADDR": "192.0.2.1"},
    )
    assert blocked.status_code == 429 and 1 <= int(blocked.headers["Retry-After"]) <= 300
    # Another address logs in and its (single) failure is forgotten on success.
    assert _attempt(client, "192.0.2.2", agent.email, "wrong password!") == 401
    assert _attempt(client, "192.0.2.2", agent.email, PASSWORD) == 302


# --- the API limits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("abc", None),
    ],
)
def test_bearer_token_parsing_is_shared_by_the_guard_and_the_limits(header, token):
    assert bearer_token(header) == token


def test_malformed_authorization_headers_draw_on_the_address_failure_budget(database_url):
    app = create_app(
        {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "RATELIMIT_API_AUTH_FAILURES": "3 per minute"}
    )
    client = app.test_client()
    statuses = [
        client.get("/whatsapp/api/conversaciones", headers={"Authorization": header}).status_code
        for header in ("Basic a", "Bearer", "Token x", "Bearer y")
    ]
    assert statuses == [401, 401, 401, 429]
    limited = client.get("/whatsapp/api/conversaciones", headers={"Authorization": "Bearer z"})
    assert limited.json["error"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
    with app.app_context():
        db.engine.dispose()

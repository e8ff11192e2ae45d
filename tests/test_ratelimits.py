"""Rate limits: bad signatures are throttled per address; Meta's signed deliveries never are."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import func, select

from app import create_app
from app.extensions import db
from app.models import Message
from app.ratelimits import rate_limiter
from tests import meta
from tests.conftest import TEST_CONFIG
from tests.test_pages import csrf_token


def _bad_signature(client, body: bytes):  # type: ignore[no-untyped-def]
    return client.post("/webhook/whatsapp", data=body, headers=meta.signed_headers(body, "wrong-secret"))


def test_bad_signatures_are_limited_per_address_with_retry_after(client):
    body = meta.encode(meta.delivery(meta.value(messages=[meta.message()])))
    statuses = [_bad_signature(client, body).status_code for _ in range(31)]
    assert statuses[:30] == [403] * 30
    assert statuses[30] == 429
    limited = _bad_signature(client, body)
    assert limited.status_code == 429 and limited.json["error"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1


def test_signed_deliveries_go_through_from_an_address_that_is_being_throttled(client, post_webhook):
    """Behind a misconfigured proxy Meta and an attacker share one address."""
    body = meta.encode(meta.delivery(meta.value(messages=[meta.message()])))
    for _ in range(40):
        _bad_signature(client, body)
    assert _bad_signature(client, body).status_code == 429
    for i in range(60):
        response = post_webhook(meta.delivery(meta.value(messages=[meta.message(content={"body": f"m{i}"})])))
        assert response.status_code == 200
    assert db.session.execute(select(func.count()).select_from(Message)).scalar_one() == 60


def test_signed_deliveries_are_never_counted_against_the_limit(client, post_webhook):
    for i in range(100):
        assert (
            post_webhook(meta.delivery(meta.value(messages=[meta.message(content={"body": f"{i}"})]))).status_code
            == 200
        )
    body = meta.encode(meta.delivery(meta.value(messages=[meta.message()])))
    assert _bad_signature(client, body).status_code == 403  # the failure budget is untouched


def test_failed_logins_are_limited_per_account(client, agent):
    def attempt(password: str):  # type: ignore[no-untyped-def]
        page = client.get("/login")
        return client.post(
            "/login", data={"email": agent.email, "password": password, "csrf_token": csrf_token(page.text)}
        )

    assert [attempt("wrong password!").status_code for _ in range(5)] == [401] * 5
    blocked = attempt("correct horse battery")
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers


def test_the_api_is_limited_per_token(database_url, agent, token):
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "RATELIMIT_API": "5 per minute"})
    client = app.test_client()
    statuses = [client.get("/healthz").status_code]
    statuses += [
        client.get("/whatsapp/api/conversaciones", headers={"Authorization": "Bearer x"}).status_code for _ in range(6)
    ]
    assert statuses == [200, 401, 401, 401, 401, 401, 429]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_with_dead_redis(database_url):  # type: ignore[no-untyped-def]
    app = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{_closed_port()}/0",
        }
    )
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.mark.drill
def test_redis_down_lets_traffic_through_and_still_limits_in_memory(app_with_dead_redis):
    client = app_with_dead_redis.test_client()
    assert client.get("/healthz").status_code == 200
    body = meta.encode(meta.delivery(meta.value(messages=[meta.message()])))
    statuses = [_bad_signature(client, body).status_code for _ in range(35)]
    assert 500 not in statuses and statuses[0] == 403
    assert client.get("/whatsapp/api/conversaciones").status_code == 401


def test_limits_use_redis_when_it_is_there(database_url):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis server on 127.0.0.1:6379")
    app = create_app(
        {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/15"}
    )
    with app.app_context():
        rate_limiter().reset()
    client = app.test_client()
    body = meta.encode(meta.delivery(meta.value(messages=[meta.message()])))
    statuses = [_bad_signature(client, body).status_code for _ in range(31)]
    assert statuses[-1] == 429
    keys = redis.Redis(host="127.0.0.1", port=6379, db=15).keys("LIMITS*")
    assert keys, "the counters live in Redis"
    with app.app_context():
        rate_limiter().reset()
        db.engine.dispose()


def test_in_memory_limits_start_no_thread_per_request(database_url, agent, token, monkeypatch):
    """Without Redis the counters live in SweptMemoryStorage: limits still hold, and no request
    starts a thread (limits' own MemoryStorage starts a 10 ms Timer after nearly every hit)."""
    import threading

    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "RATELIMIT_API": "20 per minute"})
    assert app.config["RATELIMIT_STORAGE_URI"] == "swept-memory://"
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/whatsapp/api/conversaciones", headers=headers).status_code == 200
    started: list[threading.Thread] = []
    original = threading.Thread.start

    def counting_start(self):  # type: ignore[no-untyped-def]
        started.append(self)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    statuses = [client.get("/whatsapp/api/conversaciones", headers=headers).status_code for _ in range(20)]
    assert statuses == [200] * 19 + [429]
    assert started == []

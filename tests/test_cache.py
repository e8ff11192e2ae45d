"""The conversation list cache: served without SQL when current, invalidated by every write."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app import create_app
from app.cache import VERSION_KEY, bump_version
from app.extensions import db
from app.models import Conversation
from tests import meta
from tests.conftest import TEST_CONFIG

LIST = "/whatsapp/api/conversaciones"


def _deliver(post_webhook, body: str, wa_id: str = "5491155550001") -> None:  # type: ignore[no-untyped-def]
    response = post_webhook(
        meta.delivery(
            meta.value(
                messages=[meta.message(sender=wa_id, content={"body": body})], contacts=[meta.contact(wa_id, "Cache")]
            )
        )
    )
    assert response.status_code == 200


def test_a_repeated_list_is_served_from_the_cache_with_only_the_token_lookup(
    client, auth, post_webhook, count_statements
):
    _deliver(post_webhook, "hola")
    first = client.get(LIST, headers=auth).json
    with count_statements() as counter:
        second = client.get(LIST, headers=auth).json
    assert second == first
    assert counter.count == 1, counter.statements  # the token; no list queries


def test_a_new_message_invalidates_the_cached_list_at_once(client, auth, post_webhook):
    _deliver(post_webhook, "primero")
    assert client.get(LIST, headers=auth).json["conversations"][0]["last_message"]["preview"] == "primero"
    _deliver(post_webhook, "segundo")
    assert client.get(LIST, headers=auth).json["conversations"][0]["last_message"]["preview"] == "segundo"


def test_the_agents_own_actions_invalidate_it(client, auth, agent, post_webhook, graph):
    _deliver(post_webhook, "hola")
    cid = client.get(LIST, headers=auth).json["conversations"][0]["id"]
    client.patch(f"{LIST}/{cid}", json={"assignee": agent.id}, headers=auth)
    assert client.get(LIST, headers=auth).json["conversations"][0]["assignee"]["id"] == agent.id
    client.post(f"{LIST}/{cid}/leido", headers=auth)
    assert client.get(LIST, headers=auth).json["conversations"][0]["unread_count"] == 0
    client.post(f"{LIST}/{cid}/mensajes", json={"type": "text", "text": "Te ayudo"}, headers=auth)
    listed = client.get(LIST, headers=auth).json["conversations"][0]
    assert listed["last_message"]["preview"] == "Te ayudo" and listed["last_message"]["status"] == "accepted"


def test_a_status_webhook_invalidates_it(client, auth, post_webhook, graph):
    _deliver(post_webhook, "hola")
    cid = client.get(LIST, headers=auth).json["conversations"][0]["id"]
    wamid = client.post(f"{LIST}/{cid}/mensajes", json={"type": "text", "text": "x"}, headers=auth).json["message"][
        "wamid"
    ]
    assert client.get(LIST, headers=auth).json["conversations"][0]["last_message"]["status"] == "accepted"
    post_webhook(meta.delivery(meta.value(statuses=[meta.status(wamid, "read")])))
    assert client.get(LIST, headers=auth).json["conversations"][0]["last_message"]["status"] == "read"


def test_a_write_outside_the_api_also_invalidates_it(client, auth, post_webhook):
    _deliver(post_webhook, "hola")
    assert client.get(LIST, headers=auth).json["conversations"][0]["status"] == "open"
    conversation = db.session.execute(select(Conversation)).scalar_one()
    conversation.status = "resolved"
    db.session.commit()
    assert client.get(LIST, headers=auth).json["conversations"][0]["status"] == "resolved"


@pytest.mark.slow
def test_entries_expire_after_list_cache_seconds(app, client, auth, post_webhook):
    _deliver(post_webhook, "hola")
    client.get(LIST, headers=auth)
    # A write the hook cannot see (raw SQL on another connection) shows after the TTL at most.
    db.session.connection().exec_driver_sql("UPDATE conversations SET status = 'pending'")
    assert client.get(LIST, headers=auth).json["conversations"][0]["status"] == "open"
    time.sleep(app.config["LIST_CACHE_SECONDS"] + 0.5)
    assert client.get(LIST, headers=auth).json["conversations"][0]["status"] == "pending"


def test_several_workers_without_redis_do_not_cache(database_url):
    app = create_app(
        {
            **TEST_CONFIG,
            "TESTING": False,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "WEB_CONCURRENCY": 2,
            "REDIS_URL": None,
        }
    )
    assert app.extensions["list_cache"].config["CACHE_TYPE"] == "NullCache"


@pytest.mark.drill
def test_a_dead_redis_falls_back_to_the_database(database_url, agent, token):
    app = create_app(
        {
            **TEST_CONFIG,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    response = app.test_client().get(LIST, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.json["pagination"]["total"] == 0


def test_with_redis_every_process_sees_the_same_version(database_url, agent, token):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis server on 127.0.0.1:6379")
    config = {
        **TEST_CONFIG,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": "redis://127.0.0.1:6379/14",
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    worker_a, worker_b = create_app(config), create_app(config)
    assert worker_a.extensions["list_cache"].config["CACHE_TYPE"] == "RedisCache"
    with worker_a.app_context():
        worker_a.extensions["list_cache"].clear()
        before = worker_a.extensions["list_cache"].get(VERSION_KEY) or 0
        bump_version()  # what a commit in worker A does
    with worker_b.app_context():
        assert (worker_b.extensions["list_cache"].get(VERSION_KEY) or 0) == before + 1
        worker_b.extensions["list_cache"].clear()

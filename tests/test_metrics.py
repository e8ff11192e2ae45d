"""/metrics: protected, complete, and the alert rules only name metrics that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
import yaml

from app import create_app
from app.extensions import db
from tests import meta
from tests.conftest import PROJECT_ROOT, TEST_CONFIG
from tests.fake_graph import POST_MESSAGES, error
from tests.live import Gunicorn

TOKEN = "metrics-secret-token"


@pytest.fixture
def metrics_enabled(app):  # type: ignore[no-untyped-def]
    app.config["METRICS_TOKEN"] = TOKEN
    yield {"Authorization": f"Bearer {TOKEN}"}
    app.config["METRICS_TOKEN"] = None


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_do_not_exist_without_a_token(client):
    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_bearer_token(client, metrics_enabled):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers=metrics_enabled).status_code == 200


def test_metrics_count_webhooks_messages_statuses_graph_and_latency(client, metrics_enabled, post_webhook, auth, graph):
    before = client.get("/metrics", headers=metrics_enabled).text
    post_webhook(meta.delivery(meta.value(messages=[meta.message(), meta.message("image", content={"id": "m1"})])))
    post_webhook(meta.delivery(meta.value(statuses=[meta.status("wamid.unknown", "delivered")])))
    post_webhook(b"not json")
    client.get("/whatsapp/api/conversaciones", headers=auth)
    graph.script(POST_MESSAGES, error(190))
    conversation_id = client.get("/whatsapp/api/conversaciones", headers=auth).json["conversations"][0]["id"]
    client.post(
        f"/whatsapp/api/conversaciones/{conversation_id}/mensajes", json={"type": "text", "text": "x"}, headers=auth
    )
    after = client.get("/metrics", headers=metrics_enabled).text

    def grew(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert grew("inbox_webhook_deliveries_total", outcome="stored") == 2
    assert grew("inbox_webhook_deliveries_total", outcome="invalid_body") == 1
    assert grew("inbox_messages_ingested_total", type="text") == 1
    assert grew("inbox_messages_ingested_total", type="image") == 1
    assert grew("inbox_statuses_total", status="delivered") == 1
    assert grew("inbox_graph_requests_total", operation="send", result="190") == 1
    assert grew("flask_http_request_duration_seconds_count", endpoint="api.conversations") == 2
    assert _sample(after, "inbox_process_resident_memory_bytes") > 10_000_000


def test_every_metric_in_the_alert_rules_is_exported(client, metrics_enabled, post_webhook):
    post_webhook(meta.delivery(meta.value(messages=[meta.message()])))
    exported = client.get("/metrics", headers=metrics_enabled).text
    rules = yaml.safe_load(Path(PROJECT_ROOT, "monitoring", "alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(expressions) >= 4
    names = {n for expr in expressions for n in re.findall(r"\b((?:inbox|flask)_[a-z_]+)\b", expr)}
    assert {"inbox_db_unavailable_total", "inbox_process_resident_memory_bytes"} <= names
    for name in names:
        assert re.search(rf"^(# TYPE )?{name}[{{ ]", exported, re.MULTILINE) or re.search(
            rf"^# TYPE {re.sub(r'_(bucket|count|sum|total)$', '', name)} ", exported, re.MULTILINE
        ), f"{name} is not exported"


@pytest.mark.live
def test_metrics_are_summed_over_gunicorn_workers(committed_db):
    env = {"METRICS_TOKEN": TOKEN}
    with Gunicorn(committed_db, workers=2, env=env) as server:
        session = requests.Session()
        for i in range(12):
            body = meta.encode(meta.delivery(meta.value(messages=[meta.message(content={"body": f"{i}"})])))
            # a new connection each time, so both workers take some
            assert (
                requests.post(
                    server.base_url + "/webhook/whatsapp", data=body, headers=meta.signed_headers(body), timeout=30
                ).status_code
                == 200
            )
        text = session.get(server.base_url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).text
    assert _sample(text, "inbox_webhook_deliveries_total", outcome="stored") == 12
    assert _sample(text, "inbox_process_resident_memory_bytes") > 0


def test_the_pool_gauges_show_the_connections_in_use_at_the_scrape(committed_db):
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": committed_db, "METRICS_TOKEN": TOKEN})
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with app.app_context():
        held = [db.engine.connect() for _ in range(2)]
        try:
            busy = client.get("/metrics", headers=headers).text
        finally:
            for connection in held:
                connection.close()
        idle = client.get("/metrics", headers=headers).text
        db.engine.dispose()
    assert _sample(busy, "inbox_db_pool_checked_out") == 2
    assert _sample(idle, "inbox_db_pool_checked_out") == 0

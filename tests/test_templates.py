"""Templates: `flask templates sync` against the fake Graph server, the list endpoint, sending one."""

from __future__ import annotations

import copy
import time

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Conversation, Message, MessageTemplate
from app.whatsapp.rules import template_placeholders
from tests import fake_graph, meta
from tests.fake_graph import POST_MESSAGES, TEMPLATES, error, server_error
from tests.test_openapi import assert_documented

ORDER_READY = {
    "id": "1001",
    "name": "pedido_listo",
    "language": "es",
    "status": "APPROVED",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}"},
        {"type": "BODY", "text": "Hola {{1}}, tu pedido {{2}} está listo."},
        {"type": "FOOTER", "text": "Gracias"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "URL", "text": "Ver", "url": "https://tienda.example/p/{{1}}"},
                {"type": "QUICK_REPLY", "text": "OK"},
            ],
        },
    ],
}
WELCOME_EN = {
    "id": "1002",
    "name": "bienvenida",
    "language": "en_US",
    "status": "APPROVED",
    "category": "MARKETING",
    "components": [{"type": "BODY", "text": "Welcome to our shop!"}],
}
WELCOME_ES = {**WELCOME_EN, "id": "1003", "language": "es", "components": [{"type": "BODY", "text": "¡Bienvenida!"}]}
PROMO = {
    "id": "1004",
    "name": "promo_verano",
    "language": "es",
    "status": "REJECTED",
    "category": "MARKETING",
    "components": [{"type": "BODY", "text": "Descuento {{1}}"}],
}
PLANTILLAS = "/whatsapp/api/plantillas"


def _sync(runner):  # type: ignore[no-untyped-def]
    return runner.invoke(args=["templates", "sync"])


def _rows() -> dict[tuple[str, str], MessageTemplate]:
    return {(t.name, t.language): t for t in db.session.execute(select(MessageTemplate)).scalars()}


def test_sync_adds_every_template_with_its_placeholders(runner, graph):
    graph.templates = copy.deepcopy([ORDER_READY, WELCOME_EN, WELCOME_ES, PROMO])
    result = _sync(runner)
    assert result.exit_code == 0, result.output
    assert "4 added, 0 updated, 0 removed, 0 unchanged" in result.output
    rows = _rows()
    assert set(rows) == {("pedido_listo", "es"), ("bienvenida", "en_US"), ("bienvenida", "es"), ("promo_verano", "es")}
    order = rows[("pedido_listo", "es")]
    assert (order.external_id, order.status, order.category) == ("1001", "APPROVED", "UTILITY")
    assert order.components == ORDER_READY["components"]
    assert order.placeholders == template_placeholders(ORDER_READY["components"])
    assert order.placeholders == ["header.1", "body.1", "body.2", "button.0.1"]
    assert rows[("bienvenida", "en_US")].placeholders == []
    assert rows[("promo_verano", "es")].status == "REJECTED"

    [request] = graph.sent(TEMPLATES)
    assert request.path == f"/{fake_graph.API_VERSION}/{meta.WABA_ID}/message_templates"
    assert request.headers["Authorization"] == f"Bearer {fake_graph.ACCESS_TOKEN}"
    assert "name" in request.query["fields"][0] and "components" in request.query["fields"][0]


def test_sync_follows_graphs_paging(runner, graph):
    templates = [
        {
            **WELCOME_ES,
            "id": str(2000 + i),
            "name": f"plantilla_{i:02d}",
            "components": [{"type": "BODY", "text": "Hola"}],
        }
        for i in range(7)
    ]
    graph.templates = templates
    graph.templates_page_size = 3
    result = _sync(runner)
    assert result.exit_code == 0, result.output
    assert "7 added" in result.output
    assert sorted(name for name, _ in _rows()) == [t["name"] for t in templates]
    requests = graph.sent(TEMPLATES)
    assert len(requests) == 3  # 3 + 3 + 1
    assert [r.query.get("after") for r in requests] == [None, ["3"], ["6"]]
    assert all(r.headers["Authorization"] == f"Bearer {fake_graph.ACCESS_TOKEN}" for r in requests)


def test_second_sync_updates_changed_templates_and_removes_missing_ones(runner, graph):
    graph.templates = copy.deepcopy([ORDER_READY, WELCOME_EN, WELCOME_ES, PROMO])
    assert _sync(runner).exit_code == 0
    first_ids = {key: row.id for key, row in _rows().items()}

    order = copy.deepcopy(ORDER_READY)
    order["components"][1]["text"] = "Hola {{1}}, tu pedido {{2}} llega el {{3}}."
    graph.templates = [order, {**PROMO, "status": "APPROVED"}, WELCOME_ES]  # bienvenida/en_US is gone
    result = _sync(runner)
    assert result.exit_code == 0, result.output
    assert "0 added, 2 updated, 1 removed, 1 unchanged" in result.output

    rows = _rows()
    assert set(rows) == {("pedido_listo", "es"), ("promo_verano", "es"), ("bienvenida", "es")}
    assert rows[("pedido_listo", "es")].id == first_ids[("pedido_listo", "es")]  # updated in place
    assert rows[("pedido_listo", "es")].placeholders == ["header.1", "body.1", "body.2", "body.3", "button.0.1"]
    assert rows[("promo_verano", "es")].status == "APPROVED"

    again = _sync(runner)
    assert "0 added, 0 updated, 0 removed, 3 unchanged" in again.output


def test_sync_without_a_business_account_id_fails_clearly(runner, graph, app, monkeypatch):
    monkeypatch.setitem(app.config, "WHATSAPP_BUSINESS_ACCOUNT_ID", "")
    graph.templates = [copy.deepcopy(WELCOME_EN)]
    result = _sync(runner)
    assert result.exit_code != 0
    assert "WHATSAPP_BUSINESS_ACCOUNT_ID is not set" in result.output
    assert graph.requests == [] and _rows() == {}


@pytest.mark.parametrize("answers", [[error(190)], [error(100)], [server_error()] * 3])
def test_sync_fails_clearly_and_changes_nothing_when_graph_fails(runner, graph, answers):
    graph.templates = copy.deepcopy([ORDER_READY, WELCOME_EN])
    assert _sync(runner).exit_code == 0
    graph.templates = []
    graph.script(TEMPLATES, *answers)
    result = _sync(runner)
    assert result.exit_code != 0
    assert "WhatsApp did not list the templates" in result.output
    assert set(_rows()) == {("pedido_listo", "es"), ("bienvenida", "en_US")}


def test_a_failure_on_a_later_page_changes_nothing(runner, graph):
    graph.templates = [copy.deepcopy(WELCOME_EN)]
    assert _sync(runner).exit_code == 0
    graph.templates = copy.deepcopy([ORDER_READY, WELCOME_ES, PROMO])
    graph.templates_page_size = 1
    graph.script(TEMPLATES, None, error(190))  # the first page succeeds, the second fails
    result = _sync(runner)
    assert result.exit_code != 0 and "190" in result.output
    assert set(_rows()) == {("bienvenida", "en_US")}


def test_templates_without_name_or_language_are_skipped(runner, graph):
    graph.templates = [copy.deepcopy(WELCOME_EN), {"id": "9", "status": "APPROVED"}, {"name": "x", "language": 5}]
    result = _sync(runner)
    assert result.exit_code == 0
    assert "1 added" in result.output and "2 without name or language skipped" in result.output
    assert set(_rows()) == {("bienvenida", "en_US")}


# --- the list endpoint --------------------------------------------------------------------------


def test_list_shows_approved_templates_sorted_by_name_then_language(client, auth, runner, graph):
    graph.templates = copy.deepcopy([PROMO, ORDER_READY, WELCOME_ES, WELCOME_EN])
    assert _sync(runner).exit_code == 0
    response = client.get(PLANTILLAS, headers=auth)
    assert response.status_code == 200
    body = response.json
    assert [(t["name"], t["language"]) for t in body] == [
        ("bienvenida", "en_US"),
        ("bienvenida", "es"),
        ("pedido_listo", "es"),
    ]
    rows = _rows()
    order = body[2]
    assert order == {
        "id": rows[("pedido_listo", "es")].id,
        "name": "pedido_listo",
        "language": "es",
        "category": "UTILITY",
        "status": "APPROVED",
        "components": ORDER_READY["components"],
        "placeholders": ["header.1", "body.1", "body.2", "button.0.1"],
    }
    assert graph.sent(TEMPLATES) and len(graph.requests) == 1  # listing reads the database, not Graph


def test_list_is_empty_before_any_sync(client, auth, graph):
    response = client.get(PLANTILLAS, headers=auth)
    assert response.status_code == 200 and response.json == []


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}])
def test_list_needs_credentials(client, graph, headers):
    response = client.get(PLANTILLAS, headers=headers)
    assert response.status_code == 401 and response.json["error"] == "unauthorized"


# --- end to end ---------------------------------------------------------------------------------


def test_a_synced_template_can_be_sent_and_a_removed_one_cannot(client, auth, runner, graph, post_webhook):
    post_webhook(meta.delivery(meta.value(messages=[meta.message(ts=int(time.time()) - 60)])))
    conversation_id = db.session.execute(select(Conversation.id)).scalar_one()
    graph.templates = copy.deepcopy([ORDER_READY])
    assert _sync(runner).exit_code == 0

    listed = client.get(PLANTILLAS, headers=auth).json[0]
    parameters = {"header.1": "#123", "body.1": "Ana", "body.2": "#123", "button.0.1": "123"}
    assert set(listed["placeholders"]) == set(parameters)
    send = {"type": "template", "template": {"name": listed["name"], "language": listed["language"]}}
    send["template"]["parameters"] = parameters
    url = f"/whatsapp/api/conversaciones/{conversation_id}/mensajes"
    response = client.post(url, json=send, headers=auth)
    assert response.status_code == 201, response.json
    assert response.json["message"]["text"] == "Hola Ana, tu pedido #123 está listo."
    [sent] = graph.sent(POST_MESSAGES)
    assert sent.body["template"]["name"] == "pedido_listo"
    assert sent.body["template"]["language"] == {"code": "es"}
    assert {c["type"] for c in sent.body["template"]["components"]} == {"header", "body", "button"}

    graph.templates = []  # deleted on Meta
    assert "1 removed" in _sync(runner).output
    refused = client.post(url, json=send, headers=auth)
    assert refused.status_code == 400 and refused.json["error"] == "unknown_template"
    assert len(graph.sent(POST_MESSAGES)) == 1
    assert db.session.execute(select(func.count()).select_from(Message).where(Message.direction == "out")).scalar() == 1


def test_list_answers_are_as_documented(client, auth, runner, graph):
    graph.templates = copy.deepcopy([ORDER_READY, WELCOME_EN, PROMO])
    assert _sync(runner).exit_code == 0
    assert len(assert_documented(client.get(PLANTILLAS, headers=auth), PLANTILLAS)) == 2
    assert_documented(client.get(PLANTILLAS), PLANTILLAS)

"""Sending through the fake Graph server: window, templates, failures, retries, idempotency, races."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Conversation, Message, MessageTemplate, SendAttempt
from app.whatsapp.rules import template_placeholders
from tests import fake_graph, meta
from tests.conftest import store_approved_template
from tests.fake_graph import POST_MESSAGES, TIMEOUT, error, server_error

WA_ID = "5491155550001"


@pytest.fixture
def conversation(post_webhook) -> int:
    """A conversation whose customer wrote a minute ago (the window is open)."""
    post_webhook(meta.delivery(meta.value(messages=[meta.message(ts=int(time.time()) - 60)])))
    return db.session.execute(select(Conversation.id)).scalar_one()


def _age_window(conversation_id: int, age: timedelta) -> None:
    db.session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(last_customer_message_at=datetime.now(UTC) - age)
    )
    db.session.commit()


def _send(client, auth, conversation_id: int, body: dict, **headers):  # type: ignore[no-untyped-def]
    return client.post(
        f"/whatsapp/api/conversaciones/{conversation_id}/mensajes", json=body, headers={**auth, **headers}
    )


def _outbound() -> list[Message]:
    return list(db.session.execute(select(Message).where(Message.direction == "out").order_by(Message.id)).scalars())


def _attempts() -> list[SendAttempt]:
    return list(db.session.execute(select(SendAttempt).order_by(SendAttempt.id)).scalars())


# --- free text ------------------------------------------------------------------------------


def test_text_inside_the_window_is_stored_sent_and_accepted(client, auth, agent, graph, conversation):
    response = _send(client, auth, conversation, {"type": "text", "text": "¡Hola! ¿En qué te ayudo?"})
    assert response.status_code == 201, response.json
    body = response.json["message"]
    assert body["status"] == "accepted" and body["wamid"].startswith("wamid.FAKE")
    assert body["sender"] == {"type": "agent", "agent": {"id": agent.id, "name": agent.name}}
    [request] = graph.sent(POST_MESSAGES)
    assert request.path == f"/v25.0/{meta.PHONE_NUMBER_ID}/messages"
    assert request.headers["Authorization"] == f"Bearer {fake_graph.ACCESS_TOKEN}"
    assert request.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "type": "text",
        "text": {"preview_url": False, "body": "¡Hola! ¿En qué te ayudo?"},
    }
    [message] = _outbound()
    assert (message.wamid, message.status, message.agent_id) == (body["wamid"], "accepted", agent.id)
    [attempt] = _attempts()
    assert (attempt.outcome, attempt.wamid, attempt.agent_id) == ("accepted", message.wamid, agent.id)
    conv = db.session.get(Conversation, conversation)
    assert conv.last_agent_message_id == message.id and conv.last_message_id == message.id
    listed = client.get("/whatsapp/api/conversaciones", headers=auth).json["conversations"][0]
    assert listed["last_agent_message"]["agent"]["name"] == agent.name


def test_reply_to_sends_the_quoted_messages_wamid(client, auth, graph, conversation):
    inbound = db.session.execute(select(Message)).scalar_one()
    response = _send(client, auth, conversation, {"type": "text", "text": "Sí", "reply_to": inbound.id})
    assert response.status_code == 201
    assert graph.sent()[0].body["context"] == {"message_id": inbound.wamid}
    assert response.json["message"]["reply_to"]["id"] == inbound.id


@pytest.mark.parametrize(
    "body",
    [
        {"type": "text", "text": ""},
        {"type": "text", "text": "   "},
        {"type": "text", "text": "x" * 4097},
        {"type": "text"},
        {"type": "text", "text": 5},
        {"type": "video", "text": "x"},
        {"text": "sin tipo"},
        {"type": "text", "text": "hola", "reply_to": 999999},
        {"type": "text", "text": "hola", "reply_to": "1"},
        {"type": "template", "template": "saludo"},
        [],
    ],
)
def test_bad_send_requests_are_400_and_store_nothing(client, auth, graph, conversation, body):
    response = _send(client, auth, conversation, body)
    assert response.status_code == 400 and response.json["message"]
    assert _outbound() == [] and graph.sent() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "text", "text": "hola", "reply_to": True}, "reply_to"),
        ({"type": "text", "text": "hola", "reply_to": 1.0}, "reply_to"),
        ({"type": "text", "text": "a\x00b"}, "text"),
        ({"type": "template", "template": {"name": "saludo", "parameters": {"body.1": True}}}, "template.parameters"),
        ({"type": "template", "template": {"name": "saludo\x00"}}, "template.name"),
        ({"type": "template", "template": {"name": "saludo", "language": {"code": ""}}}, "template.language"),
    ],
)
def test_send_bodies_are_strict_and_name_the_field(client, auth, graph, conversation, body, field):
    response = _send(client, auth, conversation, body)
    assert response.status_code == 400 and response.json["error"] == "invalid_body"
    assert f"'{field}" in response.json["message"]
    assert _outbound() == [] and graph.sent() == []


@pytest.mark.parametrize("body", ["hola", 5, None, [{"type": "text", "text": "hola"}]])
def test_a_send_body_that_is_json_but_not_an_object_is_400(client, auth, graph, conversation, body):
    response = client.post(
        f"/whatsapp/api/conversaciones/{conversation}/mensajes",
        data=json.dumps(body),
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 400 and response.json["error"] == "invalid_body"
    assert "JSON" in response.json["message"]
    assert _outbound() == [] and graph.sent() == []


def test_text_of_exactly_4096_characters_is_accepted(client, auth, graph, conversation):
    assert _send(client, auth, conversation, {"type": "text", "text": "x" * 4096}).status_code == 201


def test_body_that_is_not_json_is_400(client, auth, graph, conversation):
    response = client.post(f"/whatsapp/api/conversaciones/{conversation}/mensajes", data="hola", headers=auth)
    assert response.status_code == 400 and graph.sent() == []


def test_sending_needs_credentials_and_a_known_conversation(client, auth, graph, conversation):
    assert (
        client.post(
            f"/whatsapp/api/conversaciones/{conversation}/mensajes", json={"type": "text", "text": "x"}
        ).status_code
        == 401
    )
    assert _send(client, auth, 999999, {"type": "text", "text": "x"}).status_code == 404
    assert graph.sent() == []


# --- the 24-hour window ---------------------------------------------------------------------


def test_window_closed_after_24h01m_refuses_text_without_calling_graph(client, auth, graph, conversation):
    _age_window(conversation, timedelta(hours=24, minutes=1))
    response = _send(client, auth, conversation, {"type": "text", "text": "¿Seguís ahí?"})
    assert response.status_code == 409
    assert response.json["error"] == "window_closed" and "template" in response.json["message"]
    assert response.json["window_expires_at"]
    assert graph.sent() == [] and _outbound() == []


def test_window_still_open_at_23h59m(client, auth, graph, conversation):
    _age_window(conversation, timedelta(hours=23, minutes=59))
    assert _send(client, auth, conversation, {"type": "text", "text": "A tiempo"}).status_code == 201


def test_conversation_the_customer_never_wrote_in_has_no_window(client, auth, graph, conversation):
    db.session.execute(update(Conversation).values(last_customer_message_at=None))
    db.session.commit()
    assert _send(client, auth, conversation, {"type": "text", "text": "x"}).status_code == 409


# --- Graph failures -------------------------------------------------------------------------


def test_meta_131047_marks_failed_and_answers_409_with_the_template_hint(client, auth, graph, conversation):
    graph.script(POST_MESSAGES, error(131047))
    response = _send(client, auth, conversation, {"type": "text", "text": "Hola"})
    assert response.status_code == 409 and response.json["error"] == "window_closed"
    assert "template" in response.json["message"]
    [message] = _outbound()
    assert (message.status, message.error_code) == ("failed", 131047)
    assert response.json["stored_message"]["error"]["code"] == 131047


@pytest.mark.parametrize("code", [131026, 190, 100])
def test_permanent_graph_errors_are_not_retried_and_show_failed(client, auth, graph, conversation, code):
    graph.script(POST_MESSAGES, error(code))
    response = _send(client, auth, conversation, {"type": "text", "text": "Hola"})
    assert response.status_code == 502
    assert response.json["graph_error"]["code"] == code and response.json["graph_error"]["fbtrace_id"]
    assert len(graph.sent()) == 1
    [message] = _outbound()
    assert (message.status, message.error_code, message.wamid) == ("failed", code, None)
    assert message.error_title
    [attempt] = _attempts()
    assert (attempt.outcome, attempt.error_code) == ("failed", code)


def test_transient_errors_are_retried_with_backoff_then_succeed(client, auth, graph, conversation):
    graph.script(POST_MESSAGES, error(130429), server_error(503))
    response = _send(client, auth, conversation, {"type": "text", "text": "Hola"})
    assert response.status_code == 201
    assert len(graph.sent()) == 3
    assert _outbound()[0].status == "accepted"


def test_persistent_5xx_gives_up_after_a_bounded_number_of_tries(client, auth, graph, conversation):
    graph.script(POST_MESSAGES, server_error(), server_error(), server_error(), server_error())
    response = _send(client, auth, conversation, {"type": "text", "text": "Hola"})
    assert response.status_code == 502
    assert len(graph.sent()) == 3  # one try and two retries
    assert _outbound()[0].status == "failed"


def test_a_timeout_is_not_retried_because_the_send_may_have_gone_out(client, auth, graph, conversation):
    graph.script(POST_MESSAGES, TIMEOUT)
    response = _send(client, auth, conversation, {"type": "text", "text": "Hola"})
    assert response.status_code == 502
    assert len(graph.sent()) == 1
    message = _outbound()[0]
    assert message.status == "failed" and "did not answer" in message.error_title


def test_retry_sends_a_failed_message_again_as_a_new_attempt(client, auth, graph, conversation):
    graph.script(POST_MESSAGES, error(190))
    failed = _send(client, auth, conversation, {"type": "text", "text": "Hola"}).json
    message_id = failed["message_id"]
    url = f"/whatsapp/api/conversaciones/{conversation}/mensajes/{message_id}/reintentar"
    response = client.post(url, headers=auth)
    assert response.status_code == 201
    assert response.json["message"]["status"] == "accepted" and response.json["message"]["error"] is None
    assert [a.outcome for a in _attempts()] == ["failed", "accepted"]
    assert len(graph.sent()) == 2 and graph.sent()[1].body == graph.sent()[0].body
    assert len(_outbound()) == 1  # the same message, not a copy
    # an accepted message cannot be "retried" into a duplicate
    assert client.post(url, headers=auth).status_code == 409
    assert (
        client.post(f"/whatsapp/api/conversaciones/{conversation}/mensajes/999999/reintentar", headers=auth).status_code
        == 404
    )


def test_retry_of_text_after_the_window_closed_is_refused(client, auth, graph, conversation):
    graph.script(POST_MESSAGES, error(131026))
    message_id = _send(client, auth, conversation, {"type": "text", "text": "Hola"}).json["message_id"]
    _age_window(conversation, timedelta(hours=25))
    response = client.post(
        f"/whatsapp/api/conversaciones/{conversation}/mensajes/{message_id}/reintentar", headers=auth
    )
    assert response.status_code == 409 and response.json["error"] == "window_closed"
    assert len(graph.sent()) == 1


# --- statuses racing Graph's answer ----------------------------------------------------------


def test_status_arriving_before_graphs_answer_is_applied(client, auth, graph, conversation, post_webhook):
    wamid = "wamid.RACE" + str(time.time_ns())
    post_webhook(meta.delivery(meta.value(statuses=[meta.status(wamid, "delivered")])))
    graph.script(POST_MESSAGES, (200, {"messaging_product": "whatsapp", "messages": [{"id": wamid}]}))
    response = _send(client, auth, conversation, {"type": "text", "text": "Hola"})
    assert response.status_code == 201
    db.session.expire_all()
    assert _outbound()[0].status == "delivered"
    post_webhook(meta.delivery(meta.value(statuses=[meta.status(wamid, "read")])))
    db.session.expire_all()
    assert _outbound()[0].status == "read"


# --- idempotency ----------------------------------------------------------------------------


def test_same_idempotency_key_returns_the_first_result_and_sends_once(client, auth, graph, conversation):
    body = {"type": "text", "text": "Una sola vez"}
    first = _send(client, auth, conversation, body, **{"Idempotency-Key": "click-1"})
    second = _send(client, auth, conversation, body, **{"Idempotency-Key": "click-1"})
    assert first.status_code == second.status_code == 201
    assert second.json == first.json and second.headers["Idempotent-Replayed"] == "true"
    assert len(graph.sent()) == 1 and len(_outbound()) == 1
    other = _send(client, auth, conversation, body, **{"Idempotency-Key": "click-2"})
    assert other.status_code == 201 and len(_outbound()) == 2


def test_idempotent_replay_also_returns_a_failure_without_sending_again(client, auth, graph, conversation):
    graph.script(POST_MESSAGES, error(131026))
    body = {"type": "text", "text": "x"}
    first = _send(client, auth, conversation, body, **{"Idempotency-Key": "k"})
    second = _send(client, auth, conversation, body, **{"Idempotency-Key": "k"})
    assert first.status_code == second.status_code == 502 and len(graph.sent()) == 1


def test_reusing_a_key_for_another_request_is_422(client, auth, graph, conversation):
    _send(client, auth, conversation, {"type": "text", "text": "a"}, **{"Idempotency-Key": "k"})
    response = _send(client, auth, conversation, {"type": "text", "text": "b"}, **{"Idempotency-Key": "k"})
    assert response.status_code == 422 and len(graph.sent()) == 1


def test_keys_belong_to_one_agent(client, auth, other_agent, graph, conversation):
    from app.services import agents as agent_service

    other_auth = {"Authorization": f"Bearer {agent_service.create_token(other_agent.email)}"}
    body = {"type": "text", "text": "a"}
    assert _send(client, auth, conversation, body, **{"Idempotency-Key": "k"}).status_code == 201
    assert _send(client, other_auth, conversation, body, **{"Idempotency-Key": "k"}).status_code == 201
    assert len(graph.sent()) == 2


def test_malformed_idempotency_key_is_400(client, auth, graph, conversation):
    response = _send(client, auth, conversation, {"type": "text", "text": "a"}, **{"Idempotency-Key": "x" * 300})
    assert response.status_code == 400 and graph.sent() == []


# --- templates ------------------------------------------------------------------------------

TEMPLATE_COMPONENTS = [
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
]


@pytest.fixture
def template(db_session) -> MessageTemplate:
    return store_approved_template("pedido_listo", TEMPLATE_COMPONENTS)


def test_template_placeholders_cover_header_body_and_url_buttons():
    assert template_placeholders(TEMPLATE_COMPONENTS) == ["header.1", "body.1", "body.2", "button.0.1"]


def test_template_with_every_placeholder_is_sent_even_outside_the_window(client, auth, graph, conversation, template):
    _age_window(conversation, timedelta(days=3))
    params = {"header.1": "#123", "body.1": "Ana", "body.2": "#123", "button.0.1": "123"}
    response = _send(
        client,
        auth,
        conversation,
        {"type": "template", "template": {"name": "pedido_listo", "language": "es", "parameters": params}},
    )
    assert response.status_code == 201, response.json
    sent = graph.sent()[0].body
    assert sent["type"] == "template"
    assert sent["template"] == {
        "name": "pedido_listo",
        "language": {"code": "es"},
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "#123"}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#123"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "123"}]},
        ],
    }
    message = response.json["message"]
    assert message["type"] == "template" and message["text"] == "Hola Ana, tu pedido #123 está listo."
    assert message["template"] == {"name": "pedido_listo", "language": "es"}


def test_template_with_missing_placeholders_is_400_naming_them(client, auth, graph, conversation, template):
    response = _send(
        client,
        auth,
        conversation,
        {
            "type": "template",
            "template": {"name": "pedido_listo", "language": "es", "parameters": {"body.1": "Ana", "header.1": " "}},
        },
    )
    assert response.status_code == 400
    assert response.json["missing"] == ["header.1", "body.2", "button.0.1"]
    assert "body.2" in response.json["message"]
    assert graph.sent() == [] and _outbound() == []


def test_unknown_or_unapproved_template_is_400(client, auth, graph, conversation, template):
    template.status = "REJECTED"
    db.session.commit()
    response = _send(client, auth, conversation, {"type": "template", "template": {"name": "pedido_listo"}})
    assert response.status_code == 400 and response.json["error"] == "unknown_template"
    assert db.session.execute(select(func.count()).select_from(Message).where(Message.direction == "out")).scalar() == 0

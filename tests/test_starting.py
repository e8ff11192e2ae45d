"""Starting a conversation through HTTP with the fake Graph server: numbers as people type them,
templates only, the existing conversation (409), Meta's wa_id re-keying and merging, idempotency."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import BusinessNumber, Contact, Conversation, IdempotencyKey, Message, SendAttempt
from tests import meta
from tests.conftest import store_approved_template
from tests.fake_graph import POST_MESSAGES, error
from tests.test_openapi import assert_documented

START = "/whatsapp/api/conversaciones"
WELCOME = [{"type": "BODY", "text": "Hola {{1}}, te escribimos de la tienda."}]


@pytest.fixture
def template(db_session):  # type: ignore[no-untyped-def]
    return store_approved_template("bienvenida", WELCOME)


def _body(phone: str, **extra: object) -> dict:
    return {
        "phone": phone,
        "template": {"name": "bienvenida", "language": "es", "parameters": {"body.1": "Ana"}},
        **extra,
    }


def _start(client, auth, body: dict, **headers):  # type: ignore[no-untyped-def]
    return client.post(START, json=body, headers={**auth, **headers})


def _counts() -> tuple[int, int, int]:
    db.session.expire_all()
    return (
        db.session.scalar(select(func.count()).select_from(Contact)) or 0,
        db.session.scalar(select(func.count()).select_from(Conversation)) or 0,
        db.session.scalar(select(func.count()).select_from(Message)) or 0,
    )


@pytest.mark.parametrize("typed", ["+34 612 34 56 78", "0034 612 34 56 78", "612 345 678", "612345678"])
def test_a_number_as_people_type_it_starts_a_conversation_with_the_template(
    client, auth, agent, graph, template, typed
):
    response = _start(client, auth, _body(typed, name="Ana Cliente"))
    assert response.status_code == 201, response.json
    body = response.json
    conversation, message = body["conversation"], body["message"]
    assert conversation["contact"]["wa_id"] == "34612345678"
    assert conversation["display_name"] == "Ana Cliente"  # the team's name
    assert conversation["contact"]["name"] is None  # WhatsApp's profile name: not known yet
    assert conversation["last_message"]["id"] == message["id"]
    assert message["type"] == "template" and message["status"] == "accepted"
    assert message["text"] == "Hola Ana, te escribimos de la tienda."
    assert message["sender"] == {"type": "agent", "agent": {"id": agent.id, "name": agent.name}}
    [sent] = graph.sent(POST_MESSAGES)
    assert sent.path == f"/v25.0/{meta.PHONE_NUMBER_ID}/messages"
    assert sent.body["to"] == "34612345678" and sent.body["type"] == "template"
    assert sent.body["template"]["name"] == "bienvenida"
    number = db.session.execute(select(BusinessNumber)).scalar_one()
    assert number.phone_number_id == meta.PHONE_NUMBER_ID
    listed = client.get(START, headers=auth).json["conversations"]
    assert [c["id"] for c in listed] == [conversation["id"]]


def test_the_customers_reply_lands_in_the_started_conversation(client, auth, graph, template, post_webhook):
    started = _start(client, auth, _body("612 345 678")).json["conversation"]
    reply = meta.message(sender="34612345678", ts=int(time.time()) + 2, content={"body": "¡Gracias!"})
    delivery = meta.delivery(meta.value(messages=[reply], contacts=[meta.contact("34612345678", "Ana P.")]))
    assert post_webhook(delivery).status_code == 200
    assert _counts() == (1, 1, 2)
    summary = client.get(f"{START}/{started['id']}", headers=auth).json
    assert summary["last_message"]["preview"] == "¡Gracias!" and summary["unread_count"] == 1
    assert summary["display_name"] == "Ana P."  # no team name was given: WhatsApp's profile name


@pytest.mark.parametrize(
    ("typed", "typed_digits", "wa_id"),
    [
        ("+52 1 55 1234 5678", "5215512345678", "525512345678"),  # Mexico: Meta drops the old mobile 1
        ("+54 11 1234 5678", "541112345678", "5491112345678"),  # Argentina: Meta's ids carry the 9
        ("+55 11 91234 5678", "5511912345678", "551112345678"),  # Brazil: an account without the ninth digit
    ],
)
def test_the_contact_is_rekeyed_to_the_wa_id_meta_answers(
    client, auth, graph, template, post_webhook, typed, typed_digits, wa_id
):
    response = _start(client, auth, _body(typed, name="Cliente"))
    assert response.status_code == 201, response.json
    [sent] = graph.sent(POST_MESSAGES)
    assert sent.body["to"] == typed_digits  # stored and sent as typed, before Meta said otherwise
    conversation = response.json["conversation"]
    assert conversation["contact"]["wa_id"] == wa_id
    contact = db.session.execute(select(Contact)).scalar_one()
    assert contact.wa_id == wa_id and contact.display_name == "Cliente"
    # The customer's reply, keyed by Meta's wa_id, lands in the same conversation.
    reply = meta.message(sender=wa_id, content={"body": "Hola"})
    assert (
        post_webhook(meta.delivery(meta.value(messages=[reply], contacts=[meta.contact(wa_id, "Cli")]))).status_code
        == 200
    )
    assert _counts() == (1, 1, 2)
    assert db.session.execute(select(Message.conversation_id).distinct()).scalars().all() == [conversation["id"]]
    # Typing the number again finds the conversation (now under Meta's wa_id) only through Meta: the
    # next start merges into it rather than creating a second one.
    again = _start(client, auth, _body(typed))
    assert again.status_code == 201, again.json
    assert again.json["conversation"]["id"] == conversation["id"]
    assert _counts() == (1, 1, 3)


def test_a_contact_a_webhook_stored_under_metas_wa_id_first_is_merged_into(client, auth, graph, template, post_webhook):
    """The customer (Meta's wa_id 5491112345678) is already known when the agent types the
    number without the 9: the new contact and conversation merge into the existing ones."""
    wa_id = "5491112345678"
    earlier = meta.message(sender=wa_id, content={"body": "Hola, ¿tienen stock?"})
    assert (
        post_webhook(meta.delivery(meta.value(messages=[earlier], contacts=[meta.contact(wa_id, "Lucía")]))).status_code
        == 200
    )
    existing = db.session.execute(select(Conversation.id, Conversation.contact_id)).one()
    response = _start(client, auth, _body("+54 11 1234 5678", name="Lucía (tienda)"))
    assert response.status_code == 201, response.json
    conversation = response.json["conversation"]
    assert conversation["id"] == existing.id and conversation["contact"]["id"] == existing.contact_id
    assert conversation["last_message"]["id"] == response.json["message"]["id"]
    assert conversation["display_name"] == "Lucía (tienda)" and conversation["contact"]["name"] == "Lucía"
    assert _counts() == (1, 1, 2)
    assert conversation["unread_count"] == 1  # the customer's message, still unread


def test_an_existing_conversation_is_409_with_its_id_and_nothing_is_sent(client, auth, graph, template, post_webhook):
    earlier = meta.message(sender="34612345678", content={"body": "Hola"})
    assert (
        post_webhook(meta.delivery(meta.value(messages=[earlier], contacts=[meta.contact("34612345678")]))).status_code
        == 200
    )
    existing = db.session.execute(select(Conversation.id)).scalar_one()
    response = _start(client, auth, _body("+34 612 34 56 78"))
    assert response.status_code == 409
    assert response.json["error"] == "conversation_exists" and response.json["conversation_id"] == existing
    assert graph.sent(POST_MESSAGES) == []
    assert _counts() == (1, 1, 1)


def test_starting_twice_is_409_the_second_time(client, auth, graph, template):
    first = _start(client, auth, _body("612 345 678"))
    assert first.status_code == 201
    second = _start(client, auth, _body("+34612345678"))
    assert second.status_code == 409 and second.json["conversation_id"] == first.json["conversation"]["id"]
    assert len(graph.sent(POST_MESSAGES)) == 1


@pytest.mark.parametrize("typed", ["12345", "+34 612", "abc", "+999 1234 5678", "612 345 67 8 9 0 1", "6" * 70])
def test_an_invalid_number_is_400_invalid_phone_and_changes_nothing(client, auth, graph, template, typed):
    response = _start(client, auth, _body(typed))
    assert response.status_code == 400
    assert response.json["error"] in ("invalid_phone", "invalid_body"), response.json
    assert response.json["message"]
    assert graph.sent(POST_MESSAGES) == []
    assert _counts() == (0, 0, 0)


def test_the_invalid_phone_message_says_what_is_wrong(client, auth, graph, template):
    response = _start(client, auth, _body("12345"))
    assert response.json["error"] == "invalid_phone"
    assert "'12345' is not a valid phone number in ES" in response.json["message"]


def test_the_default_region_reads_national_numbers(app, client, auth, graph, template, monkeypatch):
    monkeypatch.setitem(app.config, "DEFAULT_PHONE_REGION", "AR")
    response = _start(client, auth, _body("011 15-1234-5678"))
    assert response.status_code == 201, response.json
    assert graph.sent(POST_MESSAGES)[0].body["to"] == "5491112345678"


@pytest.mark.parametrize(
    "body",
    [
        {"phone": "612 345 678"},  # only a template can open a conversation
        {"phone": "612 345 678", "type": "text", "text": "Hola"},
        {"template": {"name": "bienvenida", "parameters": {"body.1": "Ana"}}},
        {"phone": 612345678, "template": {"name": "bienvenida", "parameters": {"body.1": "Ana"}}},
        {"phone": "612 345 678", "name": "   ", "template": {"name": "bienvenida", "parameters": {"body.1": "A"}}},
        {"phone": "612 345 678", "name": "x" * 201, "template": {"name": "bienvenida", "parameters": {"body.1": "A"}}},
    ],
)
def test_bad_start_bodies_are_400_and_change_nothing(client, auth, graph, template, body):
    response = _start(client, auth, body)
    assert response.status_code == 400 and response.json["error"] == "invalid_body", response.json
    assert graph.sent(POST_MESSAGES) == [] and _counts() == (0, 0, 0)


def test_an_unknown_template_or_missing_placeholder_is_400_and_changes_nothing(client, auth, graph, template):
    unknown = _start(client, auth, {"phone": "612 345 678", "template": {"name": "nope", "language": "es"}})
    assert unknown.status_code == 400 and unknown.json["error"] == "unknown_template"
    missing = _start(client, auth, {"phone": "612 345 678", "template": {"name": "bienvenida", "language": "es"}})
    assert missing.status_code == 400 and missing.json["error"] == "missing_parameters"
    assert missing.json["missing"] == ["body.1"]
    assert graph.sent(POST_MESSAGES) == [] and _counts() == (0, 0, 0)


def test_graph_refusing_the_template_keeps_the_conversation_with_a_failed_message(client, auth, graph, template):
    graph.script(POST_MESSAGES, error(131026))
    response = _start(client, auth, _body("612 345 678"))
    assert response.status_code == 502
    body = response.json
    assert body["error"] == "graph_error" and body["graph_error"]["code"] == 131026
    assert body["stored_message"]["status"] == "failed"
    conversation = client.get(f"{START}/{body['conversation_id']}", headers=auth).json
    assert conversation["last_message"]["id"] == body["message_id"]
    retried = client.post(f"{START}/{body['conversation_id']}/mensajes/{body['message_id']}/reintentar", headers=auth)
    assert retried.status_code == 201, retried.json


def test_the_same_idempotency_key_answers_the_first_result_and_sends_once(client, auth, graph, template):
    first = _start(client, auth, _body("612 345 678"), **{"Idempotency-Key": "start-1"})
    again = _start(client, auth, _body("612 345 678"), **{"Idempotency-Key": "start-1"})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    assert len(graph.sent(POST_MESSAGES)) == 1
    assert db.session.scalar(select(func.count()).select_from(SendAttempt)) == 1
    key = db.session.execute(select(IdempotencyKey)).scalar_one()
    assert key.message_id == first.json["message"]["id"]


def test_a_refusal_is_kept_on_the_key_and_a_key_reused_for_another_body_is_422(client, auth, graph, template):
    refused = _start(client, auth, _body("12345"), **{"Idempotency-Key": "start-2"})
    replay = _start(client, auth, _body("12345"), **{"Idempotency-Key": "start-2"})
    assert refused.status_code == replay.status_code == 400 and replay.headers["Idempotent-Replayed"] == "true"
    other = _start(client, auth, _body("612 345 678"), **{"Idempotency-Key": "start-2"})
    assert other.status_code == 422 and other.json["error"] == "idempotency_key_reused"
    assert _counts() == (0, 0, 0)


def test_without_a_business_number_configured_it_is_503_not_configured(app, client, auth, graph, template, monkeypatch):
    monkeypatch.setitem(app.config, "WHATSAPP_PHONE_NUMBER_ID", "")
    response = _start(client, auth, _body("612 345 678"))
    assert response.status_code == 503 and response.json["error"] == "not_configured"
    assert _counts() == (0, 0, 0)


def test_starting_needs_credentials(client, graph, template):
    assert client.post(START, json=_body("612 345 678")).status_code == 401
    assert _counts() == (0, 0, 0)


def test_every_answer_is_as_documented(client, auth, graph, template):
    assert_documented(_start(client, auth, _body("612 345 678")), "/whatsapp/api/conversaciones", "post")
    assert_documented(_start(client, auth, _body("612 345 678")), "/whatsapp/api/conversaciones", "post")  # 409
    assert_documented(_start(client, auth, _body("12345")), "/whatsapp/api/conversaciones", "post")  # 400
    graph.script(POST_MESSAGES, error(131026))
    assert_documented(_start(client, auth, _body("+34 622 34 56 78")), "/whatsapp/api/conversaciones", "post")

"""Working a conversation through the API, with the fake Graph server: mark read (and Meta's
read receipt), status / assignee / mark unread, private notes, canned responses."""

from __future__ import annotations

import itertools
import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, func, select, update

from app.extensions import db
from app.models import CannedResponse, Conversation, Message
from app.services import agents as agent_service
from tests import meta
from tests.fake_graph import MARK_READ, delay, error, server_error
from tests.test_openapi import assert_documented

API = "/whatsapp/api"
WA_ID = "5491155550001"
OTHER_NUMBER_ID = "109999999999999"


def _deliver(post_webhook, *messages: dict, phone_number_id: str = meta.PHONE_NUMBER_ID) -> None:
    response = post_webhook(meta.delivery(meta.value(messages=list(messages), phone_number_id=phone_number_id)))
    assert response.status_code == 200, response.json


def _customer_messages(count: int, start: int | None = None) -> list[dict]:
    start = start or int(time.time()) - 600
    return [meta.message(ts=start + i, content={"body": f"mensaje {i}"}) for i in range(count)]


@pytest.fixture
def conversation(post_webhook) -> dict:
    """Three unread customer messages (window open) and a reaction after them."""
    messages = _customer_messages(3)
    reaction = meta.message(
        "reaction", ts=int(time.time()) - 300, content={"message_id": messages[0]["id"], "emoji": "👍"}
    )
    _deliver(post_webhook, *messages, reaction)
    conversation_id = db.session.execute(select(Conversation.id)).scalar_one()
    return {"id": conversation_id, "newest_wamid": messages[-1]["id"]}


def _row(conversation_id: int) -> Conversation:
    db.session.expire_all()
    return db.session.get(Conversation, conversation_id)


def _snapshot(conversation_id: int) -> tuple:
    c = _row(conversation_id)
    return (
        c.status,
        c.assignee_id,
        c.unread_count,
        c.updated_at,
        c.last_activity_at,
        c.last_message_id,
        c.last_message_at,
        c.last_agent_message_id,
        c.last_customer_message_at,
    )


def _read_flags(conversation_id: int) -> list[bool]:
    return list(
        db.session.execute(
            select(Message.is_read)
            .where(Message.conversation_id == conversation_id, Message.direction == "in")
            .order_by(Message.sent_at, Message.id)
        ).scalars()
    )


def _age_updated_at(conversation_id: int) -> datetime:
    old = datetime.now(UTC) - timedelta(days=1)
    db.session.execute(update(Conversation).where(Conversation.id == conversation_id).values(updated_at=old))
    db.session.commit()
    return old


def _receipts(result: str) -> float:
    return REGISTRY.get_sample_value("inbox_read_receipts_total", {"result": result}) or 0.0


def _graph_calls(result: str) -> float:
    labels = {"operation": "mark_read", "result": result}
    return REGISTRY.get_sample_value("inbox_graph_requests_total", labels) or 0.0


# --- auth -----------------------------------------------------------------------------------

ROUTES = [
    ("POST", f"{API}/conversaciones/1/leido", "/whatsapp/api/conversaciones/{conversation_id}/leido"),
    ("PATCH", f"{API}/conversaciones/1", "/whatsapp/api/conversaciones/{conversation_id}"),
    ("POST", f"{API}/conversaciones/1/notas", "/whatsapp/api/conversaciones/{conversation_id}/notas"),
    ("GET", f"{API}/respuestas", "/whatsapp/api/respuestas"),
    ("POST", f"{API}/respuestas", "/whatsapp/api/respuestas"),
    ("DELETE", f"{API}/respuestas/1", "/whatsapp/api/respuestas/{canned_id}"),
]


@pytest.mark.parametrize(("method", "url", "documented"), ROUTES)
def test_every_route_needs_credentials(client, graph, conversation, method, url, documented):
    before = _snapshot(conversation["id"])
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = client.open(url, method=method, json={"status": "resolved", "text": "x"}, headers=headers)
        assert response.status_code == 401 and response.json["error"] == "unauthorized"
        assert_documented(response, documented, method.lower())
    assert graph.requests == [] and _snapshot(conversation["id"]) == before


# --- mark read and the read receipt ---------------------------------------------------------


def test_mark_read_clears_unread_and_sends_a_receipt_for_the_newest_customer_message(client, auth, graph, conversation):
    assert _row(conversation["id"]).unread_count == 3
    response = client.post(f"{API}/conversaciones/{conversation['id']}/leido", headers=auth)
    assert response.status_code == 200
    assert response.json == {"unread_count": 0, "read_receipt": "sent"}
    assert_documented(response, "/whatsapp/api/conversaciones/{conversation_id}/leido", "post")
    [receipt] = graph.sent(MARK_READ)
    assert receipt.path == f"/v25.0/{meta.PHONE_NUMBER_ID}/messages"
    # The newest message the customer wrote, not the newer reaction.
    assert receipt.body == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": conversation["newest_wamid"],
    }
    assert _row(conversation["id"]).unread_count == 0
    assert _read_flags(conversation["id"]) == [True, True, True, True]
    listed = client.get(f"{API}/conversaciones/{conversation['id']}", headers=auth).json
    assert listed["unread_count"] == 0


def test_marking_read_again_sends_no_second_receipt(client, auth, graph, conversation):
    url = f"{API}/conversaciones/{conversation['id']}/leido"
    sent, not_needed = _receipts("sent"), _receipts("not_needed")
    assert client.post(url, headers=auth).json["read_receipt"] == "sent"
    again = client.post(url, headers=auth)
    assert again.status_code == 200 and again.json == {"unread_count": 0, "read_receipt": "not_needed"}
    assert len(graph.sent(MARK_READ)) == 1
    assert (_receipts("sent"), _receipts("not_needed")) == (sent + 1, not_needed + 1)


def test_a_new_customer_message_gets_its_own_receipt(client, auth, graph, conversation, post_webhook):
    url = f"{API}/conversaciones/{conversation['id']}/leido"
    client.post(url, headers=auth)
    newer = meta.message(content={"body": "¿Hola?"})
    _deliver(post_webhook, newer)
    assert _row(conversation["id"]).unread_count == 1
    assert client.post(url, headers=auth).json == {"unread_count": 0, "read_receipt": "sent"}
    assert [r.body["message_id"] for r in graph.sent(MARK_READ)] == [conversation["newest_wamid"], newer["id"]]


def test_a_reaction_alone_does_not_need_a_receipt(client, auth, graph, conversation, post_webhook):
    url = f"{API}/conversaciones/{conversation['id']}/leido"
    client.post(url, headers=auth)
    _deliver(post_webhook, meta.message("reaction", content={"message_id": conversation["newest_wamid"], "emoji": "❤️"}))
    assert client.post(url, headers=auth).json == {"unread_count": 0, "read_receipt": "not_needed"}
    assert len(graph.sent(MARK_READ)) == 1
    assert all(_read_flags(conversation["id"]))


def test_the_receipt_goes_out_from_the_conversations_own_business_number(client, auth, graph, post_webhook):
    [message] = _customer_messages(1)
    _deliver(post_webhook, message, phone_number_id=OTHER_NUMBER_ID)
    conversation_id = db.session.execute(select(Conversation.id)).scalar_one()
    assert client.post(f"{API}/conversaciones/{conversation_id}/leido", headers=auth).json["read_receipt"] == "sent"
    [receipt] = graph.sent(MARK_READ)
    assert receipt.path == f"/v25.0/{OTHER_NUMBER_ID}/messages" and receipt.body["message_id"] == message["id"]


@pytest.mark.parametrize(
    ("answers", "calls", "code"),
    [
        ([error(190)], 1, "190"),  # expired token: not retried
        ([server_error(), server_error(), server_error()], 3, "2"),  # Graph down: bounded retries
    ],
)
def test_graph_failure_keeps_the_local_read_and_answers_200(
    client, auth, graph, conversation, caplog, answers, calls, code
):
    graph.script(MARK_READ, *answers)
    failures_before = _receipts("failed")
    graph_errors_before = _graph_calls(code)
    with caplog.at_level(logging.WARNING, logger="app.services.conversation_actions"):
        response = client.post(f"{API}/conversaciones/{conversation['id']}/leido", headers=auth)
    assert response.status_code == 200
    assert response.json == {"unread_count": 0, "read_receipt": "failed"}
    assert_documented(response, "/whatsapp/api/conversaciones/{conversation_id}/leido", "post")
    assert len(graph.sent(MARK_READ)) == calls
    assert _row(conversation["id"]).unread_count == 0 and all(_read_flags(conversation["id"]))
    assert _receipts("failed") == failures_before + 1
    assert _graph_calls(code) == graph_errors_before + calls  # every try, by Meta's code
    [record] = [r for r in caplog.records if r.name == "app.services.conversation_actions"]
    assert record.levelno == logging.WARNING and f"code={code}" in record.getMessage()


def test_a_transient_graph_error_is_retried_and_the_receipt_sent(client, auth, graph, conversation):
    graph.script(MARK_READ, server_error(503))
    response = client.post(f"{API}/conversaciones/{conversation['id']}/leido", headers=auth)
    assert response.json == {"unread_count": 0, "read_receipt": "sent"}
    assert len(graph.sent(MARK_READ)) == 2


def test_mark_read_of_an_unknown_conversation_is_404(client, auth, graph):
    for conversation_id in (999999, 2**31, 2**40):
        response = client.post(f"{API}/conversaciones/{conversation_id}/leido", headers=auth)
        assert response.status_code == 404 and response.json["error"] == "not_found"
    assert graph.requests == []


# --- status, assignee, mark unread ----------------------------------------------------------


def _patch(client, auth, conversation_id: int, body, **kwargs):  # type: ignore[no-untyped-def]
    return client.patch(f"{API}/conversaciones/{conversation_id}", json=body, headers=auth, **kwargs)


@pytest.mark.parametrize("status", ["pending", "resolved", "open"])
def test_patch_sets_the_status_and_answers_the_summary(client, auth, graph, conversation, status):
    old = _age_updated_at(conversation["id"])
    activity = _row(conversation["id"]).last_activity_at
    response = _patch(client, auth, conversation["id"], {"status": status})
    assert response.status_code == 200, response.json
    assert_documented(response, "/whatsapp/api/conversaciones/{conversation_id}", "patch")
    assert response.json["status"] == status and response.json["id"] == conversation["id"]
    assert response.json == client.get(f"{API}/conversaciones/{conversation['id']}", headers=auth).json
    row = _row(conversation["id"])
    assert row.status == status
    assert row.updated_at > old
    assert row.last_activity_at == activity  # triage does not reorder the list
    assert graph.requests == []


def test_patch_assigns_reassigns_and_unassigns(client, auth, agent, other_agent, conversation):
    response = _patch(client, auth, conversation["id"], {"assignee": other_agent.id})
    assert response.json["assignee"] == {"id": other_agent.id, "name": "Beto"}
    mine = client.get(f"{API}/conversaciones", headers=auth, query_string={"assignee": str(other_agent.id)})
    assert [c["id"] for c in mine.json["conversations"]] == [conversation["id"]]
    response = _patch(client, auth, conversation["id"], {"assignee": agent.id, "status": "pending"})
    assert response.json["assignee"]["id"] == agent.id and response.json["status"] == "pending"
    response = _patch(client, auth, conversation["id"], {"assignee": None})
    assert response.status_code == 200 and response.json["assignee"] is None
    assert _row(conversation["id"]).assignee_id is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "closed"},
        {"status": "OPEN"},
        {"status": None},
        {"assignee": "1"},
        {"assignee": True},
        {"assignee": 0},
        {"assignee": -3},
        {"assignee": 1.5},
        {"assignee": 999999},
        {"assignee": 2**31},
        {"unread": False},
        {"unread": "true"},
        {"unread": 1},
        {"unread": None},
        {"assignee": 2**63},
        {"colour": "red"},
        {"status": "resolved", "priority": "high"},
        {"status": "resolved", "assignee": 999999},
        [],
        "resolved",
    ],
)
def test_bad_patches_are_400_and_change_nothing(client, auth, graph, conversation, body):
    before = _snapshot(conversation["id"])
    response = _patch(client, auth, conversation["id"], body)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid_body" and response.json["message"]
    assert_documented(response, "/whatsapp/api/conversaciones/{conversation_id}", "patch")
    assert _snapshot(conversation["id"]) == before and graph.requests == []


def test_patch_that_is_not_json_is_400(client, auth, conversation):
    before = _snapshot(conversation["id"])
    for kwargs in ({"data": "status=resolved"}, {"data": "{", "content_type": "application/json"}):
        response = client.patch(f"{API}/conversaciones/{conversation['id']}", headers=auth, **kwargs)
        assert response.status_code == 400 and "JSON" in response.json["message"]
    assert _snapshot(conversation["id"]) == before


def test_an_inactive_agent_cannot_be_assigned(client, auth, other_agent, conversation):
    agent_service.deactivate_agent(other_agent.email)
    before = _snapshot(conversation["id"])
    response = _patch(client, auth, conversation["id"], {"assignee": other_agent.id})
    assert response.status_code == 400 and "active agent" in response.json["message"]
    assert _snapshot(conversation["id"]) == before


def test_patch_of_an_unknown_conversation_is_404(client, auth):
    response = _patch(client, auth, 999999, {"status": "resolved"})
    assert response.status_code == 404 and response.json["error"] == "not_found"
    assert_documented(response, "/whatsapp/api/conversaciones/{conversation_id}", "patch")
    assert _patch(client, auth, 2**31, {"status": "resolved"}).status_code == 404


def test_mark_unread_flags_the_newest_customer_message(client, auth, graph, conversation):
    client.post(f"{API}/conversaciones/{conversation['id']}/leido", headers=auth)
    old = _age_updated_at(conversation["id"])
    response = _patch(client, auth, conversation["id"], {"unread": True})
    assert response.status_code == 200 and response.json["unread_count"] == 1
    assert _read_flags(conversation["id"]) == [True, True, False, True]  # the reaction stays read
    assert _row(conversation["id"]).updated_at > old
    unread = client.get(f"{API}/conversaciones", headers=auth, query_string={"unread": "true"}).json
    assert [c["id"] for c in unread["conversations"]] == [conversation["id"]]
    # Marking unread twice keeps one; reading it again sends one more receipt.
    assert _patch(client, auth, conversation["id"], {"unread": True}).json["unread_count"] == 1
    assert client.post(f"{API}/conversaciones/{conversation['id']}/leido", headers=auth).json["read_receipt"] == "sent"
    assert len(graph.sent(MARK_READ)) == 2


def test_mark_unread_of_an_unread_conversation_keeps_the_exact_count(client, auth, conversation):
    response = _patch(client, auth, conversation["id"], {"unread": True, "status": "pending"})
    assert response.json["unread_count"] == 3 and response.json["status"] == "pending"


def test_mark_unread_without_any_customer_message_is_409(client, auth, conversation):
    db.session.execute(
        update(Message).where(Message.conversation_id == conversation["id"]).values(direction="out", sender="agent")
    )
    db.session.execute(update(Conversation).values(unread_count=0))
    db.session.commit()
    before = _snapshot(conversation["id"])
    response = _patch(client, auth, conversation["id"], {"unread": True, "status": "resolved"})
    assert response.status_code == 409 and response.json["error"] == "nothing_to_mark_unread"
    assert_documented(response, "/whatsapp/api/conversaciones/{conversation_id}", "patch")
    assert _snapshot(conversation["id"]) == before


# --- private notes --------------------------------------------------------------------------


def _note(client, auth, conversation_id: int, body):  # type: ignore[no-untyped-def]
    return client.post(f"{API}/conversaciones/{conversation_id}/notas", json=body, headers=auth)


def _notes() -> list[Message]:
    return list(db.session.execute(select(Message).where(Message.type == "note")).scalars())


def test_a_note_is_stored_shown_in_the_thread_and_never_sent(client, auth, agent, graph, conversation):
    before = _snapshot(conversation["id"])
    response = _note(client, auth, conversation["id"], {"text": "Cliente VIP: ofrecer envío gratis"})
    assert response.status_code == 201, response.json
    assert_documented(response, "/whatsapp/api/conversaciones/{conversation_id}/notas", "post")
    body = response.json
    assert body["type"] == "note" and body["text"] == "Cliente VIP: ofrecer envío gratis"
    assert (body["direction"], body["status"], body["wamid"]) == ("out", None, None)
    assert body["sender"] == {"type": "agent", "agent": {"id": agent.id, "name": agent.name}}
    assert graph.requests == []  # nothing reached WhatsApp

    [note] = _notes()
    assert (note.agent_id, note.direction, note.sender, note.status, note.wamid) == (
        agent.id,
        "out",
        "agent",
        None,
        None,
    )
    thread = client.get(f"{API}/conversaciones/{conversation['id']}/mensajes", headers=auth).json["messages"]
    assert thread[-1]["id"] == note.id and thread[-1]["type"] == "note"

    after = _snapshot(conversation["id"])
    # Preview, last agent message, unread count, window and list order are untouched.
    assert after[:3] == before[:3] and after[4:] == before[4:]
    summary = client.get(f"{API}/conversaciones/{conversation['id']}", headers=auth).json
    assert summary["last_message"]["direction"] == "in" and summary["last_agent_message"] is None
    assert summary["unread_count"] == 3


def test_a_note_keeps_a_closed_window_closed(client, auth, graph, conversation):
    closed = datetime.now(UTC) - timedelta(hours=30)
    db.session.execute(update(Conversation).values(last_customer_message_at=closed))
    db.session.commit()
    assert _note(client, auth, conversation["id"], {"text": "Llamar por teléfono"}).status_code == 201
    response = client.post(
        f"{API}/conversaciones/{conversation['id']}/mensajes", json={"type": "text", "text": "Hola"}, headers=auth
    )
    assert response.status_code == 409 and response.json["error"] == "window_closed"
    assert graph.requests == []


def test_a_note_of_4096_characters_is_accepted(client, auth, conversation):
    assert _note(client, auth, conversation["id"], {"text": "x" * 4096}).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": ""},
        {"text": "  \n "},
        {"text": "x" * 4097},
        {"text": 5},
        {"text": "a\x00b"},
        {"text": "x", "to": 1},
        [],
    ],
)
def test_bad_notes_are_400_and_store_nothing(client, auth, graph, conversation, body):
    before = _snapshot(conversation["id"])
    response = _note(client, auth, conversation["id"], body)
    assert response.status_code == 400 and response.json["message"]
    assert_documented(response, "/whatsapp/api/conversaciones/{conversation_id}/notas", "post")
    assert _notes() == [] and _snapshot(conversation["id"]) == before and graph.requests == []


def test_a_note_that_is_not_json_or_for_an_unknown_conversation_is_refused(client, auth, conversation):
    url = f"{API}/conversaciones/{conversation['id']}/notas"
    assert client.post(url, data="hola", headers=auth).status_code == 400
    response = _note(client, auth, 999999, {"text": "hola"})
    assert response.status_code == 404
    assert_documented(response, "/whatsapp/api/conversaciones/{conversation_id}/notas", "post")
    assert _notes() == []


# --- canned responses -----------------------------------------------------------------------


def _create(client, auth, short_code, text="Hola, gracias por escribirnos."):  # type: ignore[no-untyped-def]
    return client.post(f"{API}/respuestas", json={"short_code": short_code, "text": text}, headers=auth)


def _canned_count() -> int:
    return db.session.execute(select(func.count()).select_from(CannedResponse)).scalar_one()


def test_create_and_list_canned_responses(client, auth, agent):
    response = _create(client, auth, "saludo", "¡Hola! ¿En qué podemos ayudarte?")
    assert response.status_code == 201, response.json
    assert_documented(response, "/whatsapp/api/respuestas", "post")
    created = response.json
    assert created["short_code"] == "saludo" and created["text"] == "¡Hola! ¿En qué podemos ayudarte?"
    assert created["created_by"] == {"id": agent.id, "name": agent.name}
    assert isinstance(created["id"], int) and created["created_at"]
    _create(client, auth, "Horario", "Atendemos de 9 a 18.")
    _create(client, auth, "envio_gratis", "El envío es gratis desde $50.000.")

    listed = client.get(f"{API}/respuestas", headers=auth)
    assert listed.status_code == 200
    assert_documented(listed, "/whatsapp/api/respuestas")
    assert [c["short_code"] for c in listed.json["canned_responses"]] == ["envio_gratis", "horario", "saludo"]
    assert listed.json["canned_responses"][2] == created


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("s", ["saludo"]),
        ("HOR", ["horario"]),
        ("atendemos", ["horario"]),  # text prefix
        ("el env", ["envio_gratis"]),
        ("gratis", []),  # a prefix, not anywhere in the text
        ("", ["envio_gratis", "horario", "saludo"]),
        ("%", []),
        ("_", []),
    ],
)
def test_canned_responses_filter_by_short_code_or_text_prefix(client, auth, q, expected):
    _create(client, auth, "saludo", "¡Hola! ¿En qué podemos ayudarte?")
    _create(client, auth, "horario", "Atendemos de 9 a 18.")
    _create(client, auth, "envio_gratis", "El envío es gratis desde $50.000.")
    response = client.get(f"{API}/respuestas", headers=auth, query_string={"q": q})
    assert response.status_code == 200
    assert [c["short_code"] for c in response.json["canned_responses"]] == expected


@pytest.mark.parametrize("q", ["x" * 101, "a\x00b"])
def test_bad_canned_query_is_400(client, auth, q):
    response = client.get(f"{API}/respuestas", headers=auth, query_string={"q": q})
    assert response.status_code == 400 and response.json["parameter"] == "q"
    assert_documented(response, "/whatsapp/api/respuestas")


@pytest.mark.parametrize("duplicate", ["saludo", "SALUDO", "Saludo"])
def test_short_codes_are_unique_regardless_of_case(client, auth, duplicate):
    assert _create(client, auth, "saludo").status_code == 201
    response = _create(client, auth, duplicate, "Otro texto")
    assert response.status_code == 409 and response.json["error"] == "duplicate_short_code"
    assert_documented(response, "/whatsapp/api/respuestas", "post")
    assert _canned_count() == 1
    assert db.session.execute(select(CannedResponse.text)).scalar_one() == "Hola, gracias por escribirnos."


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": "hola"},
        {"short_code": "", "text": "hola"},
        {"short_code": "x" * 33, "text": "hola"},
        {"short_code": "hola mundo", "text": "hola"},
        {"short_code": "/hola", "text": "hola"},
        {"short_code": "señas", "text": "hola"},
        {"short_code": 5, "text": "hola"},
        {"short_code": "hola"},
        {"short_code": "hola", "text": ""},
        {"short_code": "hola", "text": "   "},
        {"short_code": "hola", "text": "x" * 4097},
        {"short_code": "hola", "text": ["x"]},
        {"short_code": "hola", "text": "hola", "shared": True},
        {"short_code": "hola\n", "text": "hola"},
        {"short_code": "hola", "text": "a\x00b"},
        [],
    ],
)
def test_bad_canned_responses_are_400_and_store_nothing(client, auth, body):
    response = client.post(f"{API}/respuestas", json=body, headers=auth)
    assert response.status_code == 400 and response.json["message"]
    assert_documented(response, "/whatsapp/api/respuestas", "post")
    assert _canned_count() == 0


def test_canned_response_limits_are_inclusive(client, auth):
    assert _create(client, auth, "a" * 32, "x" * 4096).status_code == 201
    assert _create(client, auth, "a-b_9", "x").status_code == 201
    response = client.post(f"{API}/respuestas", data="short_code=hola", headers=auth)
    assert response.status_code == 400 and _canned_count() == 2


def test_delete_a_canned_response(client, auth, other_agent):
    keep = _create(client, auth, "horario").json
    stale = _create(client, auth, "promo_navidad").json
    response = client.delete(f"{API}/respuestas/{stale['id']}", headers=auth)
    assert response.status_code == 204 and response.get_data() == b""
    assert_documented(response, "/whatsapp/api/respuestas/{canned_id}", "delete")
    assert [c["id"] for c in client.get(f"{API}/respuestas", headers=auth).json["canned_responses"]] == [keep["id"]]
    again = client.delete(f"{API}/respuestas/{stale['id']}", headers=auth)
    assert again.status_code == 404 and again.json["error"] == "not_found"
    assert_documented(again, "/whatsapp/api/respuestas/{canned_id}", "delete")
    assert client.delete(f"{API}/respuestas/{2**31}", headers=auth).status_code == 404
    assert _canned_count() == 1
    # The short code is free again.
    assert _create(client, auth, "PROMO_NAVIDAD").status_code == 201


def test_no_transaction_is_open_while_graph_is_called(client, auth, graph, conversation):
    events: list[tuple[str, float]] = []

    def began(session, transaction, connection):  # type: ignore[no-untyped-def]
        events.append(("begin", time.monotonic()))

    def ended(session):  # type: ignore[no-untyped-def]
        events.append(("end", time.monotonic()))

    graph.script(MARK_READ, delay(0.3))
    event.listen(db.session, "after_begin", began)
    event.listen(db.session, "after_commit", ended)
    event.listen(db.session, "after_rollback", ended)
    try:
        response = client.post(f"{API}/conversaciones/{conversation['id']}/leido", headers=auth)
        events.append(("begin", time.monotonic()))  # the request is over: nothing after this
    finally:
        event.remove(db.session, "after_begin", began)
        event.remove(db.session, "after_commit", ended)
        event.remove(db.session, "after_rollback", ended)
    assert response.json["read_receipt"] == "sent"
    # The Graph call (>= 0.3 s) runs after a commit and before any transaction begins again
    # (or the request ends).
    gaps = [later[1] - end[1] for end, later in itertools.pairwise(events) if end[0] == "end" and later[0] == "begin"]
    assert any(gap >= 0.3 for gap in gaps), events


@pytest.mark.parametrize("q", ["%00", "a%00b", "%10t%00%C3%A4%F4%89%B7%88"])
def test_a_canned_response_search_with_a_nul_character_is_400(client, auth, q):
    response = client.get(f"/whatsapp/api/respuestas?q={q}", headers=auth)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_parameter"

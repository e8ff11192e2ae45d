"""Bulk actions: `POST /conversaciones/lote` applies one action to several conversations, all or
nothing in one transaction, with the single actions' rules."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Contact, Conversation, ConversationLabel, Message
from app.services import agents as agent_service
from tests import meta
from tests.fake_graph import MARK_READ, error
from tests.test_openapi import assert_documented

API = "/whatsapp/api"
URL = f"{API}/conversaciones/lote"
PATH = "/whatsapp/api/conversaciones/lote"


def _conversation(post_webhook, wa_id: str, unread: int = 1) -> int:
    now = int(time.time())
    messages = [meta.message(sender=wa_id, ts=now - 10 + i, content={"body": f"m{i}"}) for i in range(unread)]
    response = post_webhook(meta.delivery(meta.value(messages=messages, contacts=[meta.contact(wa_id, wa_id)])))
    assert response.status_code == 200
    return db.session.execute(
        select(Conversation.id).join(Contact, Contact.id == Conversation.contact_id).where(Contact.wa_id == wa_id)
    ).scalar_one()


@pytest.fixture
def three(post_webhook) -> list[int]:
    return [_conversation(post_webhook, f"54911800000{i:02d}", unread=i + 1) for i in range(3)]


def _state(ids: list[int]) -> list[tuple]:
    db.session.expire_all()
    rows = {c.id: c for c in db.session.execute(select(Conversation).where(Conversation.id.in_(ids))).scalars()}
    labels = {(r.conversation_id, r.label_id) for r in db.session.execute(select(ConversationLabel)).scalars()}
    unread_messages = db.session.execute(
        select(Message.id).where(Message.conversation_id.in_(ids), Message.is_read.is_(False))
    ).all()
    return [
        *((rows[i].status, rows[i].assignee_id, rows[i].unread_count, rows[i].updated_at) for i in ids),
        (frozenset(labels), len(unread_messages)),
    ]


def _post(client, auth, body):  # type: ignore[no-untyped-def]
    response = client.post(URL, json=body, headers=auth)
    assert_documented(response, PATH, "post")
    return response


@pytest.mark.parametrize(("action", "status"), [("resolve", "resolved"), ("pending", "pending"), ("reopen", "open")])
def test_status_actions_apply_to_every_conversation(client, auth, three, action, status):
    if action == "reopen":
        _post(client, auth, {"ids": three, "action": "resolve"})
    response = _post(client, auth, {"ids": three, "action": action})
    assert response.status_code == 200
    body = response.json
    assert body["action"] == action and body["updated"] == 3 and body["read_receipts"] is None
    assert [c["id"] for c in body["conversations"]] == three
    assert all(c["status"] == status for c in body["conversations"])


def test_assign_unassign_label_unlabel(client, auth, agent, other_agent, three):
    assigned = _post(client, auth, {"ids": three[:2], "action": "assign", "assignee_id": other_agent.id}).json
    assert [c["assignee"]["id"] for c in assigned["conversations"]] == [other_agent.id] * 2
    assert client.get(f"{API}/conversaciones/{three[2]}", headers=auth).json["assignee"] is None
    unassigned = _post(client, auth, {"ids": three[:1], "action": "unassign"}).json
    assert unassigned["conversations"][0]["assignee"] is None
    label = client.post(f"{API}/etiquetas", json={"name": "Lote", "color": "#8250df"}, headers=auth).json["id"]
    client.patch(f"{API}/conversaciones/{three[0]}", json={"labels": [label]}, headers=auth)
    labelled = _post(client, auth, {"ids": three, "action": "label", "label_id": label}).json  # one had it already
    assert all([item["id"] for item in c["labels"]] == [label] for c in labelled["conversations"])
    listed = client.get(f"{API}/conversaciones", headers=auth, query_string={"label": label}).json
    assert listed["pagination"]["total"] == 3
    _post(client, auth, {"ids": three[1:], "action": "unlabel", "label_id": label})
    listed = client.get(f"{API}/conversaciones", headers=auth, query_string={"label": label}).json
    assert [c["id"] for c in listed["conversations"]] == [three[0]]


def test_read_marks_every_conversation_read_and_sends_the_receipts(client, auth, graph, three):
    graph.script(MARK_READ, error(190))  # the first receipt fails (not retried); the local read stands
    body = _post(client, auth, {"ids": three, "action": "read"}).json
    assert all(c["unread_count"] == 0 for c in body["conversations"])
    assert body["read_receipts"] == {"sent": 2, "failed": 1, "not_needed": 0}
    assert len(graph.sent(MARK_READ)) == 3
    again = _post(client, auth, {"ids": three, "action": "read"}).json
    assert again["read_receipts"] == {"sent": 0, "failed": 0, "not_needed": 3}


def test_unread_flags_each_conversation_unread(client, auth, three):
    _post(client, auth, {"ids": three, "action": "read"})
    body = _post(client, auth, {"ids": three, "action": "unread"}).json
    assert [c["unread_count"] for c in body["conversations"]] == [1, 1, 1]


def test_a_repeated_id_counts_once(client, auth, three):
    body = _post(client, auth, {"ids": [three[0], three[0], three[1]], "action": "resolve"}).json
    assert body["updated"] == 2 and [c["id"] for c in body["conversations"]] == three[:2]


def test_one_unknown_conversation_changes_nothing_and_is_named(client, auth, three):
    before = _state(three)
    missing = [three[-1] + 1000, three[-1] + 2000]
    response = _post(client, auth, {"ids": [*three, *missing], "action": "resolve"})
    assert response.status_code == 404
    assert response.json["error"] == "not_found" and response.json["unknown"] == missing
    assert str(missing[0]) in response.json["message"]
    assert _state(three) == before


def test_an_unknown_label_or_inactive_agent_changes_nothing(client, auth, other_agent, three):
    before = _state(three)
    response = _post(client, auth, {"ids": three, "action": "label", "label_id": 999999})
    assert response.status_code == 400 and response.json["error"] == "unknown_labels"
    assert response.json["unknown"] == [999999]
    agent_service.deactivate_agent(other_agent.email)
    refused = _post(client, auth, {"ids": three, "action": "assign", "assignee_id": other_agent.id})
    assert refused.status_code == 400 and "assignee_id" in refused.json["message"]
    assert _state(three) == before


def test_unread_where_the_customer_never_wrote_is_409_and_changes_nothing(client, auth, three):
    silent = db.session.execute(select(Conversation).where(Conversation.id == three[0])).scalar_one()
    db.session.execute(Message.__table__.delete().where(Message.conversation_id == silent.id))
    db.session.execute(
        Conversation.__table__.update()
        .where(Conversation.id == silent.id)
        .values(last_message_id=None, unread_count=0, last_customer_message_at=None)
    )
    db.session.commit()
    before = _state(three)
    response = _post(client, auth, {"ids": three, "action": "unread"})
    assert response.status_code == 409 and response.json["error"] == "nothing_to_mark_unread"
    assert response.json["unknown"] == [three[0]]
    assert _state(three) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": [], "action": "resolve"},
        {"ids": list(range(1, 102)), "action": "resolve"},
        {"ids": [1], "action": "archive"},
        {"ids": [1]},
        {"ids": "1", "action": "resolve"},
        {"ids": ["1"], "action": "resolve"},
        {"ids": [0], "action": "resolve"},
        {"ids": [True], "action": "resolve"},
        {"ids": [2**31], "action": "resolve"},
        {"ids": [1], "action": "assign"},
        {"ids": [1], "action": "label"},
        {"ids": [1], "action": "unlabel", "label_id": "x"},
        {"ids": [1], "action": "resolve", "label_id": 1},
        {"ids": [1], "action": "resolve", "assignee_id": 1},
        {"ids": [1], "action": "resolve", "extra": 1},
    ],
)
def test_malformed_requests_are_400_and_change_nothing(client, auth, three, body):
    before = _state(three)
    response = _post(client, auth, body)
    assert response.status_code == 400 and response.json["error"] == "invalid_body", response.json
    assert response.json["message"]
    assert _state(three) == before


def test_a_hundred_conversations_at_once(client, auth, post_webhook):
    ids = [_conversation(post_webhook, f"5491190000{i:03d}") for i in range(100)]
    body = _post(client, auth, {"ids": ids, "action": "resolve"}).json
    assert body["updated"] == 100


def test_every_agent_may_act_in_bulk(client, other_agent, three):
    headers = {"Authorization": f"Bearer {agent_service.create_token(other_agent.email)}"}
    assert _post(client, headers, {"ids": three, "action": "resolve"}).status_code == 200


def test_one_unknown_id_alone_is_named_too(client, auth, three):
    missing = three[-1] + 1000
    response = _post(client, auth, {"ids": [missing], "action": "read"})
    assert response.status_code == 404 and response.json["unknown"] == [missing]

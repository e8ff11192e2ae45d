"""Agents' reactions through HTTP and the fake Graph server: set, replace, remove, refusals,
Meta's errors, statuses, credentials and idempotency."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Conversation, Message, SendAttempt
from app.services import agents as agent_service
from tests import meta
from tests.fake_graph import POST_MESSAGES, TIMEOUT, error
from tests.test_openapi import assert_documented

WA_ID = "5491155550001"
PATH = "/whatsapp/api/conversaciones/{conversation_id}/mensajes/{message_id}/reaccion"


@pytest.fixture
def thread(post_webhook) -> dict[str, int | str]:
    """A conversation whose customer wrote a minute ago (the window is open): its id, the
    customer's message id and wamid."""
    wamid = meta.wamid()
    post_webhook(meta.delivery(meta.value(messages=[meta.message(id=wamid, ts=int(time.time()) - 60)])))
    row = db.session.execute(select(Message.id, Message.conversation_id).where(Message.wamid == wamid)).one()
    return {"conversation": row.conversation_id, "message": row.id, "wamid": wamid}


def _url(thread: dict, message_id: int | None = None, conversation_id: int | None = None) -> str:
    return (
        f"/whatsapp/api/conversaciones/{conversation_id or thread['conversation']}"
        f"/mensajes/{message_id or thread['message']}/reaccion"
    )


def _react(client, auth, thread, emoji, **headers):  # type: ignore[no-untyped-def]
    return client.put(_url(thread), json={"emoji": emoji}, headers={**auth, **headers})


def _unreact(client, auth, thread, **headers):  # type: ignore[no-untyped-def]
    return client.delete(_url(thread), headers={**auth, **headers})


def _reactions() -> list[Message]:
    db.session.expire_all()
    return list(
        db.session.execute(
            select(Message).where(Message.type == "reaction", Message.direction == "out").order_by(Message.id)
        ).scalars()
    )


def _shown(client, auth, thread) -> list[dict]:  # type: ignore[no-untyped-def]
    """The reactions on the customer's message, as the thread answers them."""
    page = client.get(f"/whatsapp/api/conversaciones/{thread['conversation']}/mensajes", headers=auth).json
    [message] = [m for m in page["messages"] if m["id"] == thread["message"]]
    return message["reactions"]


def _graph_reactions(graph) -> list[dict]:  # type: ignore[no-untyped-def]
    return [r.body for r in graph.sent(POST_MESSAGES) if r.body.get("type") == "reaction"]


# --- set, replace, remove --------------------------------------------------------------------


def test_a_reaction_is_stored_sent_to_graph_and_shown_on_the_message(client, auth, agent, graph, thread):
    response = _react(client, auth, thread, "👍")
    body = assert_documented(response, PATH, "put")
    assert response.status_code == 200
    reaction = body["reaction"]
    assert reaction["emoji"] == "👍" and reaction["status"] == "accepted" and reaction["wamid"].startswith("wamid.")
    assert reaction["agent_id"] == agent.id and reaction["error"] is None
    assert body["message"]["id"] == thread["message"]
    assert [(r["emoji"], r["from"], r["agent_id"]) for r in body["message"]["reactions"]] == [("👍", "agent", agent.id)]
    [request] = graph.sent(POST_MESSAGES)
    assert request.path == f"/v25.0/{meta.PHONE_NUMBER_ID}/messages"
    assert request.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA_ID,
        "type": "reaction",
        "reaction": {"message_id": thread["wamid"], "emoji": "👍"},
    }
    [stored] = _reactions()
    assert (stored.reaction_to_wamid, stored.reaction_emoji, stored.status, stored.agent_id) == (
        thread["wamid"],
        "👍",
        "accepted",
        agent.id,
    )
    [attempt] = db.session.execute(select(SendAttempt).where(SendAttempt.message_id == stored.id)).scalars()
    assert (attempt.outcome, attempt.wamid) == ("accepted", stored.wamid)
    assert [r["emoji"] for r in _shown(client, auth, thread)] == ["👍"]
    # A reaction is not a bubble, not the preview and not the team's answer.
    page = client.get(f"/whatsapp/api/conversaciones/{thread['conversation']}/mensajes", headers=auth).json
    assert [m["type"] for m in page["messages"]] == ["text"]
    conversation = db.session.get(Conversation, thread["conversation"])
    assert conversation.last_message_id == thread["message"] and conversation.last_agent_message_id is None


def test_another_emoji_replaces_the_business_reaction_whoever_sets_it(client, auth, other_agent, graph, thread):
    assert _react(client, auth, thread, "👍").status_code == 200
    assert _react(client, auth, thread, "❤️").status_code == 200
    other = {"Authorization": f"Bearer {agent_service.create_token(other_agent.email)}"}
    response = _react(client, other, thread, "🙏🏽")
    assert response.status_code == 200
    assert [e["reaction"]["emoji"] for e in _graph_reactions(graph)] == ["👍", "❤️", "🙏🏽"]
    shown = _shown(client, auth, thread)
    assert [(r["emoji"], r["agent_id"]) for r in shown] == [("🙏🏽", other_agent.id)]


def test_the_customers_reaction_and_the_business_reaction_are_shown_side_by_side(
    client, auth, graph, thread, post_webhook
):
    customer = meta.message("reaction", content={"message_id": thread["wamid"], "emoji": "😂"})
    post_webhook(meta.delivery(meta.value(messages=[customer])))
    assert _react(client, auth, thread, "😮").status_code == 200
    assert sorted((r["from"], r["emoji"]) for r in _shown(client, auth, thread)) == [
        ("agent", "😮"),
        ("customer", "😂"),
    ]
    assert _unreact(client, auth, thread).status_code == 200
    assert [(r["from"], r["emoji"]) for r in _shown(client, auth, thread)] == [("customer", "😂")]


def test_the_same_emoji_again_sends_nothing(client, auth, graph, thread):
    assert _react(client, auth, thread, "👍").status_code == 200
    again = _react(client, auth, thread, "👍")
    assert again.status_code == 200
    body = assert_documented(again, PATH, "put")
    assert body["reaction"] is None and [r["emoji"] for r in body["message"]["reactions"]] == ["👍"]
    assert len(graph.sent(POST_MESSAGES)) == 1 and len(_reactions()) == 1


def test_removing_sends_an_empty_emoji_and_clears_it(client, auth, graph, thread):
    assert _react(client, auth, thread, "😢").status_code == 200
    response = _unreact(client, auth, thread)
    body = assert_documented(response, PATH, "delete")
    assert response.status_code == 200
    assert body["reaction"]["emoji"] is None and body["reaction"]["status"] == "accepted"
    assert body["message"]["reactions"] == []
    assert _graph_reactions(graph)[-1]["reaction"] == {"message_id": thread["wamid"], "emoji": ""}
    assert [r.reaction_emoji for r in _reactions()] == ["😢", None]
    assert _shown(client, auth, thread) == []
    # Nothing left to remove: nothing is sent.
    again = _unreact(client, auth, thread)
    assert again.status_code == 200 and again.json["reaction"] is None
    assert len(_graph_reactions(graph)) == 2


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"emoji": ""},
        {"emoji": "a"},
        {"emoji": "ok"},
        {"emoji": "👍👍"},
        {"emoji": " 👍"},
        {"emoji": "👍 "},
        {"emoji": "👍a"},
        {"emoji": 1},
        {"emoji": None},
        {"emoji": ["👍"]},
        {},
        {"emoji": "👍", "extra": 1},
        ["👍"],
    ],
)
def test_anything_but_one_emoji_is_400_and_changes_nothing(client, auth, graph, thread, body):
    response = client.put(_url(thread), json=body, headers=auth)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid_body"
    assert_documented(response, PATH, "put")
    assert graph.sent(POST_MESSAGES) == [] and _reactions() == []


@pytest.mark.parametrize("emoji", ["👍", "❤️", "❤", "🙏🏽", "👨‍👩‍👧", "🇪🇸", "#️⃣"])
def test_one_emoji_of_any_shape_is_accepted(client, auth, graph, thread, emoji):
    assert _react(client, auth, thread, emoji).status_code == 200
    assert _graph_reactions(graph)[0]["reaction"]["emoji"] == emoji


def test_a_message_of_another_conversation_is_404(client, auth, graph, thread, post_webhook):
    other_wamid = meta.wamid()
    post_webhook(
        meta.delivery(
            meta.value(
                messages=[meta.message(id=other_wamid, sender="34600000002")], contacts=[meta.contact("34600000002")]
            )
        )
    )
    other = db.session.execute(select(Message.id, Message.conversation_id).where(Message.wamid == other_wamid)).one()
    assert other.conversation_id != thread["conversation"]
    wrong = client.put(_url(thread, message_id=other.id), json={"emoji": "👍"}, headers=auth)
    assert wrong.status_code == 404 and wrong.json["error"] == "not_found"
    assert_documented(wrong, PATH, "put")
    assert client.put(_url(thread, message_id=10**12), json={"emoji": "👍"}, headers=auth).status_code == 404
    assert client.delete(_url(thread, conversation_id=999999), headers=auth).status_code == 404
    assert graph.sent(POST_MESSAGES) == [] and _reactions() == []


def test_a_closed_window_is_409_before_graph_is_called(client, auth, graph, thread):
    db.session.execute(
        update(Conversation)
        .where(Conversation.id == thread["conversation"])
        .values(last_customer_message_at=datetime.now(UTC) - timedelta(hours=24, minutes=1))
    )
    db.session.commit()
    for response in (_react(client, auth, thread, "👍"), _unreact(client, auth, thread)):
        assert response.status_code == 409 and response.json["error"] == "window_closed"
        assert response.json["window_expires_at"]
    assert_documented(_react(client, auth, thread, "👍"), PATH, "put")
    assert graph.sent(POST_MESSAGES) == [] and _reactions() == []


def test_only_a_customers_live_recent_message_takes_a_reaction(client, auth, graph, thread, post_webhook):
    sent = client.post(
        f"/whatsapp/api/conversaciones/{thread['conversation']}/mensajes",
        json={"type": "text", "text": "Nuestra respuesta"},
        headers=auth,
    )
    ours = sent.json["message"]["id"]
    old_wamid, deleted_wamid = meta.wamid(), meta.wamid()
    old = meta.message(id=old_wamid, ts=int(time.time()) - 31 * 86400)
    gone = meta.message(id=deleted_wamid, ts=int(time.time()) - 30)
    revoke = meta.message("revoke", content={"original_message_id": deleted_wamid})
    post_webhook(meta.delivery(meta.value(messages=[old, gone, revoke])))
    rows = db.session.execute(select(Message.wamid, Message.id).where(Message.wamid.in_([old_wamid, deleted_wamid])))
    ids = {row.wamid: row.id for row in rows}
    calls = len(graph.sent(POST_MESSAGES))
    for message_id in (ours, ids[old_wamid], ids[deleted_wamid]):
        response = client.put(_url(thread, message_id=message_id), json={"emoji": "👍"}, headers=auth)
        assert response.status_code == 409 and response.json["error"] == "not_reactable", response.json
        assert_documented(response, PATH, "put")
    assert len(graph.sent(POST_MESSAGES)) == calls and _reactions() == []


# --- Graph's answers and Meta's statuses -----------------------------------------------------


def test_a_graph_error_is_kept_and_the_earlier_reaction_stays(client, auth, graph, thread):
    assert _react(client, auth, thread, "👍").status_code == 200
    graph.script(POST_MESSAGES, error(131026))
    response = _react(client, auth, thread, "❤️")
    body = assert_documented(response, PATH, "put")
    assert response.status_code == 502 and body["error"] == "graph_error"
    assert body["graph_error"]["code"] == 131026 and body["reaction"]["status"] == "failed"
    assert body["reaction"]["error"]["code"] == 131026
    assert [r["emoji"] for r in body["stored_message"]["reactions"]] == ["👍"]
    failed = _reactions()[-1]
    assert (failed.reaction_emoji, failed.status, failed.error_code) == ("❤️", "failed", 131026)
    attempt = db.session.execute(select(SendAttempt).where(SendAttempt.message_id == failed.id)).scalar_one()
    assert (attempt.outcome, attempt.error_code) == ("failed", 131026)
    assert [r["emoji"] for r in _shown(client, auth, thread)] == ["👍"]
    # Trying again sends it (the failed one changed nothing).
    assert _react(client, auth, thread, "❤️").status_code == 200
    assert [r["emoji"] for r in _shown(client, auth, thread)] == ["❤️"]


def test_metas_window_refusal_is_409_with_the_failed_reaction(client, auth, graph, thread):
    graph.script(POST_MESSAGES, error(131047))
    response = _react(client, auth, thread, "👍")
    body = assert_documented(response, PATH, "put")
    assert response.status_code == 409 and body["error"] == "window_closed" and body["reaction"]["status"] == "failed"
    assert _shown(client, auth, thread) == []


def test_a_timeout_is_kept_failed_and_never_repeated(client, auth, graph, thread):
    graph.script(POST_MESSAGES, TIMEOUT)
    response = _react(client, auth, thread, "👍")
    assert response.status_code == 502
    assert len(graph.sent(POST_MESSAGES)) == 1
    [stored] = _reactions()
    assert stored.status == "failed" and "did not answer" in stored.error_title


def test_metas_statuses_move_the_reaction_and_a_late_failure_restores_the_earlier_one(
    client, auth, graph, thread, post_webhook
):
    first = _react(client, auth, thread, "👍").json["reaction"]["wamid"]
    second = _react(client, auth, thread, "❤️").json["reaction"]["wamid"]
    post_webhook(meta.delivery(meta.value(statuses=[meta.status(first, "sent")])))
    assert [r.status for r in _reactions()] == ["sent", "accepted"]
    # Meta could not deliver the second one (e.g. 131009): the customer still sees 👍.
    failure = [{"code": 131009, "title": "Parameter value is not valid", "error_data": {"details": "x"}}]
    post_webhook(meta.delivery(meta.value(statuses=[meta.status(second, "failed", errors=failure)])))
    assert [(r.status, r.error_code) for r in _reactions()] == [("sent", None), ("failed", 131009)]
    assert [r["emoji"] for r in _shown(client, auth, thread)] == ["👍"]


# --- credentials and idempotency -------------------------------------------------------------


def test_reactions_need_credentials(client, graph, thread):
    assert client.put(_url(thread), json={"emoji": "👍"}).status_code == 401
    assert client.delete(_url(thread)).status_code == 401
    bogus = {"Authorization": "Bearer nope"}
    assert client.put(_url(thread), json={"emoji": "👍"}, headers=bogus).status_code == 401
    assert graph.sent(POST_MESSAGES) == [] and _reactions() == []


def test_the_same_idempotency_key_answers_the_first_answer_and_sends_once(client, auth, graph, thread):
    first = _react(client, auth, thread, "👍", **{"Idempotency-Key": "tap-1"})
    second = _react(client, auth, thread, "👍", **{"Idempotency-Key": "tap-1"})
    assert first.status_code == second.status_code == 200
    assert second.json == first.json and second.headers["Idempotent-Replayed"] == "true"
    assert_documented(second, PATH, "put")
    assert len(graph.sent(POST_MESSAGES)) == 1 and len(_reactions()) == 1
    reused = _react(client, auth, thread, "❤️", **{"Idempotency-Key": "tap-1"})
    assert reused.status_code == 422 and reused.json["error"] == "idempotency_key_reused"
    removal = _unreact(client, auth, thread, **{"Idempotency-Key": "tap-1"})
    assert removal.status_code == 422
    malformed = _react(client, auth, thread, "❤️", **{"Idempotency-Key": "con espacio"})
    assert malformed.status_code == 400 and malformed.json["error"] == "invalid_idempotency_key"
    assert len(graph.sent(POST_MESSAGES)) == 1


def test_a_replayed_failure_is_not_sent_again(client, auth, graph, thread):
    graph.script(POST_MESSAGES, error(131026))
    first = _react(client, auth, thread, "👍", **{"Idempotency-Key": "k"})
    again = _react(client, auth, thread, "👍", **{"Idempotency-Key": "k"})
    assert first.status_code == again.status_code == 502 and again.json == first.json
    assert len(graph.sent(POST_MESSAGES)) == 1
    assert db.session.execute(select(func.count()).select_from(SendAttempt)).scalar_one() == 1

"""Fault drill: the Graph API fails, then comes back.

Graph answers 5xx (past the bounded retries), times out, refuses with Meta's 131047 or 190, or
cannot be reached at all. Each time, end to end as an agent sees it: the send is answered
with the failure, the message is kept and shows `failed` with Meta's code or the reason in
the thread and in the conversation list; once Graph is back the agent retries it, it is
`accepted`, and Meta's status webhooks take it to `delivered`. There is one message row all
along (never a copy), and Graph received the failed tries and exactly one successful send.

test_sending.py checks each failure on its own; here they are the whole story, in-process for
every kind of failure and once more under a real gunicorn, where Graph goes down for real
(its TCP connection is cut) while other messages fail with 5xx and a timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, select, text

from app import create_app
from app.extensions import db
from app.models import Conversation, Message, SendAttempt
from app.services import agents as agent_service
from tests import meta
from tests.conftest import TEST_CONFIG
from tests.fake_graph import POST_MESSAGES, TIMEOUT, error, server_error
from tests.live import Gunicorn, PostgresProxy, free_port

pytestmark = pytest.mark.drill

API = "/whatsapp/api/conversaciones"


@dataclass
class Failure:
    answers: tuple[Any, ...]  # what Graph answers to each try of the send
    status: int  # the send's answer
    code: int | None  # Meta's code kept on the message
    title: str  # part of the reason shown
    tries: int | None  # requests Graph receives for the failed send (None: one and every retry)


FAILURES = {
    "5xx": Failure((server_error(503),) * 10, 502, 2, "An unexpected error has occurred", None),
    "timeout": Failure((TIMEOUT,), 502, None, "did not answer in time", 1),  # a send that timed out is not repeated
    "131047": Failure((error(131047),), 409, 131047, "Re-engagement message", 1),
    "190": Failure((error(190),), 502, 190, "access token", 1),
    "unreachable": Failure((), 502, None, "could not be reached", 0),
}


def _thread_message(client, auth, conversation_id: int, message_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    messages = client.get(f"{API}/{conversation_id}/mensajes", headers=auth).get_json()["messages"]
    [found] = [m for m in messages if m["id"] == message_id]
    return found


def _listed(client, auth, conversation_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    conversations = client.get(API, headers=auth).get_json()["conversations"]
    [found] = [c for c in conversations if c["id"] == conversation_id]
    return found


@pytest.mark.parametrize("kind", list(FAILURES))
def test_graph_fails_the_message_shows_why_and_a_retry_delivers_it_once_graph_is_back(
    app, client, auth, graph, post_webhook, monkeypatch, kind
):
    failure = FAILURES[kind]
    post_webhook(meta.delivery(meta.value(messages=[meta.message(ts=int(time.time()) - 60)])))
    conversation_id = db.session.execute(select(Conversation.id)).scalar_one()

    # Graph fails.
    if kind == "unreachable":  # nothing listens there: connection refused, retried, then given up
        monkeypatch.setitem(app.config, "WHATSAPP_GRAPH_URL", f"http://127.0.0.1:{free_port()}/v25.0")
    graph.script(POST_MESSAGES, *failure.answers)
    sent = client.post(f"{API}/{conversation_id}/mensajes", json={"type": "text", "text": "¿Seguís ahí?"}, headers=auth)
    assert sent.status_code == failure.status, sent.get_json()
    message_id = sent.get_json()["message_id"]
    assert len(graph.sent()) == (1 + app.config["GRAPH_MAX_RETRIES"] if failure.tries is None else failure.tries)

    # The agent sees it failed, and why.
    shown = _thread_message(client, auth, conversation_id, message_id)
    assert shown["status"] == "failed" and shown["wamid"] is None
    assert shown["error"]["code"] == failure.code
    assert failure.title in shown["error"]["title"]
    assert _listed(client, auth, conversation_id)["last_agent_message"]["status"] == "failed"

    # Graph is back: the retry goes out once and is accepted.
    monkeypatch.undo()
    graph.reset()
    retried = client.post(f"{API}/{conversation_id}/mensajes/{message_id}/reintentar", headers=auth)
    assert retried.status_code == 201, retried.get_json()
    accepted = retried.get_json()["message"]
    assert (accepted["id"], accepted["status"], accepted["error"]) == (message_id, "accepted", None)
    assert len(graph.sent()) == 1
    assert graph.sent()[0].body["text"]["body"] == "¿Seguís ahí?"

    # Meta reports it sent, then delivered.
    wamid = accepted["wamid"]
    for status in ("sent", "delivered"):
        assert post_webhook(meta.delivery(meta.value(statuses=[meta.status(wamid, status)]))).status_code == 200
    db.session.expire_all()
    shown = _thread_message(client, auth, conversation_id, message_id)
    assert (shown["status"], shown["wamid"], shown["error"]) == ("delivered", wamid, None)
    assert _listed(client, auth, conversation_id)["last_agent_message"]["status"] == "delivered"

    outbound = db.session.execute(select(Message.id).where(Message.direction == "out")).scalars().all()
    assert outbound == [message_id]  # the same message all along, never a copy
    attempts = db.session.execute(select(SendAttempt.outcome).order_by(SendAttempt.id)).scalars().all()
    assert attempts == ["failed", "accepted"]


# --- under gunicorn: Graph really goes away ---------------------------------------------------


def _graph_proxy(graph) -> PostgresProxy:  # type: ignore[no-untyped-def]
    """A TCP proxy in front of the fake Graph (PostgresProxy forwards any TCP): cut() is Graph
    going away (connections reset, then refused), restore() is Graph coming back."""
    proxy = PostgresProxy(f"postgresql://graph@127.0.0.1:{graph.port}/graph")
    proxy.restore()
    return proxy


@pytest.mark.live
def test_live_graph_outage_then_retries_deliver_every_message_once(committed_db, graph):
    setup = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": committed_db})
    with setup.app_context():
        agent = agent_service.create_agent("drill@example.com", "Drill", "correct horse battery")
        token = agent_service.create_token(agent.email)
        db.engine.dispose()
    auth = {"Authorization": f"Bearer {token}"}
    proxy = _graph_proxy(graph)
    env = {
        "WHATSAPP_GRAPH_URL": f"http://127.0.0.1:{proxy.port}/v25.0",
        "WHATSAPP_ACCESS_TOKEN": TEST_CONFIG["WHATSAPP_ACCESS_TOKEN"],
        "GRAPH_READ_TIMEOUT": "0.5",
        "GRAPH_RETRY_BACKOFF": "0.05",
    }
    try:
        with Gunicorn(committed_db, workers=1, threads=4, env=env) as server:
            inbound = meta.message(ts=int(time.time()) - 60)
            assert server.post_webhook(meta.encode(meta.delivery(meta.value(messages=[inbound])))).ok
            engine = create_engine(committed_db)
            with engine.connect() as conn:
                conversation_id = conn.execute(text("SELECT id FROM conversations")).scalar_one()
            base = f"{server.base_url}{API}/{conversation_id}"

            def send(body: str) -> requests.Response:
                return requests.post(f"{base}/mensajes", json={"type": "text", "text": body}, headers=auth, timeout=30)

            # Graph is down: nothing listens any more.
            proxy.cut()
            down = send("uno")
            proxy.restore()
            # Graph answers 5xx on every try, then hangs past the read timeout.
            graph.script(POST_MESSAGES, *[server_error(503)] * 3)
            broken = send("dos")
            graph.script(POST_MESSAGES, TIMEOUT)
            slow = send("tres")
            failed = [down, broken, slow]
            assert [r.status_code for r in failed] == [502, 502, 502], [r.text for r in failed]
            titles = [r.json()["stored_message"]["error"]["title"] for r in failed]
            assert "could not be reached" in titles[0] and "did not answer" in titles[2], titles

            thread = requests.get(f"{base}/mensajes", headers=auth, timeout=30).json()["messages"]
            outbound = [m for m in thread if m["direction"] == "out"]
            assert [(m["text"], m["status"]) for m in outbound] == [
                ("uno", "failed"),
                ("dos", "failed"),
                ("tres", "failed"),
            ]
            assert all(m["error"]["title"] for m in outbound)

            # Graph is back: each retry goes out once.
            graph.reset()
            wamids = []
            for message in outbound:
                retried = requests.post(f"{base}/mensajes/{message['id']}/reintentar", headers=auth, timeout=30)
                assert retried.status_code == 201, retried.text
                wamids.append(retried.json()["message"]["wamid"])
            assert sorted(r.body["text"]["body"] for r in graph.sent()) == ["dos", "tres", "uno"]

            statuses = [meta.status(w, s) for w in wamids for s in ("sent", "delivered")]
            assert server.post_webhook(meta.encode(meta.delivery(meta.value(statuses=statuses)))).ok
            thread = requests.get(f"{base}/mensajes", headers=auth, timeout=30).json()["messages"]
            outbound = [m for m in thread if m["direction"] == "out"]
            assert [(m["status"], m["error"]) for m in outbound] == [("delivered", None)] * 3
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM messages WHERE direction = 'out'")).scalar_one() == 3
                outcomes = conn.execute(text("SELECT outcome, count(*) FROM send_attempts GROUP BY 1 ORDER BY 1")).all()
            assert [tuple(row) for row in outcomes] == [("accepted", 3), ("failed", 3)]
            engine.dispose()
    finally:
        proxy.cut()

"""Mentions: `@name` in a private note names agents (app/whatsapp/mentions.py, the one rule),
is recorded with the note, listed and marked read by the agent mentioned only, and is marked in
the rendered note (escaped, with our own <mark> only)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Agent, Mention, Message
from app.services import agents as agent_service
from app.whatsapp.mentions import Mentionable, find_mentions, mentioned_agents
from tests import meta
from tests.test_openapi import assert_documented
from tests.test_pages import login

API = "/whatsapp/api"
TEAM = [
    Mentionable(1, "Ana Agente", "ana@example.com"),
    Mentionable(2, "Beto Soporte", "beto.s@example.com"),
    Mentionable(3, "Lucía Pérez", "lp@example.com"),
    Mentionable(4, "Ana García", "agarcia@example.com"),
]


# --- the rule (pure) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@Ana Agente, ¿lo ves?", [1]),  # the full name
        ("@ana agente", [1]),  # whatever the case
        ("@Ana   García: urgente", [4]),  # spaces as one
        ("hola @LUCIA.", [3]),  # without the accent, a dot ending the sentence
        ("@lucía y @Lucia", [3]),  # each agent once
        ("@beto.s revisalo", [2]),  # the e-mail's local part
        ("@Beto", [2]),  # the first word of a name nobody else has
        ("@ana", []),  # two Anas: write the full name or the e-mail
        ("@agarcia", [4]),
        ("escribile a ana@example.com", []),  # an e-mail address is not a mention
        ("@nadie @Betox @beto.sx", []),  # unknown names, longer words
        ("(@Beto) y @Lucía", [2, 3]),
        ("sin arroba", []),
    ],
)
def test_who_a_note_mentions(text, expected):
    assert mentioned_agents(text, TEAM) == expected


def test_a_mention_is_found_where_it_is_written():
    text = "Ojo @Lucía Pérez: llamar hoy"
    [found] = find_mentions(text, TEAM)
    assert text[found.start : found.end] == "@Lucía Pérez" and found.agent_id == 3


# --- recorded with the note ----------------------------------------------------------------------


@pytest.fixture
def conversation_id(client, post_webhook) -> int:  # type: ignore[no-untyped-def]
    assert post_webhook(meta.delivery(meta.value(messages=[meta.message(content={"body": "Hola"})]))).status_code == 200
    return int(db.session.execute(select(Message.conversation_id)).scalar_one())


@pytest.fixture
def lucia(db_session) -> Agent:  # type: ignore[no-untyped-def]
    return agent_service.create_agent("lucia.perez@example.com", "Lucía Pérez", "correct horse battery 3")


def _note(client, headers, conversation_id: int, text: str):  # type: ignore[no-untyped-def]
    response = client.post(f"{API}/conversaciones/{conversation_id}/notas", json={"text": text}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _bearer(agent: Agent) -> dict[str, str]:
    return {"Authorization": f"Bearer {agent_service.create_token(agent.email)}"}


def _mentions() -> list[tuple[int, int, int, bool]]:
    db.session.expire_all()
    rows = db.session.execute(
        select(Mention.agent_id, Mention.message_id, Mention.conversation_id, Mention.read_at.is_(None)).order_by(
            Mention.id
        )
    )
    return [tuple(row) for row in rows]  # type: ignore[misc]


def test_a_note_records_a_mention_of_each_agent_it_names(client, auth, agent, other_agent, lucia, conversation_id):
    note = _note(client, auth, conversation_id, "@Beto y @lucia: la clienta vuelve mañana. Yo (@Ana) me encargo.")
    assert _mentions() == [
        (other_agent.id, note["id"], conversation_id, True),
        (lucia.id, note["id"], conversation_id, True),
    ]  # Ana wrote it: mentioning herself notifies nobody
    _note(client, auth, conversation_id, "Nada para nadie, @desconocido; mail a beto@example.com")
    assert len(_mentions()) == 2


def test_inactive_agents_are_not_mentioned(client, auth, other_agent, conversation_id):
    agent_service.deactivate_agent(other_agent.email)
    _note(client, auth, conversation_id, "@Beto ¿seguís?")
    assert _mentions() == []


def test_a_refused_note_records_no_mention(client, auth, other_agent, conversation_id):
    response = client.post(f"{API}/conversaciones/{conversation_id + 99}/notas", json={"text": "@Beto"}, headers=auth)
    assert response.status_code == 404
    response = client.post(
        f"{API}/conversaciones/{conversation_id}/notas", json={"text": "@Beto", "x": 1}, headers=auth
    )
    assert response.status_code == 400
    assert _mentions() == []
    assert db.session.execute(select(func.count()).where(Message.type == "note")).scalar_one() == 0


# --- listing and marking read --------------------------------------------------------------------


def test_the_mentioned_agent_lists_them_unread_first_and_marks_them_read(
    client, auth, agent, other_agent, lucia, conversation_id
):
    first = _note(client, auth, conversation_id, "@Beto primera")
    second = _note(client, auth, conversation_id, "@Beto segunda")
    _note(client, auth, conversation_id, "@Lucía solo para ella")
    beto = _bearer(other_agent)

    listed = client.get(f"{API}/menciones", headers=beto)
    body = assert_documented(listed, f"{API}/menciones")
    assert [m["note"]["id"] for m in body["mentions"]] == [second["id"], first["id"]]  # newest first
    assert body["unread"] == 2 and body["pagination"] == {"page": 1, "per_page": 20, "total": 2, "pages": 1}
    assert body["mentions"][0]["author"] == {"id": agent.id, "name": "Ana Agente"}
    assert body["mentions"][0]["conversation"]["id"] == conversation_id
    assert body["mentions"][0]["note"]["text"] == "@Beto segunda" and body["mentions"][0]["read_at"] is None

    newest = body["mentions"][0]["id"]
    read = client.post(f"{API}/menciones/{newest}/leida", headers=beto)
    marked = assert_documented(read, f"{API}/menciones/{{mention_id}}/leida", "post")
    assert marked["id"] == newest and marked["read_at"] is not None
    again = client.post(f"{API}/menciones/{newest}/leida", headers=beto).get_json()
    assert again["read_at"] == marked["read_at"]  # it keeps its first read time

    body = client.get(f"{API}/menciones", headers=beto).get_json()
    assert [m["note"]["id"] for m in body["mentions"]] == [first["id"], second["id"]]  # unread first
    assert body["unread"] == 1
    only_unread = client.get(f"{API}/menciones?unread=true&per_page=1", headers=beto).get_json()
    assert [m["note"]["id"] for m in only_unread["mentions"]] == [first["id"]]
    assert only_unread["pagination"] == {"page": 1, "per_page": 1, "total": 1, "pages": 1}
    page_two = client.get(f"{API}/menciones?per_page=1&page=2", headers=beto).get_json()
    assert [m["note"]["id"] for m in page_two["mentions"]] == [second["id"]]

    marked_all = client.post(f"{API}/menciones/leidas", headers=beto)
    assert assert_documented(marked_all, f"{API}/menciones/leidas", "post") == {"marked": 1}
    assert client.get(f"{API}/menciones", headers=beto).get_json()["unread"] == 0


def test_an_agent_sees_and_marks_only_their_own_mentions(client, auth, agent, other_agent, lucia, conversation_id):
    _note(client, auth, conversation_id, "@Beto esto es tuyo")
    [betos] = db.session.execute(select(Mention.id)).scalars()
    lucias = _bearer(lucia)
    assert client.get(f"{API}/menciones", headers=lucias).get_json()["mentions"] == []
    assert client.get(f"{API}/menciones", headers=auth).get_json()["unread"] == 0  # Ana wrote it
    refused = client.post(f"{API}/menciones/{betos}/leida", headers=lucias)
    assert refused.status_code == 404 and refused.get_json()["error"] == "not_found"
    assert_documented(refused, f"{API}/menciones/{{mention_id}}/leida", "post")
    assert client.post(f"{API}/menciones/leidas", headers=lucias).get_json() == {"marked": 0}
    assert _mentions()[0][3] is True  # still unread for Beto
    assert client.post(f"{API}/menciones/{betos + 1000}/leida", headers=lucias).status_code == 404


@pytest.mark.parametrize("query", ["page=0", "per_page=101", "page=x", "unread=maybe"])
def test_bad_list_parameters_are_400(client, auth, query):
    response = client.get(f"{API}/menciones?{query}", headers=auth)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_parameter"
    assert_documented(response, f"{API}/menciones")


# --- in the inbox ------------------------------------------------------------------------------


def test_a_note_shows_its_mentions_marked_and_everything_else_escaped(
    app, client, agent, other_agent, conversation_id, fresh_app_context
):
    headers = _bearer(agent)
    _note(client, headers, conversation_id, "<b>ojo</b> @Beto & @Ana Agente <script>x</script>")
    assert login(client, other_agent.email, "correct horse battery 2").status_code == 302
    page = client.get(f"/?c={conversation_id}").text
    expected = (
        f'&lt;b&gt;ojo&lt;/b&gt; <mark class="mention mention-me" data-agent="{other_agent.id}">@Beto</mark> &amp; '
        f'<mark class="mention" data-agent="{agent.id}">@Ana Agente</mark> &lt;script&gt;x&lt;/script&gt;'
    )
    assert expected in page
    assert "<script>x" not in page
    # The feed the browser notifications read, and the Mentions panel.
    assert 'data-mentions="1"' in page and 'data-kind="mention"' in page and "Ana Agente te mencionó" in page
    panel = client.get("/inbox/fragments/mentions").text
    assert 'class="mention-item is-unread"' in panel and f"m={_latest_note_id()}" in panel
    db.session.execute(update(Mention).values(read_at=func.now()))
    db.session.commit()
    assert 'data-mentions="0"' in client.get("/inbox/fragments/list").text


def _latest_note_id() -> int:
    return int(db.session.execute(select(func.max(Message.id)).where(Message.type == "note")).scalar_one())

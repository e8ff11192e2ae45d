"""The agent's preferences on their row (`GET|PATCH /whatsapp/api/yo`, the preferences menu) and
the feed the browser notifications read from the polled conversation list."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Agent, Message
from app.services import agents as agent_service
from tests import meta
from tests.test_openapi import assert_documented
from tests.test_pages import csrf_token, login

API = "/whatsapp/api"
ME = f"{API}/yo"
DEFAULTS = {
    "language": None,
    "time_zone": None,
    "notify_desktop": False,
    "notify_sound": True,
    "notify_scope": "mine_and_unassigned",
}


def _row(agent_id: int) -> dict[str, object]:
    db.session.expire_all()
    agent = db.session.get(Agent, agent_id)
    assert agent is not None
    return {name: getattr(agent, name) for name in DEFAULTS}


# --- GET|PATCH /yo -------------------------------------------------------------------------------


def test_the_caller_and_their_default_preferences(client, auth, agent):
    response = client.get(ME, headers=auth)
    body = assert_documented(response, ME)
    assert body == {"id": agent.id, "name": "Ana Agente", "email": "ana@example.com", "role": "admin", **DEFAULTS}


def test_preferences_are_saved_on_the_row(client, auth, agent, other_agent):
    changes = {
        "language": "en",
        "time_zone": "America/Argentina/Buenos_Aires",
        "notify_desktop": True,
        "notify_sound": False,
        "notify_scope": "all",
    }
    response = client.patch(ME, json=changes, headers=auth)
    assert assert_documented(response, ME, "patch") == {**client.get(ME, headers=auth).get_json()}
    assert _row(agent.id) == changes
    assert _row(other_agent.id) == DEFAULTS  # only the caller's own row
    back = client.patch(ME, json={"language": None, "time_zone": None}, headers=auth).get_json()
    assert (back["language"], back["time_zone"], back["notify_scope"]) == (None, None, "all")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"language": "fr"}, "language"),
        ({"language": 1}, "language"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "europe/madrid"}, "time_zone"),
        ({"time_zone": 5}, "time_zone"),
        ({"notify_desktop": "yes"}, "notify_desktop"),
        ({"notify_sound": 1}, "notify_sound"),
        ({"notify_sound": None}, None),
        ({"notify_scope": "mine"}, "notify_scope"),
        ({"name": "Otra"}, "name"),
        ({"role": "admin"}, "role"),
        ({"email": "x@example.com"}, "email"),
        ({}, None),
        ({"notify_scope": "all", "language": "xx"}, "language"),  # all or nothing
    ],
)
def test_wrong_preferences_are_400_and_change_nothing(client, auth, agent, body, field):
    response = client.patch(ME, json=body, headers=auth)
    assert response.status_code == 400, response.get_json()
    error = assert_documented(response, ME, "patch")
    assert error["error"] == "invalid_body"
    if field:
        assert f"'{field}'" in error["message"]
    assert _row(agent.id) == DEFAULTS


def test_a_body_that_is_not_json_is_400(client, auth, agent):
    response = client.patch(ME, data="language=en", headers=auth)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_body"
    assert _row(agent.id) == DEFAULTS


# --- the pages follow the row --------------------------------------------------------------------


def _choose(client, page: str, **fields: str):  # type: ignore[no-untyped-def]
    return client.post("/preferences", data={"csrf_token": csrf_token(page), "next": "/", **fields})


def test_the_menu_writes_the_row_and_it_survives_logging_out_and_in(app, client, agent, fresh_app_context):
    assert login(client, agent.email).status_code == 302
    page = client.get("/").text
    assert '<html lang="es">' in page
    assert _choose(client, page, lang="en", tz="America/Mexico_City").status_code == 302
    assert _row(agent.id)["language"] == "en" and _row(agent.id)["time_zone"] == "America/Mexico_City"
    page = client.get("/").text
    assert '<html lang="en">' in page and "<option selected>America/Mexico_City</option>" in page
    assert client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 302

    # Another browser, which never chose anything and asks for Spanish: the row wins after login.
    other = app.test_client()
    assert '<html lang="es">' in other.get("/login", headers={"Accept-Language": "es"}).text
    assert login(other, agent.email).status_code == 302
    page = other.get("/", headers={"Accept-Language": "es"}).text
    assert '<html lang="en">' in page and "<option selected>America/Mexico_City</option>" in page

    # "auto" goes back to the browser's.
    assert _choose(other, page, lang="auto", tz="auto").status_code == 302
    assert _row(agent.id)["language"] is None and _row(agent.id)["time_zone"] is None
    assert '<html lang="es">' in other.get("/", headers={"Accept-Language": "es"}).text


def test_before_login_the_session_decides_and_after_it_the_row(app, client, agent, fresh_app_context):
    login_page = client.get("/login").text
    assert _choose(client, login_page, lang="en").status_code == 302
    assert '<html lang="en">' in client.get("/login").text
    assert _row(agent.id)["language"] is None  # nobody logged in: only this browser's session
    assert login(client, agent.email).status_code == 302
    assert '<html lang="en">' in client.get("/").text  # the row says nothing: the session's choice

    agent_row = db.session.get(Agent, agent.id)
    agent_row.language = "es"
    db.session.commit()
    assert '<html lang="es">' in client.get("/").text  # the row wins over the session


def test_times_are_shown_in_the_time_zone_on_the_row(client, auth, agent, post_webhook, fresh_app_context):
    """select_timezone() (the one accessor, also the other features') reads the agent's row."""
    ts = int(datetime(2026, 12, 1, 12, 5, tzinfo=UTC).timestamp())
    message = meta.message(ts=ts, content={"body": "¿Hay turnos?"})
    assert post_webhook(meta.delivery(meta.value(messages=[message]))).status_code == 200
    conversation_id = db.session.execute(select(Message.conversation_id)).scalar_one()
    assert login(client, agent.email).status_code == 302
    client.set_cookie("tz", "UTC")
    assert ">12:05</time>" in client.get(f"/?c={conversation_id}").text  # the browser's zone
    assert client.patch(ME, json={"time_zone": "Asia/Tokyo"}, headers=auth).status_code == 200
    assert ">21:05</time>" in client.get(f"/?c={conversation_id}").text  # the row's


# --- the feed the browser notifications read -----------------------------------------------------


def _say(post_webhook, wa_id: str, name: str, body: str) -> int:  # type: ignore[no-untyped-def]
    message = meta.message(sender=wa_id, content={"body": body})
    contacts = [meta.contact(wa_id=wa_id, name=name)]
    assert post_webhook(meta.delivery(meta.value(messages=[message], contacts=contacts))).status_code == 200
    return int(db.session.execute(select(Message.id).where(Message.wamid == message["id"])).scalar_one())


def _conversation_of(message_id: int) -> int:
    return int(db.session.execute(select(Message.conversation_id).where(Message.id == message_id)).scalar_one())


def _feed(client) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    html = client.get("/inbox/fragments/list").text
    block = re.search(r'<div id="notify-feed"[^>]*>(.*?)</div>', html, re.S)
    assert block
    return re.findall(r'data-kind="(\w+)" data-id="(\d+)" data-conversation="(\d+)"', block.group(1))


def _unread(client) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    html = client.get("/inbox/fragments/list").text
    match = re.search(r'id="notify-feed" hidden data-unread="(\d+)" data-mentions="(\d+)"', html)
    assert match
    return int(match.group(1)), int(match.group(2))


def test_the_list_carries_new_customer_messages_in_the_agents_scope(
    app, client, auth, agent, other_agent, post_webhook, fresh_app_context
):
    assert login(client, agent.email).status_code == 302
    lucia = _say(post_webhook, "5491100000001", "Lucía", "Hola, ¿tienen turno?")
    diego = _say(post_webhook, "5491100000002", "Diego", "Para Beto")
    diegos = _conversation_of(diego)
    assert (
        client.patch(f"{API}/conversaciones/{diegos}", json={"assignee": other_agent.id}, headers=auth).status_code
        == 200
    )

    # Unassigned Lucía notifies Ana; Diego, now Beto's, does not — unless Ana asks for everything.
    assert [(k, int(i)) for k, i, _ in _feed(client)] == [("message", lucia)]
    assert _unread(client) == (1, 0)
    client.patch(ME, json={"notify_scope": "all"}, headers=auth)
    assert sorted(int(i) for _, i, _ in _feed(client)) == [lucia, diego]
    assert _unread(client) == (2, 0)
    client.patch(ME, json={"notify_scope": "mine_and_unassigned"}, headers=auth)

    # A second message: the newest one stands for its conversation; reading it empties the feed.
    newer = _say(post_webhook, "5491100000001", "Lucía", "¿A las 17?")
    assert [(k, int(i)) for k, i, _ in _feed(client)] == [("message", newer)]
    assert _unread(client) == (2, 0)
    lucias = _conversation_of(lucia)
    assert client.post(f"{API}/conversaciones/{lucias}/leido", headers=auth).status_code == 200
    assert _feed(client) == [] and _unread(client) == (0, 0)

    # Assigned to Ana herself: in the feed again.
    _say(post_webhook, "5491100000002", "Diego", "¿Sigue ahí?")
    client.patch(f"{API}/conversaciones/{diegos}", json={"assignee": agent.id}, headers=auth)
    assert [int(c) for _, _, c in _feed(client)] == [diegos]


def test_the_page_says_from_which_message_on_to_notify(client, agent, post_webhook, fresh_app_context):
    first = _say(post_webhook, "5491100000001", "Lucía", "Hola")
    assert login(client, agent.email).status_code == 302
    page = client.get("/").text
    assert f'data-since-message="{first}"' in page and 'data-since-mention="0"' in page
    assert 'id="notify-enable" hidden' in page  # shown by the script, and only where it can work
    assert "(1)" not in page.split("</title>")[0]  # the count is the script's, from the feed
    assert re.search(r'data-notify-desktop="0" data-notify-sound="1"', page)


def test_an_agents_token_reads_and_changes_only_their_own_row(client, agent, other_agent):
    beto = {"Authorization": f"Bearer {agent_service.create_token(other_agent.email)}"}
    body = client.patch(ME, json={"notify_sound": False}, headers=beto).get_json()
    assert body["id"] == other_agent.id and body["role"] == "agent" and body["notify_sound"] is False
    assert _row(agent.id)["notify_sound"] is True


def test_a_backlog_beyond_a_hundred_conversations_is_99_plus(client, agent, post_webhook, fresh_app_context):
    """The count reads at most the newest 100 unread conversations, whatever the backlog."""
    senders = [f"54911{n:08d}" for n in range(101)]
    messages = [meta.message(sender=wa_id, content={"body": "Hola"}) for wa_id in senders]
    contacts = [meta.contact(wa_id=wa_id, name=f"Cliente {n}") for n, wa_id in enumerate(senders)]
    assert post_webhook(meta.delivery(meta.value(messages=messages, contacts=contacts))).status_code == 200
    assert login(client, agent.email).status_code == 302
    html = client.get("/inbox/fragments/list").text
    assert 'data-unread="100" data-mentions="0" data-more="1"' in html
    assert len(_feed(client)) == 10  # the newest ten stand for the rest

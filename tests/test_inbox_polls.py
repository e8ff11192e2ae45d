"""The inbox's polls: an unchanged poll is answered 304 from the key alone (no render, no data
query), and every kind of write moves the key so the next poll renders the change (issue 14)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import template_rendered
from limits import parse_many
from sqlalchemy import select, text, update

from app.cache import READ_INBOX_SQL
from app.extensions import db
from app.jobs.queue import WAKE_SNOOZED
from app.jobs.worker import build_worker_queue
from app.models import Contact, Conversation, Message
from app.ratelimits import rate_limiter
from app.services import agents as agent_service
from app.version_listener import VersionListener
from tests import meta
from tests.test_pages import login

# Each request in its own app context, as under gunicorn (Flask-Login and Babel cache in `g`).
pytestmark = pytest.mark.usefixtures("fresh_app_context")

API = "/whatsapp/api"
CUSTOMER = "5491180014001"


@pytest.fixture
def conversation(db_session, post_webhook) -> int:  # type: ignore[no-untyped-def]
    _say(post_webhook, "hola, ¿está abierto?")
    return db_session.execute(select(Conversation.id)).scalar_one()


def _say(post_webhook, body: str, wa_id: str = CUSTOMER) -> str:  # type: ignore[no-untyped-def]
    message = meta.message(sender=wa_id, content={"body": body})
    response = post_webhook(meta.delivery(meta.value(messages=[message], contacts=[meta.contact(wa_id, "Poll")])))
    assert response.status_code == 200
    return str(message["id"])


@contextmanager
def rendered(app) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    names: list[str] = []

    def record(sender: Any, template: Any, context: Any, **extra: Any) -> None:
        names.append(template.name)

    template_rendered.connect(record, app)
    try:
        yield names
    finally:
        template_rendered.disconnect(record, app)


class Inbox:
    """A logged-in browser's two polls, each remembering its ETag as app.js does."""

    def __init__(self, client, conversation_id: int) -> None:  # type: ignore[no-untyped-def]
        self.client = client
        self.urls = {
            "list": f"/inbox/fragments/list?tab=all&status=all&q=&c={conversation_id}",
            "thread": f"/inbox/fragments/conversations/{conversation_id}?tab=all&status=all&q=",
        }
        self.etags: dict[str, str] = {}

    def poll(self, which: str) -> Any:
        headers = {"HX-Request": "true", "HX-Trigger": "list" if which == "list" else "thread"}
        if which in self.etags:
            headers["If-None-Match"] = self.etags[which]
        response = self.client.get(self.urls[which], headers=headers)
        assert response.status_code in (200, 304), response.status_code
        self.etags[which] = response.headers["ETag"]
        return response


def test_an_unchanged_poll_is_answered_304_without_rendering_or_reading_data(
    app, client, agent, conversation, count_statements
):
    login(client, agent.email)
    inbox = Inbox(client, conversation)
    for which in ("list", "thread"):
        first = inbox.poll(which)
        assert first.status_code == 200 and first.headers["Cache-Control"] == "private, no-cache"
        assert first.headers["Vary"] == "Cookie"
        with rendered(app) as templates, count_statements() as counter:
            again = inbox.poll(which)
        assert again.status_code == 304 and again.data == b""
        assert templates == []
        # The inbox version alone (without a listener, as here): not even the session's agent.
        assert counter.count == 1, counter.statements
        assert "inbox_version" in counter.statements[0]
        assert again.headers["ETag"] == first.headers["ETag"]
        assert again.headers["Vary"] == "Cookie" and "Content-Security-Policy" in again.headers


def test_the_check_needs_a_session_and_an_ended_session_gets_nothing(app, client, agent, conversation):
    login(client, agent.email)
    inbox = Inbox(client, conversation)
    etag = inbox.poll("list").headers["ETag"]
    stranger = app.test_client()
    for url in inbox.urls.values():
        refused = stranger.get(url, headers={"If-None-Match": etag, "HX-Request": "true"})
        assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    # Logging out everywhere ends this cookie: the poll with the valid ETag gets no 304.
    agent.end_sessions()
    db.session.commit()
    ended = client.get(inbox.urls["list"], headers={"If-None-Match": etag, "HX-Request": "true"})
    assert ended.status_code == 302


def _api(client, auth):  # type: ignore[no-untyped-def]
    other = client.application.test_client()
    return lambda method, path, **kw: getattr(other, method)(API + path, headers=auth, **kw)


def _newest_message_id(conversation_id: int) -> int:
    newest = (
        select(Message.id)
        .where(Message.conversation_id == conversation_id, Message.direction == "in")
        .order_by(Message.id.desc())
        .limit(1)
    )
    return int(db.session.execute(newest).scalar_one())


def _label(call, conversation: int) -> None:  # type: ignore[no-untyped-def]
    label = call("post", "/etiquetas", json={"name": "Mayorista", "color": "#2563eb"})
    assert label.status_code == 201, label.json
    assert call("patch", f"/conversaciones/{conversation}", json={"labels": [label.json["id"]]}).status_code == 200


def _rename_label(call, conversation: int) -> None:  # type: ignore[no-untyped-def]
    _label(call, conversation)
    label_id = call("get", "/etiquetas").json["labels"][0]["id"]
    assert call("patch", f"/etiquetas/{label_id}", json={"name": "Minorista"}).status_code == 200


# (what the write is, the write, text the re-rendered fragment shows, which fragment)
WRITES: list[tuple[str, Callable[..., Any], str, str]] = [
    ("a customer message (webhook)", lambda ctx: _say(ctx["post_webhook"], "¿y el envío?"), "¿y el envío?", "thread"),
    (
        "another conversation's message",
        lambda ctx: _say(ctx["post_webhook"], "soy otra", wa_id="5491180014999"),
        "soy otra",
        "list",
    ),
    (
        "a reply sent",
        lambda ctx: ctx["call"]("post", f"/conversaciones/{ctx['c']}/mensajes", json={"type": "text", "text": "Sí"}),
        'data-status="accepted"',
        "thread",
    ),
    (
        "a tick (status webhook)",
        lambda ctx: ctx["tick"](),
        'data-status="read"',
        "thread",
    ),
    (
        "a note",
        lambda ctx: ctx["call"]("post", f"/conversaciones/{ctx['c']}/notas", json={"text": "llamar a las 5"}),
        "llamar a las 5",
        "thread",
    ),
    (
        "a mention (the list's feed)",
        lambda ctx: ctx["call"](
            "post", f"/conversaciones/{ctx['c']}/notas", json={"text": f"@{ctx['other_email']} mirá esto"}
        ),
        "mirá esto",
        "thread",
    ),
    (
        "an assignment",
        lambda ctx: ctx["call"]("patch", f"/conversaciones/{ctx['c']}", json={"assignee": ctx["other_id"]}),
        "Otra Agente",
        "list",
    ),
    (
        "a status change",
        lambda ctx: ctx["call"]("patch", f"/conversaciones/{ctx['c']}", json={"status": "pending"}),
        "pill-pending",
        "list",
    ),
    (
        "marked read",
        lambda ctx: ctx["call"]("post", f"/conversaciones/{ctx['c']}/leido"),
        'data-unread="0"',
        "thread",
    ),
    (
        "a snooze",
        lambda ctx: ctx["call"](
            "patch",
            f"/conversaciones/{ctx['c']}",
            json={"snoozed_until": (datetime.now(UTC) + timedelta(hours=3)).isoformat()},
        ),
        "pill-snoozed",
        "list",
    ),
    ("the wake job", lambda ctx: None, "llegó la hora", "thread"),  # the test does it (a snooze first)
    ("a label on it", lambda ctx: _label(ctx["call"], ctx["c"]), "Mayorista", "list"),
    ("a label renamed", lambda ctx: _rename_label(ctx["call"], ctx["c"]), "Minorista", "list"),
    (
        "a contact renamed",
        lambda ctx: ctx["call"]("patch", f"/contactos/{ctx['contact']}", json={"display_name": "Doña Rosa"}),
        "Doña Rosa",
        "list",
    ),
    (
        "a reaction",
        lambda ctx: ctx["call"](
            "put",
            f"/conversaciones/{ctx['c']}/mensajes/{_newest_message_id(ctx['c'])}/reaccion",
            json={"emoji": "🎉"},
        ),
        "🎉",
        "thread",
    ),
    (
        "a bulk action",
        lambda ctx: ctx["call"]("post", "/conversaciones/lote", json={"ids": [ctx["c"]], "action": "resolve"}),
        "pill-resolved",
        "list",
    ),
    (
        "the agent's own notification scope",
        lambda ctx: ctx["call"]("patch", "/yo", json={"notify_scope": "all"}),
        "",
        "list",
    ),
    (
        "a write outside the API (raw SQL)",
        lambda ctx: (
            db.session.execute(
                text("UPDATE contacts SET display_name = 'Por SQL' WHERE id = :id"), {"id": ctx["contact"]}
            ),
            db.session.commit(),
        ),
        "Por SQL",
        "list",
    ),
]


@pytest.mark.parametrize(("what", "write", "shows", "where"), WRITES, ids=[w[0] for w in WRITES])
def test_every_kind_of_write_moves_the_key_and_the_next_poll_renders_it(
    app, client, agent, other_agent, auth, post_webhook, graph, conversation, what, write, shows, where
):
    other_agent.name = "Otra Agente"
    db.session.commit()
    login(client, agent.email)
    call = _api(client, auth)
    sent = call("post", f"/conversaciones/{conversation}/mensajes", json={"type": "text", "text": "Primero"})
    wamid = sent.json["message"]["wamid"]
    contact = db.session.execute(select(Contact.id).where(Contact.wa_id == CUSTOMER)).scalar_one()

    def tick() -> None:
        assert post_webhook(meta.delivery(meta.value(statuses=[meta.status(wamid, "read")]))).status_code == 200

    inbox = Inbox(client, conversation)
    for which in ("list", "thread"):
        inbox.poll(which)
        assert inbox.poll(which).status_code == 304
    if what == "the wake job":
        # The snooze itself is a write too: seen, then the job's.
        until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        assert call("patch", f"/conversaciones/{conversation}", json={"snoozed_until": until}).status_code == 200
        for which in ("list", "thread"):
            inbox.poll(which)
            assert inbox.poll(which).status_code == 304
        db.session.execute(
            update(Conversation)
            .where(Conversation.id == conversation)
            .values(snoozed_until=datetime.now(UTC) - timedelta(minutes=1))
        )
        db.session.commit()
        inbox.poll("list")
        inbox.poll("thread")
        assert build_worker_queue(app).tasks[WAKE_SNOOZED](timestamp=int(time.time())) == 1
    else:
        context = {
            "post_webhook": post_webhook,
            "call": call,
            "c": conversation,
            "contact": contact,
            "tick": tick,
            "other_id": other_agent.id,
            "other_email": other_agent.email.split("@")[0],
        }
        result = write(context)
        if hasattr(result, "status_code"):
            assert result.status_code in (200, 201), (result.status_code, result.json)
    with rendered(app) as templates:
        after = inbox.poll(where)
    assert templates, f"{what}: the next poll was answered without rendering"
    if shows:
        assert after.status_code == 200, f"{what}: the next poll did not render"
        assert shows in after.text, f"{what}: {shows!r} not in the re-rendered {where}"
    for which in ("list", "thread"):
        inbox.poll(which)
        assert inbox.poll(which).status_code == 304, f"{what}: not 304 again once seen"


def test_the_agents_language_is_in_the_key(client, agent, conversation):  # type: ignore[no-untyped-def]
    login(client, agent.email)
    inbox = Inbox(client, conversation)
    spanish = inbox.poll("list")
    assert inbox.poll("list").status_code == 304
    client.post("/preferences", data={"lang": "en", "next": "/"}, headers={"X-CSRFToken": _csrf(client)})
    english = inbox.poll("list")
    assert english.status_code == 200 and english.text != spanish.text


def _csrf(client) -> str:  # type: ignore[no-untyped-def]
    import re

    return re.search(r'<meta name="csrf-token" content="([^"]+)"', client.get("/").text).group(1)


def test_what_changes_with_time_alone_says_until_when_it_holds(client, agent, conversation):
    """A fresh message reads "ahora" until a minute after it: the ETag holds until then, no longer."""
    login(client, agent.email)
    inbox = Inbox(client, conversation)
    etag = inbox.poll("list").headers["ETag"].strip('"')
    key, until, _digest = etag.split("-")
    sent_at = db.session.execute(select(Message.sent_at).order_by(Message.id.desc()).limit(1)).scalar_one()
    assert int(until) == int((sent_at + timedelta(minutes=1)).timestamp())
    # Past that moment the same ETag is no longer enough: the list is rendered again.
    expired = f'"{key}-{int(time.time()) - 1}-{_digest}"'
    again = client.get(inbox.urls["list"], headers={"If-None-Match": expired, "HX-Request": "true"})
    # The body is the same for now ("ahora"): a 304 with a new ETag, after rendering.
    assert again.status_code in (200, 304) and again.headers["ETag"].strip('"').split("-")[0] == key
    assert again.headers["ETag"].strip('"') != expired.strip('"')


# --- the unchanged poll's fast path (app/inbox/polls.py): no agent row, and with the listener no query


def _key(etag: str) -> str:
    return etag.strip('"').split("-")[0]


def test_a_deactivated_agent_never_gets_a_304_again(client, agent, conversation):  # type: ignore[no-untyped-def]
    login(client, agent.email)
    inbox = Inbox(client, conversation)
    etag = inbox.poll("list").headers["ETag"]
    assert inbox.poll("list").status_code == 304
    agent_service.deactivate_agent(agent.email)
    for _ in range(3):  # not once: every poll after it, with the ETag the browser still holds
        ended = client.get(
            inbox.urls["list"], headers={"If-None-Match": etag, "HX-Request": "true", "HX-Trigger": "list"}
        )
        assert ended.status_code == 302 and ended.headers["Location"].startswith("/login")


def test_a_copy_of_a_logged_out_cookie_gets_no_304(app, client, agent, conversation):  # type: ignore[no-untyped-def]
    login(client, agent.email)
    inbox = Inbox(client, conversation)
    etags = {which: inbox.poll(which).headers["ETag"] for which in ("list", "thread")}
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    assert client.post("/logout", headers={"X-CSRFToken": _csrf(client)}).status_code == 302
    kept = app.test_client()  # another tab, or a stolen copy, of the cookie from before the logout
    kept.set_cookie(cookie.key, cookie.value, domain=cookie.domain)
    for which, url in inbox.urls.items():
        headers = {"If-None-Match": etags[which], "HX-Request": "true", "HX-Trigger": which}
        refused = kept.get(url, headers=headers)
        assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")


def test_an_expired_session_gets_no_304(app, client, agent, conversation, monkeypatch):  # type: ignore[no-untyped-def]
    login(client, agent.email)
    inbox = Inbox(client, conversation)
    inbox.poll("list")
    assert inbox.poll("list").status_code == 304
    monkeypatch.setitem(app.config, "SESSION_MAX_SECONDS", -1)  # its absolute lifetime is over
    expired = client.get(
        inbox.urls["list"], headers={"If-None-Match": inbox.etags["list"], "HX-Request": "true", "HX-Trigger": "list"}
    )
    assert expired.status_code == 302 and expired.headers["Location"].startswith("/login")


def test_a_changed_time_zone_moves_the_key(client, agent, conversation):  # type: ignore[no-untyped-def]
    login(client, agent.email)
    inbox = Inbox(client, conversation)
    before = inbox.poll("thread").headers["ETag"]
    assert inbox.poll("thread").status_code == 304
    client.post("/preferences", data={"tz": "Asia/Tokyo", "next": "/"}, headers={"X-CSRFToken": _csrf(client)})
    after = inbox.poll("thread")
    assert _key(after.headers["ETag"]) != _key(before)
    assert inbox.poll("thread").status_code == 304


def test_a_listener_that_cannot_vouch_answers_nothing() -> None:
    """Down (here: it cannot connect): no version from memory, so polls read the sequence."""

    def refuse() -> Any:
        raise OSError("no database for the listener")

    listener = VersionListener(refuse, READ_INBOX_SQL)
    try:
        for _ in range(5):
            assert listener.current() is None
            time.sleep(0.02)
    finally:
        listener.stop()


def test_unchanged_polls_are_counted_on_their_own_budget_then_on_the_pages_one(  # type: ignore[no-untyped-def]
    app, client, agent, conversation, monkeypatch
):
    """An unchanged poll is answered before Flask-Limiter runs, counted by the limits library on
    the agent's budget of unchanged polls; once that is spent it goes through Flask-Limiter (the
    pages' budget, which ends in 429 like any page) and is still answered 304 meanwhile."""
    budget = parse_many("3 per minute")
    monkeypatch.setitem(app.extensions, "poll_limits", budget)
    strategy = rate_limiter().limiter

    def left() -> int:
        return strategy.get_window_stats(budget[0], "unchanged-poll", str(agent.id)).remaining

    login(client, agent.email)
    inbox = Inbox(client, conversation)
    assert inbox.poll("list").status_code == 200
    assert left() == 3  # a rendered poll is the pages' budget's
    for expected in (2, 1, 0):
        assert inbox.poll("list").status_code == 304
        assert left() == expected
    for _ in range(3):
        assert inbox.poll("list").status_code == 304  # through Flask-Limiter now
    assert left() == 0


def test_an_unchanged_poll_is_still_answered_when_its_budget_cannot_be_counted(  # type: ignore[no-untyped-def]
    app, client, agent, conversation, monkeypatch
):
    """Counting on the polls' own budget fails (here: a limit the storage cannot take; in
    production, Redis gone): the poll goes through Flask-Limiter, with its own fallback, and is
    still answered 304. (Flask-Limiter's own storage is left alone: the app is the session's.)"""

    class Unstorable:
        pass

    login(client, agent.email)
    inbox = Inbox(client, conversation)
    assert inbox.poll("list").status_code == 200
    monkeypatch.setitem(app.extensions, "poll_limits", [Unstorable()])
    for _ in range(3):
        assert inbox.poll("list").status_code == 304

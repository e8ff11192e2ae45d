"""Snooze, through HTTP: `PATCH /conversaciones/<id>` with `snoozed_until` (or status `snoozed`),
the bulk action, the `status=snoozed` filter, the events in the thread, the wake job and the
customer's message that wakes a conversation in the webhook's own transaction."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from flask_babel import refresh
from sqlalchemy import select, update

from app.extensions import db
from app.jobs import web_queue
from app.jobs.queue import SNOOZE_QUEUE, WAKE_SNOOZED
from app.jobs.worker import build_worker_queue
from app.models import Contact, Conversation
from app.services import agents as agent_service
from app.whatsapp.snooze import presets
from tests import meta
from tests.conftest import WebhookPoster
from tests.test_media_jobs import jobs, jobs_app, run_jobs  # noqa: F401  (jobs_app: a fixture)
from tests.test_openapi import assert_documented
from tests.test_pages import csrf_token, login

API = "/whatsapp/api/conversaciones"
ONE = "/whatsapp/api/conversaciones/{conversation_id}"
BULK = f"{API}/lote"
MADRID = ZoneInfo("Europe/Madrid")


def _conversation(post_webhook, wa_id: str = "5491180000001") -> int:  # type: ignore[no-untyped-def]
    message = meta.message(sender=wa_id, ts=int(time.time()) - 5, content={"body": "Hola"})
    assert (
        post_webhook(meta.delivery(meta.value(messages=[message], contacts=[meta.contact(wa_id, wa_id)]))).status_code
        == 200
    )
    return db.session.execute(
        select(Conversation.id).join(Contact, Contact.id == Conversation.contact_id).where(Contact.wa_id == wa_id)
    ).scalar_one()


@pytest.fixture
def conversation(post_webhook) -> int:  # type: ignore[no-untyped-def]
    return _conversation(post_webhook)


def _patch(client, auth, conversation_id: int, body: object):  # type: ignore[no-untyped-def]
    response = client.patch(f"{API}/{conversation_id}", json=body, headers=auth)
    assert_documented(response, ONE, "patch")
    return response


def _events(client, auth, conversation_id: int) -> list[dict]:  # type: ignore[no-untyped-def]
    messages = client.get(f"{API}/{conversation_id}/mensajes", headers=auth).json["messages"]
    return [m["event"] for m in messages if m["type"] == "event"]


def _listed(client, auth, status: str) -> list[int]:  # type: ignore[no-untyped-def]
    return [c["id"] for c in client.get(API, headers=auth, query_string={"status": status}).json["conversations"]]


def _in(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).astimezone(MADRID).isoformat(timespec="seconds")


def test_snoozed_until_a_time_leaves_the_open_list_and_shows_under_snoozed(client, auth, agent, conversation):
    before = client.get(API, headers=auth, query_string={"status": "open"})
    detail_before = client.get(f"{API}/{conversation}", headers=auth)
    until = _in(3)
    body = _patch(client, auth, conversation, {"snoozed_until": until}).json
    assert body["status"] == "snoozed"
    assert datetime.fromisoformat(body["snoozed_until"]) == datetime.fromisoformat(until)
    assert body["snoozed_until"].endswith("Z")  # answered in UTC, like every time of the API
    assert _listed(client, auth, "open") == [] and _listed(client, auth, "pending") == []
    assert _listed(client, auth, "snoozed") == [conversation]
    assert _listed(client, auth, "open,snoozed") == [conversation]
    # The polled answers change (their ETags), so every open inbox sees it.
    again = client.get(API, headers=auth, query_string={"status": "open"})
    assert again.headers["ETag"] != before.headers["ETag"]
    detail = client.get(f"{API}/{conversation}", headers={**auth, "If-None-Match": detail_before.headers["ETag"]})
    assert detail.status_code == 200 and detail.json["snoozed_until"] == body["snoozed_until"]
    event = _events(client, auth, conversation)[-1]
    assert event["kind"] == "snoozed" and event["agent"] == {"id": agent.id, "name": agent.name}
    assert datetime.fromisoformat(event["until"]) == datetime.fromisoformat(until)


@pytest.mark.parametrize(
    "body", [{"snoozed_until": None}, {"status": "snoozed"}, {"status": "snoozed", "snoozed_until": None}]
)
def test_snoozed_until_the_customer_writes(client, auth, agent, conversation, body):
    answer = _patch(client, auth, conversation, body).json
    assert answer["status"] == "snoozed" and answer["snoozed_until"] is None
    who = {"id": agent.id, "name": agent.name}
    assert _events(client, auth, conversation) == [{"kind": "snoozed", "until": None, "by": None, "agent": who}]


@pytest.mark.parametrize(
    "value",
    [
        "2020-01-01T09:00:00+01:00",  # the past
        "2099-12-03T09:00:00",  # no offset
        "2099-12-03",  # no time
        "mañana a las 9",
        "2099-13-03T09:00:00Z",
        1893456000,  # a Unix time is not ISO 8601
        True,
        "",
    ],
)
def test_a_past_or_unreadable_time_is_400_and_changes_nothing(client, auth, conversation, value):
    before = client.get(f"{API}/{conversation}", headers=auth).json
    response = _patch(client, auth, conversation, {"snoozed_until": value})
    assert response.status_code == 400 and response.json["error"] == "invalid_body"
    assert "snoozed_until" in response.json["message"]
    assert client.get(f"{API}/{conversation}", headers=auth).json == before
    assert _events(client, auth, conversation) == []


@pytest.mark.parametrize("status", ["open", "pending", "resolved"])
def test_a_time_with_another_status_is_400(client, auth, conversation, status):
    response = _patch(client, auth, conversation, {"status": status, "snoozed_until": _in(1)})
    assert response.status_code == 400 and "snoozed_until" in response.json["message"]
    assert client.get(f"{API}/{conversation}", headers=auth).json["status"] == "open"


def test_status_open_wakes_it_and_says_so_in_the_thread(client, auth, agent, conversation):
    _patch(client, auth, conversation, {"snoozed_until": _in(1)})
    body = _patch(client, auth, conversation, {"status": "open"}).json
    assert body["status"] == "open" and body["snoozed_until"] is None
    assert _listed(client, auth, "open") == [conversation]
    snoozed, woke = _events(client, auth, conversation)
    assert snoozed["kind"] == "snoozed"
    assert woke == {"kind": "woke", "until": None, "by": "agent", "agent": {"id": agent.id, "name": agent.name}}
    # Setting a status on a conversation that is not snoozed records nothing.
    _patch(client, auth, conversation, {"status": "pending"})
    assert len(_events(client, auth, conversation)) == 2


def test_a_customer_message_wakes_it_in_the_webhooks_transaction(client, auth, post_webhook, conversation):
    wa_id = "5491180000001"
    _patch(client, auth, conversation, {"snoozed_until": _in(24)})
    # A reaction is not a message the team must answer: it stays asleep.
    first = client.get(f"{API}/{conversation}/mensajes", headers=auth).json["messages"][0]
    reaction = meta.message("reaction", sender=wa_id, content={"message_id": first["wamid"], "emoji": "👍"})
    assert post_webhook(meta.delivery(meta.value(messages=[reaction]))).status_code == 200
    assert client.get(f"{API}/{conversation}", headers=auth).json["status"] == "snoozed"

    message = meta.message(sender=wa_id, ts=int(time.time()) + 2, content={"body": "¿Hay novedades?"})
    assert post_webhook(meta.delivery(meta.value(messages=[message]))).status_code == 200
    body = client.get(f"{API}/{conversation}", headers=auth).json
    assert body["status"] == "open" and body["snoozed_until"] is None and body["unread_count"] == 2
    thread = client.get(f"{API}/{conversation}/mensajes", headers=auth).json["messages"]
    assert [m["type"] for m in thread[-3:]] == ["event", "text", "event"]
    assert thread[-2]["text"] == "¿Hay novedades?"
    assert thread[-1]["event"] == {"kind": "woke", "until": None, "by": "customer", "agent": None}
    assert body["last_message"]["id"] == thread[-2]["id"]  # an event is never the preview
    # A second message finds it awake: no second event.
    assert post_webhook(meta.delivery(meta.value(messages=[meta.message(sender=wa_id)]))).status_code == 200
    assert len(_events(client, auth, conversation)) == 2


def test_a_customer_message_also_ends_a_snooze_until_the_customer_writes(client, auth, post_webhook, conversation):
    _patch(client, auth, conversation, {"status": "snoozed"})
    assert post_webhook(meta.delivery(meta.value(messages=[meta.message(sender="5491180000001")]))).status_code == 200
    assert client.get(f"{API}/{conversation}", headers=auth).json["status"] == "open"


def _wake_task(app):  # type: ignore[no-untyped-def]
    """The worker's own task function (what the periodic job runs every minute)."""
    return build_worker_queue(app).tasks[WAKE_SNOOZED]


def test_the_wake_job_wakes_the_due_ones_and_no_others(app, client, auth, post_webhook):
    due, later, until_writes, resolved = (_conversation(post_webhook, f"54911800001{i:02d}") for i in range(4))
    for conversation_id in (due, later):
        _patch(client, auth, conversation_id, {"snoozed_until": _in(2)})
    _patch(client, auth, until_writes, {"status": "snoozed"})
    _patch(client, auth, resolved, {"status": "resolved"})
    # Time passes for one of them: its time is now in the past.
    db.session.execute(
        update(Conversation)
        .where(Conversation.id == due)
        .values(snoozed_until=datetime.now(UTC) - timedelta(minutes=1))
    )
    db.session.commit()
    wake = _wake_task(app)
    assert wake(timestamp=int(time.time())) == 1
    assert wake(timestamp=int(time.time())) == 0  # idempotent: nothing left to wake
    states = {c["id"]: c["status"] for c in client.get(API, headers=auth).json["conversations"]}
    assert states == {due: "open", later: "snoozed", until_writes: "snoozed", resolved: "resolved"}
    assert _events(client, auth, due)[-1] == {"kind": "woke", "until": None, "by": "time", "agent": None}
    assert _listed(client, auth, "open") == [due]


def test_bulk_snooze_with_and_without_a_time_and_reopen_wakes_them(client, auth, post_webhook):
    ids = [_conversation(post_webhook, f"54911800002{i:02d}") for i in range(3)]
    until = _in(5)
    response = client.post(BULK, json={"ids": ids[:2], "action": "snooze", "snoozed_until": until}, headers=auth)
    assert_documented(response, BULK, "post")
    assert response.status_code == 200 and response.json["updated"] == 2
    assert all(c["status"] == "snoozed" for c in response.json["conversations"])
    assert {datetime.fromisoformat(c["snoozed_until"]) for c in response.json["conversations"]} == {
        datetime.fromisoformat(until)
    }
    forever = client.post(BULK, json={"ids": ids[2:], "action": "snooze"}, headers=auth).json
    assert forever["conversations"][0]["status"] == "snoozed" and forever["conversations"][0]["snoozed_until"] is None
    assert sorted(_listed(client, auth, "snoozed")) == sorted(ids)
    reopened = client.post(BULK, json={"ids": ids, "action": "reopen"}, headers=auth).json
    assert all(c["status"] == "open" and c["snoozed_until"] is None for c in reopened["conversations"])
    assert all(_events(client, auth, i)[-1]["by"] == "agent" for i in ids)


def test_a_snooze_with_an_offset_postgresql_cannot_store_is_kept_in_utc(client, auth, conversation):
    """Found by schemathesis: Python reads offsets up to ±23:59, PostgreSQL stores up to ±15:59;
    `+17:52` was a 500. The instant is the same in UTC, so it is kept as such."""
    until = (datetime.now(UTC) + timedelta(days=2)).astimezone(timezone(timedelta(hours=17, minutes=52)))
    body = _patch(client, auth, conversation, {"snoozed_until": until.isoformat(timespec="seconds")}).json
    assert body["status"] == "snoozed"
    assert datetime.fromisoformat(body["snoozed_until"]) == until.replace(microsecond=0)


@pytest.mark.parametrize("until", ["9999-12-31T23:30:00-01:00", "0001-01-01T00:30:00+01:00"])
def test_a_snooze_past_what_utc_can_hold_is_refused(client, auth, conversation, until):
    response = client.patch(f"{API}/{conversation}", json={"snoozed_until": until}, headers=auth)
    assert response.status_code == 400 and "snoozed_until" in response.json["message"]
    assert client.get(f"{API}/{conversation}", headers=auth).json["status"] == "open"


@pytest.mark.parametrize(
    "body",
    [
        {"action": "snooze", "snoozed_until": "2020-01-01T00:00:00Z"},
        {"action": "snooze", "snoozed_until": "pronto"},
        {"action": "resolve", "snoozed_until": "2099-01-01T00:00:00Z"},
    ],
)
def test_bulk_snooze_refusals_change_nothing(client, auth, post_webhook, body):
    ids = [_conversation(post_webhook, f"54911800003{i:02d}") for i in range(2)]
    response = client.post(BULK, json={"ids": ids, **body}, headers=auth)
    assert_documented(response, BULK, "post")
    assert response.status_code == 400 and "snoozed_until" in response.json["message"]
    assert set(_listed(client, auth, "open")) == set(ids)
    assert all(_events(client, auth, i) == [] for i in ids)


def test_snoozing_needs_an_agent_and_any_agent_may(app, client, other_agent, conversation):
    url = f"{API}/{conversation}"
    anonymous = app.test_client().patch(url, json={"status": "snoozed"})
    assert anonymous.status_code == 401
    login(client, other_agent.email, "correct horse battery 2")
    assert client.patch(url, json={"status": "snoozed"}).status_code == 403  # a session needs the CSRF header
    bearer = {"Authorization": f"Bearer {agent_service.create_token(other_agent.email)}"}
    assert app.test_client().patch(url, json={"status": "snoozed"}, headers=bearer).json["status"] == "snoozed"


def test_presets_are_in_the_agents_time_zone():
    # Thursday 3 December 2026, 23:30 in Madrid (22:30 UTC).
    now = datetime(2026, 12, 3, 22, 30, tzinfo=UTC)
    madrid = presets(now, MADRID)
    assert madrid.in_an_hour == now + timedelta(hours=1)
    assert madrid.tomorrow == datetime(2026, 12, 4, 9, 0, tzinfo=MADRID)  # Friday 9:00 in Madrid
    assert madrid.next_week == datetime(2026, 12, 7, 9, 0, tzinfo=MADRID)  # Monday
    # The same instant is already Friday in Tokyo, still Thursday in Buenos Aires.
    tokyo = ZoneInfo("Asia/Tokyo")
    assert presets(now, tokyo).tomorrow == datetime(2026, 12, 5, 9, 0, tzinfo=tokyo)
    buenos_aires = ZoneInfo("America/Argentina/Buenos_Aires")
    assert presets(now, buenos_aires).tomorrow == datetime(2026, 12, 4, 9, 0, tzinfo=buenos_aires)
    # From a Monday, next week is the Monday after.
    assert presets(datetime(2026, 12, 7, 10, 0, tzinfo=UTC), MADRID).next_week == datetime(
        2026, 12, 14, 9, 0, tzinfo=MADRID
    )


def _prefer(client, lang: str, tz: str) -> None:  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/").text)
    client.post("/preferences", data={"csrf_token": token, "lang": lang, "tz": tz, "next": "/"})
    refresh()  # the test's app context spans requests: forget the locale Flask-Babel cached


@pytest.mark.parametrize(
    ("lang", "tz", "pill", "event", "option"),
    [
        ("es", "Europe/Madrid", "Pospuesta hasta mañana a las 9:00", "la pospuso hasta el", "Pospuestas"),
        ("en", "Asia/Tokyo", "Snoozed until tomorrow 9:00", "snoozed it until", "Snoozed"),
    ],
)
def test_the_inbox_shows_the_snooze_in_the_agents_language_and_time_zone(
    client, auth, agent, conversation, lang, tz, pill, event, option
):
    login(client, agent.email)
    _prefer(client, lang, tz)
    zone = ZoneInfo(tz)
    tomorrow = presets(datetime.now(UTC), zone).tomorrow
    page = client.get(f"/?c={conversation}").text
    # The menu's presets are the server's, in the agent's zone: tomorrow and next Monday at 9:00.
    assert f'data-snooze-until="{tomorrow.isoformat()}"' in page
    assert f'data-snooze-zone="{tz}"' in page and '<option value="snoozed"' in page and option in page
    snoozing = _patch(client.application.test_client(), auth, conversation, {"snoozed_until": tomorrow.isoformat()})
    assert snoozing.status_code == 200
    snoozed_list = client.get("/", query_string={"status": "snoozed"}).text
    assert f'id="row-{conversation}"' in snoozed_list and pill in snoozed_list
    assert f'id="row-{conversation}"' not in client.get("/").text  # the default tab is the open conversations
    thread = client.get(f"/inbox/fragments/conversations/{conversation}").text
    assert pill in thread and "msg-event" in thread and event in thread
    woke = client.application.test_client().patch(f"{API}/{conversation}", json={"status": "open"}, headers=auth)
    assert woke.status_code == 200
    assert f'id="row-{conversation}"' in client.get("/").text


def test_the_worker_runs_the_wake_job_on_committed_data(jobs_app):  # type: ignore[no-untyped-def]  # noqa: F811
    """Through the real queue: the job deferred as the periodic deferrer does, a worker run."""
    http = jobs_app.test_client()
    with jobs_app.app_context():
        agent_service.create_agent("ana@example.com", "Ana", "correct horse battery", role="admin")
        bearer = {"Authorization": f"Bearer {agent_service.create_token('ana@example.com')}"}
    message = meta.message(sender="5491180000900", content={"body": "Hola"})
    assert WebhookPoster(http)(meta.delivery(meta.value(messages=[message]))).status_code == 200
    conversation = http.get(API, headers=bearer).json["conversations"][0]["id"]
    assert http.patch(f"{API}/{conversation}", json={"snoozed_until": _in(1)}, headers=bearer).status_code == 200
    with jobs_app.app_context():
        db.session.execute(update(Conversation).values(snoozed_until=datetime.now(UTC) - timedelta(seconds=1)))
        db.session.commit()
        web_queue().configure_task(WAKE_SNOOZED, queue=SNOOZE_QUEUE, queueing_lock=WAKE_SNOOZED).defer(timestamp=0)
    run_jobs(jobs_app)
    assert http.get(f"{API}/{conversation}", headers=bearer).json["status"] == "open"
    assert [j.status for j in jobs(jobs_app) if j.task_name == WAKE_SNOOZED] in ([], ["succeeded"])

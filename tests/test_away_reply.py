"""Business hours through HTTP (`GET|PUT /whatsapp/api/horario`) and the away reply: a customer
who writes while the business is closed gets the away message exactly once per closed period
per conversation — through the webhook, the real jobs queue (Procrastinate on the test
database) and the fake Graph server.

The jobs tests use committed data (`committed_db`): the worker and the concurrent requests have
their own connections. Timestamps are close to now (the 24-hour window must be open when the
reply goes out), so the schedules are built around them, in UTC.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from app.extensions import db
from app.jobs.queue import SEND_REPLY
from app.jobs.replies import sweep_replies
from app.jobs.worker import build_worker_queue, run_worker
from app.models import AutoReply, Conversation, Message
from app.services import agents as agent_service
from app.services import auto_replies
from app.whatsapp.business_hours import DAYS
from tests import fake_graph, meta
from tests.conftest import WebhookPoster
from tests.fake_graph import POST_MESSAGES, error
from tests.live import Gunicorn
from tests.test_pages import csrf_token, login

AWAY = "Ahora estamos cerrados; le respondemos a partir de las 9:00."
GREETING = "¡Hola! Gracias por escribirnos."
QUEUE_TABLES = "procrastinate_jobs, procrastinate_periodic_defers, procrastinate_workers"
ALL_DAY = {day: [["00:00", "24:00"]] for day in DAYS}
NEVER = {day: [] for day in DAYS}


def settings(week: dict[str, list[list[str]]] | None = None, **changes: Any) -> dict[str, Any]:
    return {
        "time_zone": "UTC",
        "week": NEVER if week is None else week,
        "holidays": [],
        "enabled": True,
        "away_message": AWAY,
        **changes,
    }


def open_between(start: datetime, end: datetime) -> dict[str, list[list[str]]]:
    """A UTC week open only from `start` to `end` (minutes; split at midnight when it crosses one)."""
    week: dict[str, list[list[str]]] = {day: [] for day in DAYS}
    at = start
    while at < end:
        midnight = datetime.combine(at.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        stop = min(end, midnight)
        week[DAYS[at.weekday()]].append([at.strftime("%H:%M"), "24:00" if stop == midnight else stop.strftime("%H:%M")])
        at = stop
    return week


def ts(at: datetime) -> int:
    return int(at.timestamp())


# --- the settings through the API ---------------------------------------------------------------


def test_the_defaults_are_switched_off_and_a_put_round_trips(client: FlaskClient, auth: dict[str, str]) -> None:
    first = client.get("/whatsapp/api/horario", headers=auth)
    assert first.status_code == 200
    assert first.get_json()["enabled"] is False and first.get_json()["open_now"] is True
    assert first.get_json()["updated_at"] is None
    body = settings(
        {**NEVER, "mon": [["09:00", "14:00"], ["16:00", "20:00"]], "sat": [["10:00", "24:00"]]},
        time_zone="Europe/Madrid",
        holidays=["2026-12-25", "2026-01-06"],
        greeting_enabled=True,
        greeting_message=GREETING,
    )
    saved = client.put("/whatsapp/api/horario", json=body, headers=auth)
    assert saved.status_code == 200, saved.get_json()
    answer = saved.get_json()
    assert {k: answer[k] for k in body} == {**body, "holidays": ["2026-01-06", "2026-12-25"]}
    assert answer["updated_at"] is not None and "next_opening" in answer and "open_now" in answer
    again = client.get("/whatsapp/api/horario", headers=auth).get_json()
    assert again == {**answer, "open_now": again["open_now"], "next_opening": again["next_opening"]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time_zone": "Europe/Madird"}, "time_zone"),
        ({"week": {**NEVER, "mon": [["09:00", "14:00"], ["13:00", "20:00"]]}}, "week.mon[1]"),
        ({"week": {**NEVER, "tue": [["14:00", "09:00"]]}}, "week.tue[0]"),
        ({"week": {**NEVER, "wed": [["9:00", "14:00"]]}}, "week.wed.0.0"),
        ({"week": {**NEVER, "thu": [["24:00", "24:00"]]}}, "week.thu[0]"),
        ({"week": {k: v for k, v in NEVER.items() if k != "sun"}}, "week.sun"),
        ({"holidays": ["2026-02-30"]}, "holidays[0]"),
        ({"enabled": "yes"}, "enabled"),
        ({"away_message": "  "}, "away_message"),
        ({"greeting_enabled": True}, "greeting_message"),
        ({"colour": "green"}, "colour"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(
    client: FlaskClient, auth: dict[str, str], change: dict[str, Any], field: str
) -> None:
    assert client.put("/whatsapp/api/horario", json=settings(ALL_DAY), headers=auth).status_code == 200
    before = client.get("/whatsapp/api/horario", headers=auth).get_json()
    refused = client.put("/whatsapp/api/horario", json={**settings(), **change}, headers=auth)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_body"
    assert f"'{field}'" in refused.get_json()["message"], refused.get_json()
    after = client.get("/whatsapp/api/horario", headers=auth).get_json()
    assert after["updated_at"] == before["updated_at"] and after["week"] == before["week"]


def test_an_agent_reads_the_hours_but_only_an_admin_changes_them(client: FlaskClient, other_agent: Any) -> None:
    headers = {"Authorization": f"Bearer {agent_service.create_token(other_agent.email)}"}
    assert client.get("/whatsapp/api/horario", headers=headers).status_code == 200
    refused = client.put("/whatsapp/api/horario", json=settings(), headers=headers)
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    assert client.get("/whatsapp/api/horario", headers=headers).get_json()["updated_at"] is None


# --- the admin page --------------------------------------------------------------------------------


def _page_form(client: FlaskClient, **fields: str) -> dict[str, str]:
    page = client.get("/admin/horario")
    assert page.status_code == 200
    form = {"csrf_token": csrf_token(page.text), "time_zone": "Europe/Madrid", "away_message": AWAY, "enabled": "y"}
    form.update({day: "" for day in DAYS})
    form.update(fields)
    return form


def test_the_admin_page_edits_the_hours(client: FlaskClient, agent: Any, auth: dict[str, str]) -> None:
    login(client, agent.email)
    page = client.get("/admin/horario")
    assert page.status_code == 200 and "09:00-14:00, 16:00-20:00" in page.text  # the defaults
    saved = client.post(
        "/admin/horario",
        data=_page_form(client, mon="9:00-14:00, 16:00 - 20:00", sat="10:00-24:00", holidays="2026-12-25\n2026-01-06"),
    )
    assert saved.status_code == 302, saved.text
    body = client.get("/whatsapp/api/horario", headers=auth).get_json()
    assert body["week"]["mon"] == [["09:00", "14:00"], ["16:00", "20:00"]]
    assert body["week"]["sat"] == [["10:00", "24:00"]] and body["week"]["tue"] == []
    assert body["holidays"] == ["2026-01-06", "2026-12-25"] and body["enabled"] is True
    assert "10:00-24:00" in client.get("/admin/horario").text


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"tue": "14:00-09:00"}, 'id="hours-tue-error"'),
        ({"wed": "mañana"}, 'id="hours-wed-error"'),
        ({"holidays": "25/12/2026"}, 'id="hours-holidays-error"'),
        ({"time_zone": "Madrid"}, 'id="hours-time_zone-error"'),
        ({"away_message": ""}, 'id="hours-away_message-error"'),
    ],
)
def test_the_admin_page_shows_what_is_wrong_and_saves_nothing(
    client: FlaskClient, agent: Any, auth: dict[str, str], fields: dict[str, str], shown: str
) -> None:
    login(client, agent.email)
    refused = client.post("/admin/horario", data=_page_form(client, **fields))
    assert refused.status_code == 400
    assert shown in refused.text and 'aria-invalid="true"' in refused.text
    assert client.get("/whatsapp/api/horario", headers=auth).get_json()["updated_at"] is None


def test_the_admin_page_is_for_admins(client: FlaskClient, other_agent: Any) -> None:
    login(client, other_agent.email, "correct horse battery 2")
    assert client.get("/admin/horario").status_code == 403


# --- the away reply, through the webhook and the jobs -------------------------------------------


def _empty_queue(app: Flask) -> None:
    with app.app_context():
        db.session.execute(text(f"TRUNCATE {QUEUE_TABLES} RESTART IDENTITY CASCADE"))
        db.session.commit()


@pytest.fixture
def jobs_app(app: Flask, committed_db: str, graph: fake_graph.FakeGraph) -> Iterator[Flask]:
    _empty_queue(app)
    yield app
    _empty_queue(app)


@pytest.fixture
def admin(jobs_app: Flask) -> dict[str, str]:
    with jobs_app.app_context():
        agent = agent_service.create_agent("ana@example.com", "Ana", "correct horse battery", role="admin")
        return {"Authorization": f"Bearer {agent_service.create_token(agent.email)}"}


@pytest.fixture
def http(jobs_app: Flask) -> FlaskClient:
    return jobs_app.test_client()


def put_hours(http: FlaskClient, admin: dict[str, str], body: dict[str, Any]) -> None:
    response = http.put("/whatsapp/api/horario", json=body, headers=admin)
    assert response.status_code == 200, response.get_json()


def post(http: FlaskClient, *messages: dict, wa_id: str = "5491155550001") -> None:
    value = meta.value(messages=list(messages), contacts=[meta.contact(wa_id)])
    response = WebhookPoster(http)(meta.delivery(value))
    assert response.status_code == 200, response.text


def customer(at: datetime | None = None, wa_id: str = "5491155550001", **extra: Any) -> dict:
    return meta.message(ts=ts(at) if at else None, sender=wa_id, **extra)


def replies(app: Flask) -> list[AutoReply]:
    with app.app_context():
        found = list(db.session.execute(select(AutoReply).order_by(AutoReply.id)).scalars())
        db.session.expunge_all()
        db.session.commit()
        return found


def automatic_messages(app: Flask) -> list[Message]:
    with app.app_context():
        found = list(
            db.session.execute(
                select(Message).where(Message.sender == "system", Message.direction == "out").order_by(Message.id)
            ).scalars()
        )
        db.session.expunge_all()
        db.session.commit()
        return found


def queued_sends(app: Flask) -> int:
    with app.app_context():
        count = db.session.execute(
            text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = :t"), {"t": SEND_REPLY}
        ).scalar_one()
        db.session.commit()
        return int(count)


def run_jobs(app: Flask) -> None:
    """The real worker, run until the queue is empty."""
    run_worker(app, once=True)


def sent_texts(graph: fake_graph.FakeGraph) -> list[tuple[str, str]]:
    return [(r.body["to"], r.body["text"]["body"]) for r in graph.sent(POST_MESSAGES)]


def test_a_customer_who_writes_while_closed_gets_the_away_message_once(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    put_hours(http, admin, settings())
    post(http, customer())
    assert graph.requests == []  # the webhook never calls Graph
    assert [r.state for r in replies(jobs_app)] == ["pending"]
    assert queued_sends(jobs_app) == 1  # queued after the commit

    run_jobs(jobs_app)

    assert sent_texts(graph) == [("5491155550001", AWAY)]
    [reply] = replies(jobs_app)
    [message] = automatic_messages(jobs_app)
    assert reply.state == "sent" and reply.reply_message_id == message.id
    assert message.status == "accepted" and message.wamid and message.agent_id is None
    thread = http.get(f"/whatsapp/api/conversaciones/{reply.conversation_id}/mensajes", headers=admin).get_json()
    shown = [m for m in thread["messages"] if m["direction"] == "out"]
    assert [(m["sender"], m["text"]) for m in shown] == [({"type": "system"}, AWAY)]
    # It is not the team's answer: the conversation still waits for an agent.
    with jobs_app.app_context():
        conversation = db.session.get(Conversation, reply.conversation_id)
        assert conversation is not None
        assert conversation.last_message_id == message.id and conversation.last_agent_message_id is None
        db.session.commit()

    run_jobs(jobs_app)  # nothing is left to send
    assert len(graph.sent(POST_MESSAGES)) == 1


def test_duplicate_deliveries_and_messages_in_a_row_get_one_reply(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    put_hours(http, admin, settings())
    same = customer()
    for _ in range(5):
        post(http, same)  # Meta's retries of one delivery
    post(http, customer(), customer(), customer())  # three in one delivery
    for _ in range(5):
        post(http, customer())  # five more, one by one
    run_jobs(jobs_app)
    assert len(replies(jobs_app)) == 1
    assert sent_texts(graph) == [("5491155550001", AWAY)]


def test_concurrent_deliveries_get_one_reply(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    put_hours(http, admin, settings())
    same = customer()
    bodies = [same] * 8 + [customer() for _ in range(8)]
    barrier = threading.Barrier(len(bodies))

    def deliver(message: dict) -> int:
        client = jobs_app.test_client()
        barrier.wait()
        body = meta.encode(meta.delivery(meta.value(messages=[message])))
        return client.post("/webhook/whatsapp", data=body, headers=meta.signed_headers(body)).status_code

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        assert set(pool.map(deliver, bodies)) == {200}
    run_jobs(jobs_app)
    assert len(replies(jobs_app)) == 1
    assert len(graph.sent(POST_MESSAGES)) == 1


@pytest.mark.live
def test_concurrent_deliveries_to_a_live_gunicorn_get_one_reply(
    jobs_app: Flask, committed_db: str, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    put_hours(http, admin, settings())
    same = meta.encode(meta.delivery(meta.value(messages=[customer()])))
    others = [meta.encode(meta.delivery(meta.value(messages=[customer()]))) for _ in range(20)]
    with Gunicorn(committed_db) as server, ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(server.post_webhook, [same] * 20 + others))
    assert {r.status_code for r in statuses} == {200}
    assert len(replies(jobs_app)) == 1
    run_jobs(jobs_app)
    assert len(graph.sent(POST_MESSAGES)) == 1


def test_no_reply_while_open_or_switched_off(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    put_hours(http, admin, settings(ALL_DAY))
    post(http, customer())
    put_hours(http, admin, settings(enabled=False))  # never open, but the hours are not in force
    post(http, customer(wa_id="5491155550002"), wa_id="5491155550002")
    run_jobs(jobs_app)
    assert replies(jobs_app) == [] and queued_sends(jobs_app) == 0
    assert graph.sent(POST_MESSAGES) == []


def test_the_next_closed_period_gets_another_reply(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # Closed until 2 h ago, open for an hour, closed again since an hour ago.
    put_hours(http, admin, settings(open_between(now - timedelta(hours=2), now - timedelta(hours=1))))
    post(http, customer(now - timedelta(hours=3)), customer(now - timedelta(hours=2, minutes=30)))
    post(http, customer(now - timedelta(minutes=90)))  # while open: nothing
    post(http, customer(now - timedelta(minutes=30)), customer(now - timedelta(minutes=5)))
    run_jobs(jobs_app)
    owed = replies(jobs_app)
    assert len(owed) == 2 and {r.state for r in owed} == {"sent"}
    assert owed[1].period_start == now - timedelta(hours=1)
    assert sent_texts(graph) == [("5491155550001", AWAY)] * 2


def test_a_holiday_is_closed_all_day(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    now = datetime.now(UTC)
    put_hours(http, admin, settings(ALL_DAY, holidays=[now.date().isoformat()]))
    post(http, customer(now))
    run_jobs(jobs_app)
    assert [r.period_start for r in replies(jobs_app)] == [
        datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)
    ]
    assert len(graph.sent(POST_MESSAGES)) == 1


def test_each_conversation_gets_its_own_reply(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    put_hours(http, admin, settings())
    post(http, customer(wa_id="5491155550001"), wa_id="5491155550001")
    post(http, customer(wa_id="5491155550002"), wa_id="5491155550002")
    run_jobs(jobs_app)
    assert sorted(sent_texts(graph)) == [("5491155550001", AWAY), ("5491155550002", AWAY)]


def test_reactions_statuses_and_echoes_get_no_reply(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    put_hours(http, admin, settings())
    reaction = meta.message("reaction", content={"message_id": "wamid.X", "emoji": "👍"})
    post(http, reaction)
    status = meta.delivery(meta.value(statuses=[meta.status("wamid.unknown", "delivered")]))
    assert WebhookPoster(http)(status).status_code == 200
    run_jobs(jobs_app)
    assert replies(jobs_app) == [] and graph.sent(POST_MESSAGES) == []


def test_the_greeting_goes_to_a_first_message_ever_and_the_away_message_wins_while_closed(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    put_hours(http, admin, settings(ALL_DAY, greeting_enabled=True, greeting_message=GREETING))
    post(http, customer(), customer())
    post(http, customer())
    put_hours(http, admin, settings(greeting_enabled=True, greeting_message=GREETING))
    post(http, customer(wa_id="5491155550002"), wa_id="5491155550002")  # first ever, but closed
    run_jobs(jobs_app)
    assert sorted(sent_texts(graph)) == [("5491155550001", GREETING), ("5491155550002", AWAY)]
    assert sorted(r.kind for r in replies(jobs_app)) == ["away", "greeting"]


def test_graphs_refusal_is_kept_and_never_sent_again(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    put_hours(http, admin, settings())
    graph.script(POST_MESSAGES, error(131026))
    post(http, customer())
    run_jobs(jobs_app)
    [reply] = replies(jobs_app)
    [message] = automatic_messages(jobs_app)
    assert reply.state == "failed" and reply.reason == "131026"
    assert message.status == "failed" and message.error_code == 131026
    with jobs_app.app_context():
        assert auto_replies.send_reply(reply.id) == "not_owed"
    asyncio_run_sweep(jobs_app)
    run_jobs(jobs_app)
    assert len(graph.sent(POST_MESSAGES)) == 1


def test_no_reply_once_the_window_closed_or_an_agent_answered(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    put_hours(http, admin, settings())
    post(http, customer(datetime.now(UTC) - timedelta(hours=25)))  # Meta's late redelivery
    post(http, customer(wa_id="5491155550002"), wa_id="5491155550002")
    conversation = replies(jobs_app)[1].conversation_id
    answered = http.post(
        f"/whatsapp/api/conversaciones/{conversation}/mensajes", json={"type": "text", "text": "Hola"}, headers=admin
    )
    assert answered.status_code in (200, 201), answered.get_json()
    run_jobs(jobs_app)
    assert sorted((r.state, r.reason) for r in replies(jobs_app)) == [
        ("skipped", "answered"),
        ("skipped", "window_closed"),
    ]
    assert [b for _, b in sent_texts(graph)] == ["Hola"]


def asyncio_run_sweep(app: Flask) -> int:
    queue = build_worker_queue(app)

    async def sweep() -> int:
        async with queue.open_async():
            return await sweep_replies(queue, app)

    return asyncio.run(sweep())


def test_the_sweep_sends_a_reply_whose_job_was_lost(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    put_hours(http, admin, settings())
    post(http, customer())
    _empty_queue(jobs_app)  # the job is lost (say, the database went away right after the commit)
    assert asyncio_run_sweep(jobs_app) == 0  # too fresh: its job may still be on the way
    with jobs_app.app_context():
        db.session.execute(text("UPDATE auto_replies SET created_at = now() - interval '5 minutes'"))
        db.session.commit()
    assert asyncio_run_sweep(jobs_app) == 1
    assert asyncio_run_sweep(jobs_app) == 0  # its job is waiting: not queued twice
    run_jobs(jobs_app)
    assert sent_texts(graph) == [("5491155550001", AWAY)]


def test_a_change_saved_by_another_process_applies_to_the_very_next_delivery(
    jobs_app: Flask, http: FlaskClient, admin: dict[str, str]
) -> None:
    """The webhook keeps the parsed settings per process under the row's fingerprint: a change
    written anywhere else (another worker, psql) is in force for the next delivery, not later."""
    put_hours(http, admin, settings(ALL_DAY))
    post(http, customer())  # open: no reply; this process now holds the open settings
    assert replies(jobs_app) == []

    def elsewhere(sql: str) -> None:
        with jobs_app.app_context():
            db.session.execute(text(sql))
            db.session.commit()

    closed = '{"mon": [], "tue": [], "wed": [], "thu": [], "fri": [], "sat": [], "sun": []}'
    elsewhere(f"UPDATE business_hours SET week = '{closed}'::jsonb")  # updated_at left as it was
    post(http, customer(wa_id="5491155550002"), wa_id="5491155550002")
    assert [r.kind for r in replies(jobs_app)] == ["away"]

    elsewhere("UPDATE business_hours SET enabled = false")
    post(http, customer(wa_id="5491155550003"), wa_id="5491155550003")
    assert len(replies(jobs_app)) == 1

"""The reports (`GET /whatsapp/api/informes`, `.csv`, the page): seeded through the webhook and
the API with known timestamps, then read over HTTP. Customer messages and echoes (replies sent
from the business phone, which count as the team's) carry Meta's timestamps, so their waits are
exact; replies sent through the API are stored at the real time, so theirs are checked to the
second of the test's own clock."""

from __future__ import annotations

import csv
import importlib.util
import io
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from flask.testing import FlaskClient
from flask_babel import refresh
from sqlalchemy import text

from app.services import agents as agent_service
from tests import meta
from tests.conftest import PROJECT_ROOT, WebhookPoster
from tests.test_pages import csrf_token, login

MADRID = ZoneInfo("Europe/Madrid")
SPLIT = [["09:00", "14:00"], ["16:00", "20:00"]]
HOURS = {
    "time_zone": "Europe/Madrid",
    "week": {"mon": SPLIT, "tue": SPLIT, "wed": SPLIT, "thu": SPLIT, "fri": SPLIT, "sat": [], "sun": []},
    "holidays": [],
    "enabled": True,
    "away_message": "Estamos cerrados.",
}
REPORT = "/whatsapp/api/informes"
MIGRATION = PROJECT_ROOT / "migrations" / "versions" / "20261202_0012_reports.py"


def madrid(*args: int) -> datetime:
    return datetime(*args, tzinfo=MADRID)  # type: ignore[misc]


def ts(at: datetime) -> int:
    return int(at.timestamp())


class Seed:
    """Customers writing and the team answering from the phone, at chosen instants."""

    def __init__(self, client: FlaskClient) -> None:
        self.post = WebhookPoster(client)

    def customer(self, wa_id: str, at: datetime) -> None:
        value = meta.value(messages=[meta.message(sender=wa_id, ts=ts(at))], contacts=[meta.contact(wa_id)])
        assert self.post(meta.delivery(value)).status_code == 200

    def echo(self, wa_id: str, at: datetime) -> None:
        value = meta.value(contacts=[meta.contact(wa_id)])
        value["message_echoes"] = [
            {"id": meta.wamid(), "to": wa_id, "timestamp": str(ts(at)), "type": "text", "text": {"body": "Hola"}}
        ]
        assert self.post(meta.delivery(value, field="smb_message_echoes")).status_code == 200


@pytest.fixture
def seed(client: FlaskClient) -> Seed:
    return Seed(client)


@pytest.fixture
def hours(client: FlaskClient, auth: dict[str, str]) -> None:
    assert client.put("/whatsapp/api/horario", json=HOURS, headers=auth).status_code == 200


def report(client: FlaskClient, auth: dict[str, str], desde: str, hasta: str) -> dict[str, Any]:
    response = client.get(f"{REPORT}?desde={desde}&hasta={hasta}", headers=auth)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def conversation_id(client: FlaskClient, auth: dict[str, str], wa_id: str) -> int:
    rows = client.get(f"/whatsapp/api/conversaciones?q={wa_id}", headers=auth).get_json()["conversations"]
    assert len(rows) == 1
    return rows[0]["id"]


def patch(client: FlaskClient, auth: dict[str, str], conversation: int, body: dict[str, Any]) -> None:
    response = client.patch(f"/whatsapp/api/conversaciones/{conversation}", json=body, headers=auth)
    assert response.status_code == 200, response.get_json()


def today() -> str:
    return datetime.now(MADRID).date().isoformat()


# --- first responses, business hours and wall-clock ------------------------------------------


def test_first_response_median_and_p90_wall_clock_and_within_business_hours(client, auth, seed, hours):
    # Monday 16 and Tuesday 17 November 2026, Madrid (UTC+1), open 09–14 and 16–20.
    seed.customer("34600000001", madrid(2026, 11, 16, 10, 0))
    seed.echo("34600000001", madrid(2026, 11, 16, 10, 10))  # 600 s, all open
    seed.customer("34600000002", madrid(2026, 11, 16, 13, 50))
    seed.customer("34600000002", madrid(2026, 11, 16, 13, 55))  # still the first unanswered: 13:50
    seed.echo("34600000002", madrid(2026, 11, 16, 16, 10))  # 8,400 s; open 13:50–14:00 + 16:00–16:10 = 1,200
    seed.customer("34600000003", madrid(2026, 11, 16, 19, 0))
    seed.echo("34600000003", madrid(2026, 11, 17, 9, 30))  # 52,200 s; open 19–20 + 09:00–09:30 = 5,400
    seed.customer("34600000004", madrid(2026, 11, 17, 11, 0))
    seed.echo("34600000004", madrid(2026, 11, 17, 11, 20))  # 1,200 s
    seed.echo("34600000004", madrid(2026, 11, 17, 11, 25))  # a second reply is no first response
    seed.customer("34600000004", madrid(2026, 11, 17, 11, 30))
    seed.echo("34600000004", madrid(2026, 11, 17, 11, 35))  # a new wait: 300 s

    body = report(client, auth, "2026-11-16", "2026-11-17")

    # wall: 300, 600, 1200, 8400, 52200 → median 1200; p90 at rank 3.6: 8400 + 0.6 × 43800
    assert body["first_response"]["wall"] == {"count": 5, "median_seconds": 1200, "p90_seconds": 34680}
    # business: 300, 600, 1200, 1200, 5400 → median 1200; p90: 1200 + 0.6 × 4200
    assert body["first_response"]["business"] == {"count": 5, "median_seconds": 1200, "p90_seconds": 3720}
    assert body["business_hours_enabled"] is True
    assert body["percentile_sample_every"] == {"first_response": 1, "resolution": 1}  # exact
    assert body["range"] == {
        "desde": "2026-11-16",
        "hasta": "2026-11-17",
        "days": 2,
        "time_zone": "Europe/Madrid",
        "start": "2026-11-15T23:00:00Z",
        "end": "2026-11-17T23:00:00Z",
    }
    monday, tuesday = body["days"]
    assert (monday["date"], monday["opened"], monday["first_responses"]) == ("2026-11-16", 3, 2)
    assert (tuesday["date"], tuesday["opened"], tuesday["first_responses"]) == ("2026-11-17", 1, 3)
    assert (monday["first_response_median_seconds"], monday["first_response_business_median_seconds"]) == (4500, 900)
    assert (monday["messages_in"], monday["messages_out"]) == (4, 2)
    assert (tuesday["messages_in"], tuesday["messages_out"]) == (2, 4)
    by_hour = {h["hour"]: (h["messages_in"], h["messages_out"]) for h in body["hours"]}
    assert len(body["hours"]) == 24
    assert by_hour[13] == (2, 0) and by_hour[16] == (0, 1) and by_hour[11] == (2, 3) and by_hour[9] == (0, 1)
    assert by_hour[10] == (1, 1) and by_hour[19] == (1, 0) and by_hour[3] == (0, 0)
    # The replies came from the phone: no agent to credit.
    assert [row["agent"] for row in body["agents"]] == [None]
    assert body["agents"][0]["first_response"] == body["first_response"]

    # One day only: Tuesday's three.
    tuesday_only = report(client, auth, "2026-11-17", "2026-11-17")
    assert tuesday_only["first_response"]["wall"]["count"] == 3
    assert tuesday_only["first_response"]["wall"]["median_seconds"] == 1200


def test_while_the_hours_are_off_business_seconds_are_wall_seconds(client, auth, seed):
    seed.customer("34600000011", madrid(2026, 11, 14, 22, 0))  # a Saturday night
    seed.echo("34600000011", madrid(2026, 11, 15, 8, 0))
    body = report(client, auth, "2026-11-15", "2026-11-15")
    assert body["business_hours_enabled"] is False
    assert body["first_response"]["wall"]["median_seconds"] == 36000
    assert body["first_response"]["business"]["median_seconds"] == 36000


# --- days in the business time zone -----------------------------------------------------------


def test_days_are_local_dates_across_midnight_and_the_dst_change(client, auth, seed, hours):
    # Madrid leaves summer time on Sunday 25 October 2026 (03:00 CEST → 02:00 CET): that day has 25 hours.
    seed.customer("34600000021", datetime(2026, 10, 23, 22, 30, tzinfo=UTC))  # Sat 24, 00:30 CEST
    seed.customer("34600000022", datetime(2026, 10, 24, 21, 59, tzinfo=UTC))  # Sat 24, 23:59 CEST
    seed.customer("34600000023", datetime(2026, 10, 24, 22, 30, tzinfo=UTC))  # Sun 25, 00:30 CEST
    seed.customer("34600000024", datetime(2026, 10, 25, 22, 30, tzinfo=UTC))  # Sun 25, 23:30 CET
    seed.customer("34600000025", datetime(2026, 10, 25, 23, 30, tzinfo=UTC))  # Mon 26, 00:30 CET
    seed.customer("34600000026", datetime(2026, 10, 26, 23, 30, tzinfo=UTC))  # Tue 27: outside
    seed.customer("34600000027", datetime(2026, 10, 23, 21, 59, tzinfo=UTC))  # Fri 23, 23:59: outside

    body = report(client, auth, "2026-10-24", "2026-10-26")

    assert body["range"]["start"] == "2026-10-23T22:00:00Z"  # CEST
    assert body["range"]["end"] == "2026-10-26T23:00:00Z"  # CET
    assert [(d["date"], d["opened"], d["messages_in"]) for d in body["days"]] == [
        ("2026-10-24", 2, 2),
        ("2026-10-25", 2, 2),
        ("2026-10-26", 1, 1),
    ]
    by_hour = {h["hour"]: h["messages_in"] for h in body["hours"]}
    assert by_hour[0] == 3 and by_hour[23] == 2 and sum(by_hour.values()) == 5


# --- resolutions, reopenings, per agent --------------------------------------------------------


def test_resolution_time_per_assignee_reopening_and_bulk_resolve(client, auth, seed, agent, other_agent):
    now = datetime.now(UTC)
    seed.customer("34600000031", now - timedelta(hours=1))
    seed.customer("34600000032", now - timedelta(hours=2))
    seed.customer("34600000033", now - timedelta(hours=3))
    first, second, third = (conversation_id(client, auth, f"3460000003{n}") for n in (1, 2, 3))
    response = client.patch(
        f"/whatsapp/api/conversaciones/{first}", json={"assignee": agent.id, "status": "resolved"}, headers=auth
    )
    assert response.status_code == 200
    patch(client, auth, second, {"assignee": other_agent.id})
    bulk = client.post(
        "/whatsapp/api/conversaciones/lote", json={"ids": [first, second, third], "action": "resolve"}, headers=auth
    )
    assert bulk.status_code == 200, bulk.get_json()  # `first` was resolved already: no second resolution

    body = report(client, auth, today(), today())
    resolution = body["resolution"]
    assert resolution["count"] == 3
    assert resolution["median_seconds"] == pytest.approx(7200, abs=30)
    assert resolution["p90_seconds"] == pytest.approx(3600 + 1.8 * 3600, abs=30)  # 1h, 2h, 3h: rank 1.8
    rows = {row["agent"]["name"] if row["agent"] else None: row for row in body["agents"]}
    assert set(rows) == {"Ana Agente", "Beto", None}
    assert rows["Ana Agente"]["resolution"]["count"] == 1
    assert rows["Ana Agente"]["resolution"]["median_seconds"] == pytest.approx(3600, abs=30)
    assert rows["Beto"]["resolution"]["median_seconds"] == pytest.approx(7200, abs=30)
    assert rows[None]["resolution"]["median_seconds"] == pytest.approx(10800, abs=30)
    assert sum(d["resolved"] for d in body["days"]) == 3

    # The customer writes again: reopened (not opened again); an agent reopens another one.
    seed.customer("34600000031", datetime.now(UTC))
    patch(client, auth, second, {"status": "pending"})
    body = report(client, auth, today(), today())
    day = body["days"][0]
    assert (day["reopened"], day["resolved"]) == (2, 3)
    # Resolved again minutes later: measured from the reopening.
    patch(client, auth, first, {"status": "resolved"})
    body = report(client, auth, today(), today())
    assert body["resolution"]["count"] == 4
    # seconds, 1 h, 2 h, 3 h: the median is between 1 h and 2 h
    assert body["resolution"]["median_seconds"] == pytest.approx(5400, abs=30)


def test_a_reply_sent_through_the_api_is_the_agents_first_response(client, auth, seed, agent):
    sent_from = time.time()
    seed.customer("34600000041", datetime.now(UTC) - timedelta(seconds=600))
    cid = conversation_id(client, auth, "34600000041")
    response = client.post(
        f"/whatsapp/api/conversaciones/{cid}/mensajes", json={"type": "text", "text": "Hola"}, headers=auth
    )
    assert response.status_code in (201, 502)  # stored either way: the reply counts when it is written
    elapsed = time.time() - sent_from

    body = report(client, auth, today(), today())
    (row,) = [r for r in body["agents"] if r["agent"]]
    assert row["agent"] == {"id": agent.id, "name": "Ana Agente"}
    assert row["first_response"]["wall"]["count"] == 1
    assert 599 <= row["first_response"]["wall"]["median_seconds"] <= 601 + elapsed
    # A second reply is not another first response; a note never is.
    client.post(
        f"/whatsapp/api/conversaciones/{cid}/mensajes", json={"type": "text", "text": "¿Algo más?"}, headers=auth
    )
    client.post(f"/whatsapp/api/conversaciones/{cid}/notas", json={"text": "cliente habitual"}, headers=auth)
    assert report(client, auth, today(), today())["first_response"]["wall"]["count"] == 1


# --- the backlog ---------------------------------------------------------------------------------


def test_backlog_counts_open_conversations_waiting_now_with_buckets(client, auth, seed, agent):
    now = datetime.now(UTC)
    seed.customer("34600000051", now - timedelta(minutes=30))
    seed.customer("34600000052", now - timedelta(hours=2))
    seed.customer("34600000052", now - timedelta(hours=1))  # the wait runs from the first one
    seed.customer("34600000053", now - timedelta(hours=30))
    seed.customer("34600000054", now - timedelta(hours=5))
    seed.echo("34600000054", now - timedelta(hours=4))  # answered: not waiting
    seed.customer("34600000055", now - timedelta(hours=6))  # resolved: not waiting
    seed.customer("34600000056", now - timedelta(hours=7))  # pending: not open
    cid = {n: conversation_id(client, auth, f"3460000005{n}") for n in range(1, 7)}
    patch(client, auth, cid[5], {"status": "resolved"})
    patch(client, auth, cid[6], {"status": "pending"})
    patch(client, auth, cid[3], {"assignee": agent.id})

    backlog = report(client, auth, today(), today())["backlog"]

    assert backlog["count"] == 3
    assert {b["key"]: b["count"] for b in backlog["buckets"]} == {
        "under_1h": 1,
        "1h_to_4h": 1,
        "4h_to_24h": 0,
        "over_24h": 1,
    }
    assert backlog["oldest_wait_seconds"] == pytest.approx(30 * 3600, abs=30)
    assert backlog["oldest_since"] == (now - timedelta(hours=30)).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z"
    )
    body = report(client, auth, today(), today())
    rows = {row["agent"]["name"] if row["agent"] else None: row["backlog"]["count"] for row in body["agents"]}
    assert rows == {"Ana Agente": 1, None: 2}

    # Resolving ends the wait unanswered; a later message starts a new one.
    patch(client, auth, cid[1], {"status": "resolved"})
    assert report(client, auth, today(), today())["backlog"]["count"] == 2
    seed.customer("34600000051", datetime.now(UTC))
    backlog = report(client, auth, today(), today())["backlog"]
    assert backlog["count"] == 3 and {b["key"]: b["count"] for b in backlog["buckets"]}["under_1h"] == 1


# --- CSV -----------------------------------------------------------------------------------------


def test_csv_has_a_row_per_day_and_per_agent_and_a_total(client, auth, seed, hours):
    seed.customer("34600000061", madrid(2026, 11, 16, 10, 0))
    seed.echo("34600000061", madrid(2026, 11, 16, 10, 10))
    response = client.get(f"{REPORT}.csv?desde=2026-11-15&hasta=2026-11-17", headers=auth)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="informe_2026-11-15_2026-11-17.csv"'
    raw = response.data
    assert raw.startswith("\ufeff".encode()) and b"\r\n" in raw
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [(r["section"], r["date"]) for r in rows] == [
        ("day", "2026-11-15"),
        ("day", "2026-11-16"),
        ("day", "2026-11-17"),
        ("agent", ""),
        ("total", ""),
    ]
    monday = rows[1]
    assert (monday["opened"], monday["first_responses"], monday["first_response_median_s"]) == ("1", "1", "600")
    assert (monday["messages_in"], monday["messages_out"]) == ("1", "1")
    assert rows[0]["first_response_median_s"] == ""  # nothing that day
    total = rows[-1]
    assert (total["first_responses"], total["first_response_p90_s"], total["first_response_business_median_s"]) == (
        "1",
        "600",
        "600",
    )


def test_csv_names_agents_with_their_accents(client, auth, seed):
    named = agent_service.create_agent("nuria@example.com", "Núria Peña", "correct horse battery 3")
    seed.customer("34600000071", datetime.now(UTC) - timedelta(minutes=5))
    cid = conversation_id(client, auth, "34600000071")
    patch(client, auth, cid, {"assignee": named.id})
    text = client.get(f"{REPORT}.csv?desde={today()}&hasta={today()}", headers=auth).data.decode("utf-8-sig")
    (row,) = [r for r in csv.DictReader(io.StringIO(text)) if r["section"] == "agent"]
    assert (row["agent_id"], row["agent"], row["waiting_now"]) == (str(named.id), "Núria Peña", "1")


# --- refusals and who may read ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "code", "parameter"),
    [
        ("hasta=2026-11-30", "invalid_parameter", "desde"),
        ("desde=2026-11-01", "invalid_parameter", "hasta"),
        ("desde=&hasta=2026-11-30", "invalid_parameter", "desde"),
        ("desde=2026-13-01&hasta=2026-11-30", "invalid_parameter", "desde"),
        ("desde=2026-02-30&hasta=2026-11-30", "invalid_parameter", "desde"),
        ("desde=20261101&hasta=2026-11-30", "invalid_parameter", "desde"),
        ("desde=1793491200&hasta=2026-11-30", "invalid_parameter", "desde"),
        ("desde=2026-11-01T00:00&hasta=2026-11-30", "invalid_parameter", "desde"),
        ("desde=2026-11-30&hasta=2026-11-01", "invalid_range", None),
        ("desde=2025-01-01&hasta=2026-01-02", "range_too_long", None),
    ],
)
def test_bad_ranges_are_refused_with_a_clear_code(client, auth, query, code, parameter):
    for path in (REPORT, f"{REPORT}.csv"):
        response = client.get(f"{path}?{query}", headers=auth)
        assert response.status_code == 400
        body = response.get_json()
        assert body["error"] == code, body
        if parameter:
            assert body["parameter"] == parameter


def test_a_whole_leap_year_is_allowed(client, auth):
    body = report(client, auth, "2028-01-01", "2028-12-31")
    assert body["range"]["days"] == 366 and len(body["days"]) == 366


def test_every_agent_may_read_the_reports_and_strangers_may_not(client, auth, other_agent):
    query = f"?desde={today()}&hasta={today()}"
    assert client.get(REPORT + query).status_code == 401
    assert client.get(f"{REPORT}.csv{query}").status_code == 401
    token = agent_service.create_token(other_agent.email)  # not an admin
    assert client.get(REPORT + query, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    login(client, other_agent.email, "correct horse battery 2")
    assert client.get(REPORT + query).status_code == 200
    assert client.get(f"{REPORT}.csv{query}").status_code == 200
    assert client.get("/inbox/informes").status_code == 200


# --- the page --------------------------------------------------------------------------------


def test_the_page_draws_charts_and_tables_in_spanish_and_english(client, agent, seed, hours):
    seed.customer("34600000081", madrid(2026, 11, 16, 10, 0))
    seed.echo("34600000081", madrid(2026, 11, 16, 10, 10))
    assert client.get("/inbox/informes").status_code == 302  # login first
    login(client, agent.email, "correct horse battery")
    page = client.get("/inbox/informes?desde=2026-11-16&hasta=2026-11-17", headers={"Accept-Language": "es"})
    assert page.status_code == 200
    html = page.text
    assert html.count("<svg") >= 3
    assert "Informes" in html and "Tiempo de primera respuesta" in html
    assert 'href="/whatsapp/api/informes.csv?desde=2026-11-16&amp;hasta=2026-11-17"' in html
    assert "<table" in html and "10 min" in html
    assert "style=" not in html and "<script>" not in html  # CSP: no inline styles or scripts
    # Presets and defaults: the last 7 days ending today (in the business time zone).
    default = client.get("/inbox/informes")
    assert default.status_code == 200 and "Últimos 7 días" in default.text
    end = datetime.now(MADRID).date()
    assert (
        f'value="{(end - timedelta(days=6)).isoformat()}"' in default.text
        and f'value="{end.isoformat()}"' in default.text
    )
    # A wrong range is said on the page, with the form.
    wrong = client.get("/inbox/informes?desde=2026-11-30&hasta=2026-11-01")
    assert wrong.status_code == 400 and "La fecha final no puede ser anterior a la inicial." in wrong.text
    assert client.get("/inbox/informes?desde=ayer&hasta=2026-11-01").status_code == 400
    # The inbox links to it.
    assert 'href="/inbox/informes"' in client.get("/").text
    # In English.
    client.post("/preferences", data={"csrf_token": csrf_token(html), "lang": "en", "next": "/inbox/informes"})
    refresh()  # the test's app context spans requests: forget the locale Flask-Babel cached
    english = client.get("/inbox/informes?desde=2026-11-16&hasta=2026-11-17").text
    assert "<h1>Reports</h1>" in english and "First response time" in english and "Last 7 days" in english


# --- the migration's backfill rebuilds what the services record -----------------------------------


def _facts(session: Any) -> dict[str, Any]:
    return {
        "first_responses": sorted(
            session.execute(
                text(
                    "SELECT conversation_id, at, round(seconds::numeric, 3), round(business_seconds::numeric, 3), "
                    "agent_id FROM conversation_events WHERE kind = 'first_response'"
                )
            ).all()
        ),
        "opened": sorted(
            session.execute(text("SELECT conversation_id, at FROM conversation_events WHERE kind = 'opened'")).all()
        ),
        "hours": sorted(session.execute(text("SELECT hour, metric, sum(count) FROM report_hours GROUP BY 1, 2")).all()),
        "waiting": sorted(
            session.execute(
                text("SELECT id, awaiting_reply_since FROM conversations WHERE awaiting_reply_since IS NOT NULL")
            ).all()
        ),
    }


def test_migration_0012_rebuilds_from_the_messages_what_the_services_recorded(client, auth, seed, hours, db_session):
    seed.customer("34600000091", madrid(2026, 11, 16, 13, 50))
    seed.customer("34600000091", madrid(2026, 11, 16, 13, 55))
    seed.echo("34600000091", madrid(2026, 11, 16, 16, 10))
    seed.customer("34600000091", madrid(2026, 11, 16, 19, 0))
    seed.echo("34600000091", madrid(2026, 11, 17, 9, 30))
    seed.customer("34600000092", madrid(2026, 11, 17, 11, 0))
    seed.echo("34600000092", madrid(2026, 11, 17, 11, 20))
    seed.customer("34600000092", madrid(2026, 11, 17, 12, 0))  # still waiting
    seed.customer("34600000093", madrid(2026, 11, 18, 8, 0))  # waiting since before opening
    recorded = _facts(db_session)
    assert len(recorded["first_responses"]) == 3 and len(recorded["waiting"]) == 2

    spec = importlib.util.spec_from_file_location("migration_0010", MIGRATION)
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    with Operations.context(MigrationContext.configure(db_session.connection())):
        migration.downgrade()
        migration.upgrade()

    assert _facts(db_session) == recorded
    body = report(client, auth, "2026-11-16", "2026-11-18")
    assert body["first_response"]["business"]["median_seconds"] == 1200  # 13:50 → 16:10 is 20 open minutes


def test_beyond_50000_first_responses_percentiles_come_from_a_sample_and_counts_stay_exact(
    client, auth, seed, db_session
):
    # 200,000 first responses on 10 November 2026, waits 1 … 200,000 s (seeded set-based: the
    # facts as the services record them, rows and hour counters).
    seed.customer("34600000099", madrid(2026, 11, 9, 12, 0))
    cid = conversation_id(client, auth, "34600000099")
    db_session.execute(
        text(
            "INSERT INTO conversation_events (conversation_id, kind, at, seconds, business_seconds) "
            "SELECT :c, 'first_response', timestamptz '2026-11-10 09:00+01' + (g % 3600) * interval '1 second', "
            "g, g FROM generate_series(1, 200000) g"
        ),
        {"c": cid},
    )
    db_session.execute(
        text(
            "INSERT INTO report_hours (hour, metric, shard, count) "
            "VALUES (timestamptz '2026-11-10 09:00+01', 'first_response', 0, 200000)"
        )
    )
    db_session.execute(text("ANALYZE conversation_events"))

    body = report(client, auth, "2026-11-10", "2026-11-10")

    assert body["percentile_sample_every"]["first_response"] == 4  # 200,000 / 50,000
    wall = body["first_response"]["wall"]
    assert wall["count"] == 200_000 and body["days"][0]["first_responses"] == 200_000  # exact
    assert wall["median_seconds"] == pytest.approx(100_000, rel=0.05)  # the sample: within 5 %
    assert wall["p90_seconds"] == pytest.approx(180_000, rel=0.05)
    assert body["agents"][0]["first_response"]["wall"]["count"] == 200_000
    again = report(client, auth, "2026-11-10", "2026-11-10")
    assert again["first_response"] == body["first_response"]  # the same sample each time


def test_a_short_range_of_a_large_table_samples_every_kth_event_of_the_range(client, auth, seed, db_session):
    seed.customer("34600000098", madrid(2026, 11, 9, 12, 0))
    cid = conversation_id(client, auth, "34600000098")
    for day, count in (("2026-11-10", 60_000), ("2026-11-12", 140_000)):
        db_session.execute(
            text(
                "INSERT INTO conversation_events (conversation_id, kind, at, seconds, business_seconds) "
                "SELECT :c, 'first_response', CAST(:day AS date) + time '10:00' + (g % 3600) * interval '1 second', "
                "g, g FROM generate_series(1, :n) g"
            ),
            {"c": cid, "day": day, "n": count},
        )
        db_session.execute(
            text(
                "INSERT INTO report_hours (hour, metric, shard, count) "
                "VALUES (CAST(:day AS date) + time '10:00', 'first_response', 0, :n)"
            ),
            {"day": day, "n": count},
        )
    db_session.execute(text("ANALYZE conversation_events"))

    wall = report(client, auth, "2026-11-10", "2026-11-10")
    assert wall["percentile_sample_every"]["first_response"] == 2  # 60,000 / 50,000, rounded up
    stats = wall["first_response"]["wall"]
    assert stats["count"] == 60_000
    assert stats["median_seconds"] == pytest.approx(30_000, rel=0.01)  # every 2nd id: an even sample
    assert stats["p90_seconds"] == pytest.approx(54_000, rel=0.01)

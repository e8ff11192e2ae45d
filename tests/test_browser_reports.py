"""The reports page in real headless Chromium, desktop and a 375 px phone: customers write
(through the webhook, at chosen instants of the last days), the team answers from the phone and
resolves; an agent opens Informes from the inbox's navigation, sees the charts and tables,
switches the range with a preset, downloads the CSV. No CSP violation, no sideways scrolling.

Screenshots go to tests/screenshots/ (reports-*.png).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from tests import fake_graph, meta
from tests.test_browser import AGENT, World, _login, _new_page, _shot, live_world
from tests.test_browser import browser as browser  # the module's Chromium (a fixture)

pytestmark = [pytest.mark.live, pytest.mark.browser]

MADRID = ZoneInfo("Europe/Madrid")


def _echo(world: World, wa_id: str, at: datetime) -> None:
    value = meta.value(contacts=[meta.contact(wa_id)])
    value["message_echoes"] = [
        {
            "id": meta.wamid(),
            "to": wa_id,
            "timestamp": str(int(at.timestamp())),
            "type": "text",
            "text": {"body": "Hola"},
        }
    ]
    response = world.server.post_webhook(meta.encode(meta.delivery(value, field="smb_message_echoes")))
    assert response.status_code == 200, response.text


def _customer(world: World, wa_id: str, name: str, at: datetime) -> None:
    message = meta.message(sender=wa_id, ts=int(at.timestamp()), content={"body": "¿Tienen stock?"})
    world.deliver(message, contact=(wa_id, name))


@pytest.fixture(scope="module")
def world(app, database_url: str, graph_server: fake_graph.FakeGraph) -> Iterator[World]:
    with live_world(
        database_url,
        graph_server,
        workers=1,
    ) as world:
        yield world


def _seed_week(world: World) -> None:
    """Six days of customers at the morning and afternoon peaks, answered after 2 to 90 minutes,
    and three still waiting now."""
    today = datetime.now(MADRID).replace(minute=0, second=0, microsecond=0)
    number = 0
    for days_ago in range(1, 7):
        day = today - timedelta(days=days_ago)
        for hour, wait in ((9, 4), (10, 12), (11, 30), (12, 6), (17, 45), (18, 90), (19, 2)):
            if (hour + days_ago) % 3 == 0:
                continue
            number += 1
            wa_id = f"3461{number:07d}"
            at = day.replace(hour=hour, minute=(7 * number) % 50)
            _customer(world, wa_id, f"Cliente {number}", at)
            _echo(world, wa_id, at + timedelta(minutes=wait + days_ago))
    now = datetime.now(UTC)
    for n, ago in enumerate((timedelta(minutes=20), timedelta(hours=3), timedelta(hours=28), timedelta(minutes=9))):
        _customer(world, f"346200000{n}", f"Esperando {n}", now - ago)
    engine = create_engine(world.database_url)
    try:
        with engine.begin() as conn:  # a few resolved by the agent, as the report shows them
            ids = [row[0] for row in conn.execute(text("SELECT id FROM conversations ORDER BY id LIMIT 8"))]
            answer = conn.execute(text("SELECT max(id) FROM conversations")).scalar()
    finally:
        engine.dispose()
    world.conversations["resolve"] = ids  # type: ignore[assignment]
    world.conversations["answer"] = answer


def _no_horizontal_scroll(page: Any, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_the_reports_page_shows_charts_and_tables_on_desktop_and_phone(world: World, browser: Any) -> None:
    _seed_week(world)
    page = _new_page(world, browser)
    _login(page, world, AGENT)  # not an admin: every agent sees the reports
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    headers = {"X-CSRFToken": token or ""}
    me = world.scalar("SELECT id FROM agents WHERE email = :e", e=AGENT)
    ids = world.conversations["resolve"]
    for action in ({"action": "assign", "assignee_id": me}, {"action": "resolve"}):
        bulk = page.request.post(
            world.base + "/whatsapp/api/conversaciones/lote", data={"ids": ids, **action}, headers=headers
        )
        assert bulk.status == 200, bulk.text()
    # The agent answers the customer who wrote 9 minutes ago: a first response of theirs.
    sent = page.request.post(
        f"{world.base}/whatsapp/api/conversaciones/{world.conversations['answer']}/mensajes",
        data={"type": "text", "text": "¡Hola! Sí, hay stock."},
        headers=headers,
    )
    assert sent.status == 201, sent.text()

    page.get_by_role("link", name="Informes").click()
    page.wait_for_url(world.base + "/inbox/informes")
    assert page.get_by_role("heading", name="Informes", level=1).is_visible()
    assert page.get_by_role("link", name="Últimos 7 días").get_attribute("class") == "btn btn-small btn-primary"
    for chart in ("#chart-hours", "#chart-days", "#chart-response", "#chart-backlog"):
        assert page.locator(chart).is_visible()
        assert page.locator(f"{chart} rect.chart-bar").count() > 0
    # The peaks: the busiest hours of the day are in the morning and afternoon blocks.
    heights = page.eval_on_selector_all(
        "#chart-hours rect.chart-bar-in",
        "bars => bars.map(b => [b.querySelector('title').textContent, +b.getAttribute('height')])",
    )
    tallest = sorted(heights, key=lambda bar: -bar[1])[:4]
    assert all(int(title.split(" ")[0]) in (9, 10, 11, 12, 17, 18, 19) for title, _ in tallest), tallest
    kpis = page.locator(".report-kpis").inner_text()
    assert "Tiempo de primera respuesta" in kpis and "Esperando ahora" in kpis
    assert page.locator(".kpi-alert .kpi-value").inner_text() == "3"
    assert page.locator("table.report-days tbody tr").count() == 7
    assert page.locator("table.report-agents tbody tr").count() >= 2  # Beto (resolutions), no agent (echoes)
    _shot(page, "reports-1-desktop")

    # The CSV link downloads the same range.
    with page.expect_download() as download:
        page.get_by_role("link", name="Descargar CSV").click()
    assert download.value.suggested_filename.startswith("informe_")
    content = open(download.value.path(), encoding="utf-8-sig").read()  # noqa: SIM115
    assert content.startswith("section,date,agent_id,agent,opened") and content.count("\nday,") == 7

    page.get_by_role("link", name="Últimos 30 días").click()
    page.wait_for_url(lambda url: "desde=" in url)
    assert page.locator("table.report-days tbody tr").count() == 30
    page.locator(".report-table summary").click()
    _shot(page, "reports-2-desktop-30-days")
    assert not [line for line in world.console if "CSP" in line or "error" in line.lower()], world.console
    page.context.close()

    phone = _new_page(world, browser, width=375, height=740)
    _login(phone, world, AGENT)
    phone.goto(world.base + "/inbox/informes")
    phone.locator("#chart-hours").wait_for()
    _no_horizontal_scroll(phone, 375)
    box = phone.locator("#chart-hours").bounding_box()
    assert box and box["width"] <= 375 and box["height"] > 100
    _shot(phone, "reports-3-phone")
    phone.locator("#chart-hours").scroll_into_view_if_needed()
    _shot(phone, "reports-3b-phone-chart")
    phone.locator("#chart-response").scroll_into_view_if_needed()
    _shot(phone, "reports-3c-phone-response")
    phone.locator("#agents-table-h").scroll_into_view_if_needed()
    _shot(phone, "reports-4-phone-tables")
    english = _new_page(world, browser, locale="en-GB", width=375, height=740)
    _login(english, world, AGENT)
    english.goto(world.base + "/inbox/informes")
    assert english.get_by_role("heading", name="Reports", level=1).is_visible()
    assert english.get_by_role("link", name="Last 30 days").is_visible()
    _no_horizontal_scroll(english, 375)
    _shot(english, "reports-5-phone-english")
    phone.context.close()
    english.context.close()

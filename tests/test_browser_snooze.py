"""Snooze in real headless Chromium: an agent snoozes a conversation from the thread header's
menu, it leaves the open list and shows under "Snoozed" with its time; the wake job (the worker's
own task function) wakes it when its time has passed and it comes back by itself; on a 375 px
phone the date-time picker snoozes it and the customer's next message wakes it.

Screenshots go to tests/screenshots/ (snooze-*.png).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from app import create_app
from app.jobs.queue import WAKE_SNOOZED
from app.jobs.worker import build_worker_queue
from tests import fake_graph
from tests.conftest import TEST_CONFIG
from tests.test_browser import LUCIA, World, _expect, _login, _new_page, _shot, live_world
from tests.test_browser import browser as browser  # the module's Chromium (a fixture)

pytestmark = [pytest.mark.live, pytest.mark.browser]

BROWSER_ZONE = ZoneInfo("America/Argentina/Buenos_Aires")  # _new_page's time zone: the agent's


@pytest.fixture(scope="module")
def world(app, database_url: str, graph_server: fake_graph.FakeGraph) -> Iterator[World]:
    with live_world(
        database_url,
        graph_server,
        workers=1,
        JOBS_IN_WEB="false",  # the test runs the wake job itself, when it wants time to have passed
    ) as world:
        yield world


def _execute(world: World, sql: str) -> None:
    engine = create_engine(world.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _run_wake_job(world: World) -> int:
    """What the worker runs every minute: its own task function, on the live database."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": world.database_url})
    return int(build_worker_queue(app).tasks[WAKE_SNOOZED](timestamp=0))


def _row(page: Any, conversation_id: int) -> Any:
    return page.locator(f'#list li.row[data-id="{conversation_id}"]')


def _head(page: Any) -> str:
    return str(page.locator("#thread-head").inner_text())


def _no_horizontal_scroll(page: Any, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_snooze_from_the_menu_leave_the_open_list_and_come_back_when_the_time_comes(world: World, browser: Any) -> None:
    world.say(LUCIA, "Hola, ¿me avisan cuando llegue el pedido?")
    conversation = int(world.scalar("SELECT id FROM conversations"))
    page = _new_page(world, browser)
    _login(page, world)
    page.goto(f"{world.base}/?c={conversation}")
    page.locator("#composer").wait_for()
    assert _row(page, conversation).count() == 1

    page.locator("#snooze-menu > summary").click()
    panel = page.locator("#snooze-menu .snooze-panel")
    panel.wait_for()
    assert "Posponer hasta…" in panel.inner_text() and "Hasta que escriba el cliente" in panel.inner_text()
    _shot(page, "snooze-1-menu-desktop")
    panel.get_by_role("button", name=re.compile("^Mañana")).click()

    _expect(lambda: "Pospuesta hasta mañana a las 9:00" in _head(page), what="the header says until when")
    _expect(lambda: _row(page, conversation).count() == 0, what="it leaves the open list")
    line = page.locator("#messages .msg-event .event-line").last
    line.wait_for()
    assert "Ana Agente la pospuso hasta el" in line.inner_text()
    tomorrow = (datetime.now(BROWSER_ZONE) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    stored = world.scalar(f"SELECT snoozed_until FROM conversations WHERE id = {conversation}")
    assert stored == tomorrow  # 9:00 in the agent's time zone
    _shot(page, "snooze-2-snoozed-desktop")

    page.locator("#status").select_option("snoozed")
    _expect(lambda: _row(page, conversation).count() == 1, what="it shows under Snoozed")
    assert "Pospuesta hasta mañana a las 9:00" in _row(page, conversation).inner_text()
    _shot(page, "snooze-3-list-snoozed-desktop")

    # Time passes: its time is now behind us, and the worker's job wakes it.
    _execute(world, f"UPDATE conversations SET snoozed_until = now() - interval '1 minute' WHERE id = {conversation}")
    assert _run_wake_job(world) == 1
    _expect(lambda: _row(page, conversation).count() == 0, what="it leaves the Snoozed list")
    _expect(lambda: "Abierta" in _head(page) and "Pospuesta" not in _head(page), what="the header shows it open")
    woke = page.locator("#messages .msg-event .event-line").last
    _expect(lambda: "llegó la hora" in woke.inner_text(), what="the thread says it woke up")
    page.locator("#status").select_option("open")
    _expect(lambda: _row(page, conversation).count() == 1, what="it is back in the open list")
    _shot(page, "snooze-4-woke-desktop")
    assert _run_wake_job(world) == 0  # nothing more to wake
    page.context.close()

    # On a phone: the date-time picker, then the customer's message wakes it at once.
    phone = _new_page(world, browser, width=375, height=740)
    _login(phone, world)
    phone.goto(f"{world.base}/?c={conversation}")
    phone.locator("#composer").wait_for()
    _no_horizontal_scroll(phone, 375)
    phone.locator("#snooze-menu > summary").click()
    later = (datetime.now(BROWSER_ZONE) + timedelta(days=2)).replace(hour=10, minute=30, second=0, microsecond=0)
    phone.locator("#snooze-at").fill(later.strftime("%Y-%m-%dT%H:%M"))
    # A new message arrives meanwhile: the poll merges the whole thread, header included, and the
    # chosen time stays, the menu open.
    world.say(LUCIA, "Gracias", ts=int(time.time()))
    phone.locator("#messages p.text", has_text="Gracias").wait_for()
    assert phone.locator("#snooze-at").input_value() == later.strftime("%Y-%m-%dT%H:%M")
    assert phone.locator("#snooze-menu").get_attribute("open") is not None
    box = phone.locator("#snooze-menu .snooze-panel").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375  # the menu fits the screen
    _shot(phone, "snooze-5-picker-phone")
    phone.locator("#snooze-menu form[data-snooze-custom] button[type=submit]").click()
    _expect(lambda: "a las 10:30" in _head(phone), what="the header says the chosen time")
    assert world.scalar(f"SELECT snoozed_until FROM conversations WHERE id = {conversation}") == later
    _no_horizontal_scroll(phone, 375)
    _shot(phone, "snooze-6-snoozed-phone")
    phone.goto(f"{world.base}/?status=snoozed")
    assert "a las 10:30" in _row(phone, conversation).inner_text()
    _no_horizontal_scroll(phone, 375)
    _shot(phone, "snooze-7-list-snoozed-phone")
    phone.goto(f"{world.base}/?status=snoozed&c={conversation}")
    phone.locator("#composer").wait_for()

    world.say(LUCIA, "¿Ya llegó?", ts=int(time.time()) + 1)  # Meta's whole seconds: after the snooze
    _expect(lambda: "Pospuesta" not in _head(phone), what="the customer's message wakes it")
    assert world.scalar(f"SELECT status FROM conversations WHERE id = {conversation}") == "open"
    woke = phone.locator("#messages .msg-event .event-line").last
    _expect(lambda: "el cliente escribió" in woke.inner_text(), what="the thread says why")
    _shot(phone, "snooze-8-woke-phone")
    phone.context.close()
    assert not world.console, world.console

"""Business hours in real headless Chromium: an admin edits them on the admin page (desktop and
phone), a customer writes while closed, and the away reply — sent by the jobs worker that
gunicorn runs beside the web workers — shows in the thread as automatic, once.

Screenshots go to tests/screenshots/ (hours-*.png).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests import fake_graph
from tests.fake_graph import POST_MESSAGES
from tests.test_browser import (
    LUCIA,
    World,
    _expect,
    _login,
    _new_page,
    _shot,
    live_world,
)
from tests.test_browser import browser as browser  # the module's Chromium (a fixture)

pytestmark = [pytest.mark.live, pytest.mark.browser]

AWAY = "¡Gracias por escribir! Ahora estamos cerrados; le respondemos en cuanto abramos."


@pytest.fixture(scope="module")
def world(app, database_url: str, graph_server: fake_graph.FakeGraph) -> Iterator[World]:
    with live_world(
        database_url,
        graph_server,
        workers=1,
        GRAPH_READ_TIMEOUT="2",
        JOBS_IN_WEB="true",  # the worker sends the away reply, as deployed
    ) as world:
        yield world


def _no_horizontal_scroll(page: Any, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_the_admin_sets_the_hours_and_a_customer_who_writes_while_closed_gets_one_automatic_reply(
    world: World, browser: Any
) -> None:
    page = _new_page(world, browser)
    _login(page, world)
    page.get_by_role("link", name="Administración").click()
    page.get_by_role("link", name="Editar horario").click()
    page.wait_for_url(world.base + "/admin/horario")
    assert page.locator("#hours-mon").input_value() == "09:00-14:00, 16:00-20:00"  # the defaults
    assert "Horario desactivado" in page.locator("#hours-now").inner_text()

    # Today is a holiday in Madrid: closed all day, whatever the hour.
    today = datetime.now(ZoneInfo("Europe/Madrid")).date().isoformat()
    page.locator("#hours-time_zone").fill("Europe/Madrid")
    page.locator("#hours-sat").fill("10:00-14:00")
    page.locator("#hours-holidays").fill(f"2026-12-25\n{today}")
    page.get_by_label(re.compile("Horario en vigor")).check()
    page.locator("#hours-away_message").fill(AWAY)
    page.get_by_role("button", name="Guardar horario").click()
    page.wait_for_url(world.base + "/admin/horario")
    assert "Horario guardado." in page.locator(".flash").inner_text()
    assert "Cerrado ahora" in page.locator("#hours-now").inner_text()
    assert page.locator("#hours-sat").input_value() == "10:00-14:00"
    _shot(page, "hours-1-admin-desktop")

    # A mistake is shown next to its field, in Spanish, and nothing is saved.
    page.locator("#hours-tue").fill("14:00-09:00")
    page.get_by_role("button", name="Guardar horario").click()
    assert page.locator("#hours-tue-error").is_visible()
    assert "en orden, sin solaparse" in page.locator("#hours-tue-error").inner_text()
    assert world.scalar("SELECT week->'tue'->0->>0 FROM business_hours") == "09:00"
    _shot(page, "hours-2-admin-error")

    # The customer writes three times while closed: one away reply, sent by the worker.
    for body in ("Hola, ¿abren hoy?", "Quería saber el horario", "¿Hay alguien?"):
        world.say(LUCIA, body)
    _expect(lambda: world.scalar("SELECT count(*) FROM auto_replies WHERE state = 'sent'") == 1, 20, "reply sent")
    assert [r.body["text"]["body"] for r in world.graph.sent(POST_MESSAGES)] == [AWAY]
    conversation = world.scalar("SELECT conversation_id FROM auto_replies")

    page.goto(f"{world.base}/?c={conversation}")
    bubble = page.locator(".bubble.is-automatic")
    bubble.wait_for()
    assert bubble.count() == 1
    assert "Respuesta automática" in bubble.locator(".author").inner_text()
    assert AWAY in bubble.inner_text()
    _shot(page, "hours-3-thread-desktop")
    page.context.close()

    phone = _new_page(world, browser, width=375, height=740)
    _login(phone, world)
    phone.goto(world.base + "/admin/horario")
    _no_horizontal_scroll(phone, 375)
    assert phone.locator("#hours-sun").is_visible() and phone.get_by_role("button", name="Guardar horario").count()
    _shot(phone, "hours-4-admin-phone")
    phone.locator("#hours-away_message").scroll_into_view_if_needed()
    _shot(phone, "hours-5-admin-phone-replies")
    phone.goto(f"{world.base}/?c={conversation}")
    phone.locator(".bubble.is-automatic").wait_for()
    _no_horizontal_scroll(phone, 375)

    # A fourth message in the same closed period: it shows up live, and still one automatic reply.
    world.say(LUCIA, "Sigo esperando")
    phone.locator(".msg-in", has_text="Sigo esperando").wait_for()
    assert phone.locator(".msg-in").count() == 4
    assert phone.locator(".bubble.is-automatic").count() == 1
    assert world.scalar("SELECT count(*) FROM auto_replies") == 1
    assert [r.body["text"]["body"] for r in world.graph.sent(POST_MESSAGES)] == [AWAY]
    _shot(phone, "hours-6-thread-phone")
    phone.context.close()
    assert not world.console, world.console

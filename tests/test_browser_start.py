"""Starting a conversation and the contact panel in real headless Chromium, against the app under
gunicorn and the fake Graph API (the setup of tests/test_browser.py, with one customer).
Screenshots go to tests/screenshots/ (start-*.png)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests import fake_graph, meta
from tests.browser import launched_chromium, require_chromium
from tests.fake_graph import POST_MESSAGES
from tests.live import Gunicorn
from tests.test_browser import LUCIA, World, _expect, _login, _new_page, _seed_accounts, _shot, _truncate

pytestmark = [pytest.mark.live, pytest.mark.browser]

TYPED = "612 345 678"
WA_ID = "34612345678"


@pytest.fixture(scope="module")
def world(app, database_url: str, graph_server: fake_graph.FakeGraph) -> Iterator[World]:
    require_chromium()
    graph_server.reset()
    _truncate(database_url)
    _seed_accounts(database_url, graph_server)
    env = {
        "WHATSAPP_GRAPH_URL": graph_server.base_url,
        "WHATSAPP_MEDIA_HOSTS": "http://127.0.0.1",
        "WHATSAPP_ACCESS_TOKEN": fake_graph.ACCESS_TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": meta.PHONE_NUMBER_ID,
        "WHATSAPP_BUSINESS_ACCOUNT_ID": meta.WABA_ID,
        "DEFAULT_PHONE_REGION": "ES",
        "GRAPH_READ_TIMEOUT": "2",
        "GRAPH_RETRY_BACKOFF": "0.01",
        "LOG_LEVEL": "WARNING",
    }
    try:
        with Gunicorn(database_url, workers=2, threads=4, env=env) as server:
            world = World(server=server, database_url=database_url, graph=graph_server)
            world.say(LUCIA, "Buenas tardes, ¿tienen turnos para mañana?")
            yield world
    finally:
        graph_server.reset()
        _truncate(database_url)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[Any]:
    with launched_chromium() as chromium:
        yield chromium


def _fill_dialog(page: Any, name: str | None = None) -> None:
    page.locator("#new-conversation-open").click()
    dialog = page.locator("#new-conversation")
    dialog.wait_for(state="visible")
    dialog.locator("#nc-phone").fill(TYPED)
    if name:
        dialog.locator("#nc-name").fill(name)
    dialog.locator("#nc-template").select_option(label="pedido_listo (es)")
    dialog.locator("#nc-tp-0").fill("#123")  # header {{1}}
    dialog.locator("#nc-tp-1").fill("Ana")  # body {{1}}
    dialog.locator("#nc-tp-2").fill("#123")  # body {{2}}


def test_start_a_conversation_by_typing_a_number_and_choosing_a_template(world, browser):
    page = _new_page(world, browser)
    _login(page, world)
    assert page.locator("#new-conversation-open").inner_text().strip() == "Nueva conversación"
    _fill_dialog(page, name="Ana Cliente")
    dialog = page.locator("#new-conversation")
    preview = dialog.locator("#nc-preview").inner_text()
    assert "Hola Ana, tu pedido #123 está listo para retirar." in preview and "Pedido #123" in preview
    assert dialog.locator("#nc-submit").is_enabled()
    _shot(page, "start-01-dialog-desktop")
    dialog.locator("#nc-submit").click()
    page.wait_for_url(re.compile(r"[?&]c=\d+"))
    conversation_id = int(re.search(r"[?&]c=(\d+)", page.url).group(1))  # type: ignore[union-attr]
    assert page.locator("#thread-title").inner_text() == "Ana Cliente"
    assert "no ha escrito todavía" in page.locator("#closed-note").inner_text()
    bubble = page.locator("#messages li.msg").last
    _expect(lambda: "Hola Ana, tu pedido #123 está listo para retirar." in bubble.inner_text(), what="the template")
    [sent] = world.graph.sent(POST_MESSAGES)
    assert sent.body["to"] == WA_ID and sent.body["template"]["name"] == "pedido_listo"
    assert world.scalar("SELECT count(*) FROM conversations WHERE id = :i", i=conversation_id) == 1
    _shot(page, "start-02-new-conversation-desktop")

    # Starting it again: the dialog says it exists and links to it.
    page.goto(world.base + "/")
    _fill_dialog(page)
    page.locator("#nc-submit").click()
    error = page.locator("#nc-error")
    error.wait_for(state="visible")
    assert "Ya hay una conversación con este contacto." in error.inner_text()
    assert page.locator("#nc-existing").get_attribute("href").endswith(f"?c={conversation_id}")
    assert len(world.graph.sent(POST_MESSAGES)) == 1

    # An invalid number is explained next to the field.
    page.locator("#nc-phone").fill("12345")
    page.locator("#nc-submit").click()
    page.locator("#nc-phone-error").wait_for(state="visible")
    assert page.locator("#nc-phone").get_attribute("aria-invalid") == "true"
    _shot(page, "start-03-invalid-number-desktop")
    assert world.console == []


def test_the_contact_panel_renames_the_contact_and_keeps_a_note(world, browser):
    conversation_id = world.scalar(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = :w", w=WA_ID
    )
    page = _new_page(world, browser)
    _login(page, world)
    page.goto(f"{world.base}/?c={conversation_id}")
    page.locator("#composer").wait_for()
    page.locator("[data-contact-open]").click()
    panel = page.locator("#contact-panel")
    panel.wait_for(state="visible")
    assert "+34612345678" in panel.inner_text()
    panel.locator("#contact-display-name").fill("Ana García (tienda)")
    panel.locator("#contact-notes").fill("Prefiere que le escriban por la tarde.")
    panel.locator("[data-attribute-add]").click()
    panel.locator(".attribute-row .attribute-key").last.fill("ciudad")
    panel.locator(".attribute-row .attribute-value").last.fill("Sevilla")
    panel.locator("#contact-save").click()
    _expect(lambda: page.locator("#toast").inner_text() == "Contacto guardado.", what="the saved toast")
    _expect(lambda: page.locator("#thread-title").inner_text() == "Ana García (tienda)", what="the thread's name")
    row = page.locator(f'#list li.row[data-id="{conversation_id}"] .row-name')
    _expect(lambda: row.inner_text() == "Ana García (tienda)", what="the list's name")
    _expect(lambda: panel.locator("#contact-shown-name").inner_text() == "Ana García (tienda)", what="the panel")
    assert panel.locator("#contact-notes").input_value() == "Prefiere que le escriban por la tarde."
    assert world.scalar("SELECT attributes ->> 'ciudad' FROM contacts WHERE wa_id = :w", w=WA_ID) == "Sevilla"
    assert world.scalar("SELECT profile_name FROM contacts WHERE wa_id = :w", w=WA_ID) is None
    _shot(page, "start-04-contact-panel-desktop")
    page.keyboard.press("Escape")
    _expect(lambda: not panel.is_visible(), what="the panel closes on Escape")
    # The search box finds the team's name.
    page.locator("#q").fill("García")
    _expect(lambda: page.locator("#list li.row").count() == 1, what="the search by the team's name")
    assert world.console == []


def test_the_phone_layout_carries_the_dialog_and_the_panel(world, browser):
    # Lucía's conversation exists from the start, so this test needs no other test to run first
    # (under pytest-xdist it may run on another worker than the test that starts one).
    conversation_id = world.scalar(
        "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = :w", w=LUCIA[0]
    )
    page = _new_page(world, browser, width=375, height=740)
    _login(page, world)
    assert page.locator("#new-conversation-open").is_visible()
    _shot(page, "start-05-list-phone")
    page.locator("#new-conversation-open").click()
    dialog = page.locator("#new-conversation")
    dialog.wait_for(state="visible")
    box = dialog.bounding_box()
    assert box and box["width"] >= 370 and box["height"] >= 700  # a full-screen sheet
    dialog.locator("#nc-template").select_option(label="pedido_listo (es)")
    dialog.locator("#nc-phone").fill("+52 1 55 1234 5678")
    _shot(page, "start-06-dialog-phone")
    dialog.locator("[data-dialog-close]").first.click()
    page.goto(f"{world.base}/?c={conversation_id}")
    page.locator("#composer").wait_for()
    page.locator("[data-contact-open]").click()
    panel = page.locator("#contact-panel")
    panel.wait_for(state="visible")
    box = panel.bounding_box()
    assert box and box["width"] >= 370 and box["x"] <= 1
    _shot(page, "start-07-contact-panel-phone")
    panel.locator("[data-contact-close]").click()
    _expect(lambda: not panel.is_visible(), what="the panel closes")
    assert world.console == []

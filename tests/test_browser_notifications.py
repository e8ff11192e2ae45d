"""Browser notifications and mentions in real headless Chromium, under gunicorn.

The context is granted the notification permission, and an init script puts a recorder in
front of `window.Notification`, so the test sees every notification the page shows (title,
body, tag) and can click one. Customer messages arrive through the signed webhook; Beto writes
his note through the API. Screenshots go to tests/screenshots/ (notify-*.png).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from app import create_app
from app.extensions import db
from app.services import agents as agent_service
from tests import fake_graph
from tests.conftest import TEST_CONFIG
from tests.test_browser import (
    AGENT,
    CAMILA,
    DIEGO,
    LUCIA,
    SOFIA,
    World,
    _expect,
    _login,
    _new_page,
    _shot,
    live_world,
)
from tests.test_browser import browser as browser  # the module's Chromium (a fixture)

pytestmark = [pytest.mark.live, pytest.mark.browser]

RECORDER = """
(() => {
  const Real = window.Notification;
  const shown = [];
  const objects = [];
  window.__notifications = shown;
  window.__notificationObjects = objects;
  function Recorded(title, options = {}) {
    shown.push({ title, body: options.body || "", tag: options.tag || "" });
    objects.push(this);
    this.onclick = null;
    this.close = () => {};
  }
  Object.defineProperty(Recorded, "permission", { get: () => (Real ? Real.permission : "default") });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();
"""


@pytest.fixture(scope="module")
def world(app, database_url: str, graph_server: fake_graph.FakeGraph) -> Iterator[World]:
    with live_world(
        database_url,
        graph_server,
        workers=1,
        GRAPH_READ_TIMEOUT="2",
    ) as world:
        yield world


def _beto_token(world: World) -> str:
    app = create_app(
        {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": world.database_url, "WHATSAPP_GRAPH_URL": world.graph.base_url}
    )
    with app.app_context():
        token = agent_service.create_token(AGENT)
        db.engine.dispose()
    return token


def _api(token: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def _conversation(world: World, who: tuple[str, str]) -> int:
    return int(
        world.scalar(
            "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = :w", w=who[0]
        )
    )


def _notifications(page: Any) -> list[dict[str, str]]:
    return list(page.evaluate("window.__notifications"))


def _titles(page: Any) -> list[str]:
    return [n["title"] for n in _notifications(page)]


def _granted_page(world: World, browser: Any, **kwargs: Any) -> Any:
    page = _new_page(world, browser, **kwargs)
    page.context.grant_permissions(["notifications"], origin=world.base)
    page.add_init_script(RECORDER)
    return page


def test_new_messages_and_mentions_notify_the_agent_once_and_others_conversations_do_not(
    world: World, browser: Any
) -> None:
    api = _api(str(world.token))  # Ana's token
    # Before the page opens: Lucía wrote (not news), and Diego's conversation is Beto's.
    world.say(LUCIA, "Hola, ¿tienen turnos para mañana?")
    world.say(DIEGO, "Sigo esperando la factura")
    beto = world.scalar("SELECT id FROM agents WHERE email = :e", e=AGENT)
    diego = _conversation(world, DIEGO)
    api.patch(
        f"{world.base}/whatsapp/api/conversaciones/{diego}", json={"assignee": beto}, timeout=30
    ).raise_for_status()

    page = _granted_page(world, browser)
    _login(page, world)
    enable = page.get_by_role("button", name="Activar notificaciones")
    enable.wait_for()
    _shot(page, "notify-1-enable-desktop")
    enable.click()
    _expect(lambda: world.scalar("SELECT notify_desktop FROM agents WHERE email = 'ana@example.com'"), 5, "saved")
    page.wait_for_selector("#notify-enable", state="hidden")
    assert page.title() == "(1) Bandeja de WhatsApp"  # Lucía's unread message; Diego's is Beto's
    assert _notifications(page) == []  # nothing that was there when the page loaded

    # Beto's customer writes, then an unassigned one: only the unassigned one notifies.
    world.say(DIEGO, "¿Hay novedades?")
    world.say(SOFIA, "Buenas, ¿abren el sábado?")
    _expect(lambda: "Sofía Ramírez" in _titles(page), 6, "Sofía's notification")
    [shown] = _notifications(page)
    assert shown["body"] == "Buenas, ¿abren el sábado?"
    assert "Diego Torres" not in _titles(page)
    _expect(lambda: page.title() == "(2) Bandeja de WhatsApp", 4, "the count in the title")
    page.wait_for_timeout(4500)  # two more polls: nothing twice
    assert _titles(page) == ["Sofía Ramírez"]

    # A mention from Beto: a notification, the badge, the panel, the note marked.
    lucia = _conversation(world, LUCIA)
    beto_api = _api(_beto_token(world))
    beto_api.post(
        f"{world.base}/whatsapp/api/conversaciones/{lucia}/notas",
        json={"text": "@Ana ¿le confirmás el turno a <Lucía>? Yo no llego."},
        timeout=30,
    ).raise_for_status()
    _expect(lambda: "Beto Soporte te mencionó" in _titles(page), 6, "the mention's notification")
    assert _notifications(page)[-1]["body"] == "@Ana ¿le confirmás el turno a <Lucía>? Yo no llego."
    assert page.locator("#mentions-badge").inner_text() == "1"
    _expect(lambda: page.title() == "(3) Bandeja de WhatsApp", 4, "mentions count in the title")
    page.locator("#mentions-menu > summary").click()
    item = page.locator(".mention-item.is-unread")
    item.wait_for()
    assert "Beto Soporte" in item.inner_text() and "Lucía Fernández" in item.inner_text()
    _shot(page, "notify-2-mentions-panel-desktop")
    item.locator("a").click()
    page.wait_for_url(re.compile(rf"[?&]c={lucia}&m=\d+"))
    mark = page.locator(".msg-note mark.mention-me")
    mark.wait_for()
    assert mark.inner_text() == "@Ana"
    assert "<Lucía>" in page.locator(".msg-note .text").inner_text()  # escaped, shown as typed
    _expect(lambda: world.scalar("SELECT read_at IS NOT NULL FROM mentions") is True, 5, "mention read")
    _expect(lambda: page.locator("#mentions-badge").is_hidden(), 4, "badge gone")
    _shot(page, "notify-3-mention-in-note-desktop")

    # Looking at Lucía's conversation in a focused tab: her new message does not notify.
    before = len(_notifications(page))
    world.say(LUCIA, "¿Me confirman?")
    page.locator(".msg-in .text", has_text="¿Me confirman?").wait_for()
    page.wait_for_timeout(2500)
    assert len(_notifications(page)) == before

    # Clicking a notification opens its conversation.
    world.say(CAMILA, "Quiero cambiar el talle")
    _expect(lambda: "Camila Ruiz" in _titles(page), 6, "Camila's notification")
    camila = _conversation(world, CAMILA)
    page.evaluate("window.__notificationObjects[window.__notificationObjects.length - 1].onclick()")
    page.wait_for_url(re.compile(rf"[?&]c={camila}\b"))

    # The preferences in the account menu, switched from the page.
    page.locator(".user-menu > summary").click()
    page.get_by_label("Sonido").uncheck()
    _expect(lambda: world.scalar("SELECT notify_sound FROM agents WHERE email = 'ana@example.com'") is False, 5, "")
    page.get_by_label("Avisarme de mensajes nuevos en").select_option("all")
    _expect(lambda: world.scalar("SELECT notify_scope FROM agents WHERE email = 'ana@example.com'") == "all", 5, "")
    _shot(page, "notify-4-preferences-desktop")
    page.context.close()

    # Scope "all": now Beto's customer notifies Ana too; a reload notifies nothing old.
    page = _granted_page(world, browser)
    _login(page, world)
    page.wait_for_timeout(2500)
    assert _notifications(page) == []
    world.say(DIEGO, "¿Alguien me lee?")
    _expect(lambda: "Diego Torres" in _titles(page), 6, "scope all")
    page.context.close()
    assert not world.console, world.console


def test_the_phone_layout_has_the_buttons_and_the_mentions_panel(world: World, browser: Any) -> None:
    api = _api(str(world.token))
    api.patch(f"{world.base}/whatsapp/api/yo", json={"notify_desktop": False}, timeout=30).raise_for_status()
    page = _granted_page(world, browser, width=375, height=740)
    _login(page, world)
    page.get_by_role("button", name="Activar notificaciones").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    _shot(page, "notify-5-list-phone")
    page.locator("#mentions-menu > summary").click()
    page.locator(".mention-list, .mention-empty").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box = page.locator("#mentions-panel").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375
    _shot(page, "notify-6-mentions-phone")
    page.context.close()
    assert not world.console, world.console


def test_at_in_a_private_note_offers_the_agents_to_mention(world: World, browser: Any) -> None:
    world.say(LUCIA, "¿Me pasan el precio?")
    lucia = _conversation(world, LUCIA)
    page = _new_page(world, browser)
    _login(page, world)
    page.goto(f"{world.base}/?c={lucia}")
    page.locator("#composer").wait_for()
    page.get_by_role("tab", name="Nota privada").click()
    text = page.locator("#message-text")
    text.press_sequentially("Mirá @be")
    option = page.locator("#mention-list [role=option]")
    option.first.wait_for()
    assert option.all_inner_texts() == ["@Beto Soporte"]  # Ana herself is not offered
    _shot(page, "notify-7-mention-autocomplete-desktop")
    text.press("Enter")  # chooses; does not send
    assert text.input_value() == "Mirá @Beto Soporte "
    assert page.locator("#mention-list").is_hidden()
    before = world.scalar("SELECT count(*) FROM mentions")
    text.press_sequentially("¿lo ves vos?")
    text.press("Enter")  # now it sends the note
    _expect(lambda: world.scalar("SELECT count(*) FROM mentions") == before + 1, 5, "the mention recorded")
    beto = world.scalar("SELECT id FROM agents WHERE email = :e", e=AGENT)
    assert world.scalar("SELECT agent_id FROM mentions ORDER BY id DESC LIMIT 1") == beto
    page.locator(".msg-note mark.mention", has_text="@Beto Soporte").wait_for()
    page.context.close()
    assert not world.console, world.console

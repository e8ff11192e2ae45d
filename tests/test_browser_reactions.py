"""Reactions in real headless Chromium: an agent reacts to a customer's message from the thread
(mouse on a desktop, keyboard, a tap at 375 px), replaces and removes the reaction, and sees it on
the bubble beside the customer's own; the fake Graph receives each one. In Spanish and English.

Screenshots go to tests/screenshots/ (reactions-*.png).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests import fake_graph, meta
from tests.fake_graph import POST_MESSAGES, error
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


@pytest.fixture(scope="module")
def world(app, database_url: str, graph_server: fake_graph.FakeGraph) -> Iterator[World]:
    with live_world(
        database_url,
        graph_server,
        workers=1,
        GRAPH_READ_TIMEOUT="2",
        JOBS_IN_WEB="false",
    ) as world:
        yield world


def _reactions_sent(world: World) -> list[dict]:
    return [r.body["reaction"] for r in world.graph.sent(POST_MESSAGES) if r.body.get("type") == "reaction"]


def _bubble(page: Any, message_id: int) -> Any:
    return page.locator(f"#m-{message_id}")


def test_an_agent_reacts_to_a_customers_message_replaces_and_removes_it(world: World, browser: Any) -> None:
    first = world.say(LUCIA, "Hola, ¿me confirman el turno del jueves?")
    second = world.say(LUCIA, "Gracias por todo 🙌")
    world.deliver(
        meta.message("reaction", sender=LUCIA[0], content={"message_id": first, "emoji": "😂"}), contact=LUCIA
    )
    conversation = world.scalar("SELECT conversation_id FROM messages WHERE wamid = :w", w=first)
    first_id = world.scalar("SELECT id FROM messages WHERE wamid = :w", w=first)
    second_id = world.scalar("SELECT id FROM messages WHERE wamid = :w", w=second)

    page = _new_page(world, browser)
    _login(page, world)
    page.goto(f"{world.base}/?c={conversation}")
    bubble = _bubble(page, second_id)
    bubble.wait_for()

    # The mouse: hover, open the picker, choose 👍.
    bubble.hover()
    bubble.locator(".react-btn").click()
    picker = bubble.get_by_role("group", name="Reaccionar a este mensaje")
    picker.wait_for()
    assert [b.inner_text() for b in picker.locator(".react-choice").all()] == ["👍", "❤️", "😂", "😮", "😢", "🙏"]
    _shot(page, "reactions-1-picker-desktop")
    picker.get_by_role("button", name="Reaccionar con 👍").click()
    _expect(lambda: bubble.locator(".reactions .reaction-agent").count() == 1, 5, "the reaction on the bubble")
    assert bubble.locator(".reactions").inner_text().strip() == "👍"
    assert _reactions_sent(world) == [{"message_id": second, "emoji": "👍"}]
    # The bubble can show the reaction from its pending row (committed before Graph is called,
    # and pushed to the page); Graph's answer is committed after it: wait for that commit.
    _expect(
        lambda: world.scalar("SELECT status FROM messages WHERE type = 'reaction' AND direction = 'out'") == "accepted",
        5,
        "the reaction accepted",
    )

    # The keyboard: the first message already has the customer's 😂; Enter opens, arrows move.
    other = _bubble(page, first_id)
    other.locator(".react-btn").focus()
    page.keyboard.press("Enter")
    other.locator(".react-panel").wait_for()
    _expect(lambda: page.evaluate("document.activeElement.dataset.emoji") == "👍", 2, "the focus on the first emoji")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.emoji") == "❤️"
    page.keyboard.press("Enter")
    _expect(lambda: other.locator(".reactions .reaction-agent").count() == 1, 5, "the second reaction")
    assert sorted(other.locator(".reactions li").all_inner_texts()) == sorted(["😂", "❤️"])
    assert page.evaluate("document.activeElement.classList.contains('react-btn')")
    _shot(page, "reactions-2-shown-desktop")

    # Replace, then remove: the picker marks the current one and offers the removal.
    bubble.locator(".react-btn").click()
    assert bubble.get_by_role("button", name="Reaccionar con 👍").get_attribute("aria-pressed") == "true"
    assert bubble.get_by_role("button", name="Quitar la reacción 👍").is_visible()
    _shot(page, "reactions-3-replace-desktop")
    bubble.get_by_role("button", name="Reaccionar con 🙏").click()
    _expect(lambda: bubble.locator(".reactions").inner_text().strip() == "🙏", 5, "the replaced reaction")
    bubble.locator(".react-btn").click()
    bubble.get_by_role("button", name="Quitar la reacción 🙏").click()
    _expect(lambda: bubble.locator(".reactions").count() == 0, 5, "the removal")
    assert _reactions_sent(world)[-2:] == [{"message_id": second, "emoji": "🙏"}, {"message_id": second, "emoji": ""}]
    page.keyboard.press("Escape")

    # WhatsApp refuses one: Meta's reason in a toast, and the bubble keeps what it had (nothing).
    world.graph.script(POST_MESSAGES, error(131026))
    bubble.locator(".react-btn").click()
    bubble.get_by_role("button", name="Reaccionar con ❤️").click()
    toast = page.locator("#toast")
    _expect(lambda: "No se envió la reacción: Message undeliverable" in toast.inner_text(), 5, "the refusal")
    assert toast.get_attribute("data-kind") == "error"
    _shot(page, "reactions-4-refused-desktop")
    assert bubble.locator(".reactions").count() == 0
    assert world.scalar("SELECT error_code FROM messages WHERE type = 'reaction' ORDER BY id DESC LIMIT 1") == 131026
    assert not world.console, world.console
    page.context.close()

    # A phone, in English: tap the button, tap an emoji.
    phone = _new_page(world, browser, locale="en-US", width=375, height=740)
    _login(phone, world)
    phone.goto(f"{world.base}/?c={conversation}")
    bubble = _bubble(phone, second_id)
    bubble.wait_for()
    assert bubble.locator(".react-btn").bounding_box()["width"] >= 36
    bubble.locator(".react-btn").tap()
    picker = bubble.get_by_role("group", name="React to this message")
    picker.wait_for()
    box = picker.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375, box
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    _shot(phone, "reactions-5-picker-phone")
    picker.get_by_role("button", name="React with 😮").tap()
    _expect(lambda: bubble.locator(".reactions").inner_text().strip() == "😮", 5, "the reaction from the phone")
    _shot(phone, "reactions-6-shown-phone")
    assert not world.console, world.console
    phone.context.close()


def test_no_reaction_button_once_the_window_has_closed(world: World, browser: Any) -> None:
    wamid = world.say(("5491155550177", "Ramiro Paz"), "¿Siguen abiertos?")
    conversation = world.scalar("SELECT conversation_id FROM messages WHERE wamid = :w", w=wamid)
    message_id = world.scalar("SELECT id FROM messages WHERE wamid = :w", w=wamid)
    page = _new_page(world, browser)
    _login(page, world)
    page.goto(f"{world.base}/?c={conversation}")
    _bubble(page, message_id).wait_for()
    assert _bubble(page, message_id).locator(".react-menu").is_visible()
    engine = create_engine(world.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE conversations SET last_customer_message_at = now() - interval '25 hours' WHERE id = :c"),
                {"c": conversation},
            )
            # Time moved by hand, outside the app: say so as the app's writers do (app/cache.py).
            conn.execute(text("SELECT nextval('inbox_version')"))
    finally:
        engine.dispose()
    _expect(lambda: not _bubble(page, message_id).locator(".react-menu").is_visible(), 5, "the button hidden")
    page.context.close()

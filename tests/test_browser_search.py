"""Searching what was said, in real headless Chromium: type a word, see the message, open it.

Reuses the inbox's browser fixtures (tests/test_browser.py: gunicorn, the fake Graph API, the
seeded conversations, Chromium); screenshots go to tests/screenshots/.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests import meta
from tests.test_browser import _expect, _login, _new_page, _shot, browser, world  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.live, pytest.mark.browser]

OLGA = ("5491155550190", "Olga Benítez")


@pytest.fixture(scope="module")
def long_thread(world: Any) -> dict[str, int]:  # noqa: F811
    """A conversation of 70 messages; the one searched for is the 5th, far above the newest 40."""
    start = int(time.time()) - 7200
    bodies = [f"mensaje número {i:02d}" for i in range(70)]
    bodies[4] = "¿Me recordás el nombre de la CANCIÓN del casamiento?"
    world.deliver(
        *[meta.message(sender=OLGA[0], ts=start + i * 60, content={"body": b}) for i, b in enumerate(bodies)],
        contact=OLGA,
    )
    return {
        "conversation": world.scalar(
            "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = :w", w=OLGA[0]
        ),
        "message": world.scalar("SELECT id FROM messages WHERE text LIKE '%casamiento%'"),
    }


def _in_view(page: Any, selector: str) -> bool:
    """The element is inside the thread's visible area."""
    return page.evaluate(
        """selector => {
            const item = document.querySelector(selector), list = document.getElementById("messages");
            if (!item || !list) return false;
            const a = item.getBoundingClientRect(), b = list.getBoundingClientRect();
            return a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
        }""",
        selector,
    )


def _search_and_open(page: Any, world: Any, long_thread: dict[str, int], shot: str) -> None:  # noqa: F811
    page.locator("#q").fill("cancion")
    hits = page.locator("#message-hits a.hit")
    _expect(lambda: hits.count() >= 1, 5, "a message result")
    first = hits.first
    assert "Olga Benítez" in first.inner_text()
    assert first.locator("mark").first.inner_text() == "CANCIÓN"  # found without the accent, marked
    _shot(page, f"{shot}-results")
    first.click()
    page.wait_for_url(re.compile(rf"[?&]m={long_thread['message']}\b"))
    hit = f"#m-{long_thread['message']}"
    page.locator(f"{hit}.is-hit").wait_for()
    _expect(lambda: _in_view(page, hit), 3, "the thread scrolled to the message")
    assert page.locator("#messages li.msg").count() >= 40  # the message and everything after it
    _shot(page, f"{shot}-thread")
    # Polls (every 2 s) keep it marked and in view.
    page.wait_for_timeout(2600)
    ids = page.evaluate(
        "() => Array.from(document.querySelectorAll('#messages > li.msg')).map(e => Number(e.dataset.id))"
    )
    assert ids == sorted(ids)  # merged in order
    assert page.locator(f"{hit}.is-hit").count() == 1
    assert _in_view(page, hit)


def test_search_a_word_and_open_the_message_far_back_in_its_thread(world, browser, long_thread):  # noqa: F811
    page = _new_page(world, browser)
    _login(page, world)
    _search_and_open(page, world, long_thread, "40-search-desktop")
    # Scrolling up from there still loads the older messages.
    page.locator("ol.messages").evaluate("list => { list.scrollTop = 0; }")
    _expect(lambda: page.locator("#messages li.msg").count() == 70, 5, "the older messages")
    assert not world.console, world.console
    page.context.close()


def test_search_on_a_phone(world, browser, long_thread):  # noqa: F811
    page = _new_page(world, browser, width=375, height=740)
    _login(page, world)
    _search_and_open(page, world, long_thread, "41-search-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.locator(".list-pane").is_hidden()
    page.get_by_role("link", name="Volver a las conversaciones").click()
    page.locator("#message-hits a.hit").first.wait_for()  # back to the results
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.context.close()


def test_search_in_english_says_when_nothing_matches(world, browser):  # noqa: F811
    page = _new_page(world, browser, locale="en-US")
    _login(page, world)
    page.locator("#q").fill("ornitorrinco")
    page.locator("#message-hits .hits-empty").wait_for()
    assert "No message contains “ornitorrinco”." in page.locator("#message-hits").inner_text()
    assert "MESSAGES" in page.locator("#message-hits h2").inner_text()  # text-transform: uppercase
    page.locator("#q").fill("")
    _expect(lambda: page.locator("#message-hits").inner_html().strip() == "", 3, "results cleared")
    page.context.close()

"""An idle inbox in real headless Chromium, under gunicorn with two workers (issue 14).

An open, untouched inbox holds the live stream (GET /inbox/events, app/inbox/live.py) and sends
no request at all for 30 s (the safety-net poll); news still arrives at once: a customer
message delivered through the signed webhook is in the open thread within ~1 s of the
delivery's 200 (the ingest has committed by then), measured over several samples at moments
spread over what used to be the poll cycle. Without stream slots (LIVE_STREAMS_PER_WORKER=0, the
stream refused with 204) the page falls back to polling: one small request every 2 s (the list;
the open thread only when the list's key moves, or every 30 s), every answer a 304 with no body,
and news within ~1 s all the same. The two workers share the inbox version through PostgreSQL
(no Redis), so whichever worker holds the stream or answers a poll knows about the other's
writes. Screenshots: tests/screenshots/idle-*.png.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests import fake_graph
from tests.test_browser import LUCIA, MARTIN, World, _login, _new_page, _shot, live_world
from tests.test_browser import browser as browser  # the module's Chromium (a fixture)

pytestmark = [pytest.mark.live, pytest.mark.browser]

SAMPLES = 8
P50_BOUND_S = 1.5  # the issue: news within ~1 s of the commit (polls every 2 s: ~1 s on average)
MAX_BOUND_S = 4.0


@pytest.fixture(scope="module", params=["stream", "polls"])
def world(request, app, database_url: str, graph_server: fake_graph.FakeGraph) -> Iterator[World]:  # type: ignore[no-untyped-def]
    env = {} if request.param == "stream" else {"LIVE_STREAMS_PER_WORKER": "0"}
    with live_world(database_url, graph_server, workers=2, **env) as world:
        yield world


def _streams(world: World) -> bool:
    return world.server.env.get("LIVE_STREAMS_PER_WORKER") != "0"


def _conversation(world: World, who: tuple[str, str]) -> int:
    sql = "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = :w"
    return int(world.scalar(sql, w=who[0]))


def test_an_idle_inbox_sends_nothing_with_the_stream_and_304s_without(world: World, browser: Any) -> None:
    world.say(LUCIA, "Hola, ¿tienen turnos?")
    conversation = _conversation(world, LUCIA)
    page = _new_page(world, browser)
    _login(page, world)
    streams: list[int] = []  # of the inbox page opened below (the login's own landing page has one too)
    page.on("response", lambda r: streams.append(r.status) if r.url.endswith("/inbox/events") else None)
    page.goto(f"{world.base}/?c={conversation}")
    page.locator("#composer").wait_for()
    page.wait_for_timeout(2500)  # past the first polls
    seen: list[tuple[str, int]] = []

    def record(response: Any) -> None:
        if "/inbox/fragments/" in response.url:
            seen.append(("list" if "/fragments/list" in response.url else "thread", response.status))

    page.on("response", record)
    page.wait_for_timeout(8500)
    lists = [status for kind, status in seen if kind == "list"]
    threads = [status for kind, status in seen if kind == "thread"]
    if _streams(world):
        assert streams == [200], streams  # one stream, open all along
        assert len(lists) <= 1, seen  # the safety-net poll comes every 30 s (or when a text changes with the time)
    else:
        assert streams == [204], streams  # refused: the page polls, and asks again in 30 s
        assert 3 <= len(lists) <= 6, seen  # every 2 s
    assert len(threads) <= 1, seen  # only its own 30 s pace: nothing changed
    assert set(lists + threads) <= {304}, seen
    _shot(page, f"idle-inbox-{'stream' if _streams(world) else 'polls'}")
    assert not world.console, world.console
    page.context.close()


def test_a_new_message_reaches_the_open_thread_within_about_a_second(world: World, browser: Any) -> None:
    world.say(MARTIN, "¿Cuánto sale el envío?")
    conversation = _conversation(world, MARTIN)
    page = _new_page(world, browser)
    _login(page, world)
    sent: list[str | None] = []  # each fragment request's X-Inbox-Version
    page.on(
        "request", lambda r: sent.append(r.headers.get("x-inbox-version")) if "/inbox/fragments/" in r.url else None
    )
    page.goto(f"{world.base}/?c={conversation}")
    page.locator("#composer").wait_for()
    page.wait_for_timeout(2500)
    latencies: list[float] = []
    list_latencies: list[float] = []
    for sample in range(SAMPLES):
        # Each delivery lands just after the last poll plus this: moments spread over the 2 s cycle.
        page.wait_for_timeout(100 + sample * 2000 / SAMPLES)
        body = f"¿Llegó? {uuid.uuid4().hex[:6]}"
        world.say(MARTIN, body)  # returns on the delivery's 200: the ingest has committed
        committed = time.monotonic()
        page.wait_for_function(
            "text => document.querySelector('#messages').textContent.includes(text)", arg=body, polling="raf"
        )
        latencies.append(time.monotonic() - committed)
        # The list shows it too: it was asked at the same moment, and its answer may come second
        # (or from the other worker, whose listener may not have heard the bump yet: the page
        # sends the version it was pushed, so that worker reads it, app/inbox/polls.py).
        page.wait_for_function(
            """([id, text]) => {
                const row = document.querySelector(`#list li.row[data-id="${id}"]`);
                return row !== null && row.textContent.includes(text);
            }""",
            arg=[conversation, body],
            polling="raf",
            timeout=MAX_BOUND_S * 1000,
        )
        list_latencies.append(time.monotonic() - committed)
    p50 = statistics.median(latencies)
    assert p50 <= P50_BOUND_S, latencies
    assert max(latencies) <= MAX_BOUND_S, latencies
    assert statistics.median(list_latencies) <= P50_BOUND_S, list_latencies
    if _streams(world):  # every ask after a push names the version pushed (none is pushed without the stream)
        assert sent and all(version is not None and version.isdigit() for version in sent[-2 * SAMPLES :]), sent
    else:
        assert set(sent) == {None}, sent
    _shot(page, f"idle-news-arrived-{'stream' if _streams(world) else 'polls'}")
    assert not world.console, world.console
    page.context.close()

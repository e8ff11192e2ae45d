"""The inbox's live stream (`GET /inbox/events`, app/inbox/live.py) on committed data, with the
worker's version listener connected (apart from the rolled-back tests: their NOTIFY never leaves).

The stream sends the inbox version at once and again as soon as a commit bumps it, holds no
database connection while it waits, takes one of the worker's stream slots (204 when none is
left, given back however the stream ends), and ends by itself: at its lifetime, when the
listener stops vouching for the version, and when its worker stops. gunicorn.conf.py's
`RequestSlots`, which keeps the streams' threads apart from the requests', is tested at the end.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from app import create_app
from app.extensions import db
from app.inbox.live import LiveStreams, _gone
from app.services import agents as agent_service
from tests import meta
from tests.conftest import TEST_CONFIG, WebhookPoster
from tests.live import Gunicorn
from tests.test_inbox_polls import CUSTOMER
from tests.test_inbox_version_listener import _listening_app, _wait_for_listener
from tests.test_pages import PASSWORD, login
from tests.test_security_headers import Browser

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def listening(committed_db: str) -> Iterator[Flask]:
    app = _listening_app(committed_db, LIVE_HEARTBEAT_SECONDS=2, LIVE_STREAM_SECONDS=30, LIVE_STREAMS_PER_WORKER=2)
    _wait_for_listener(app)
    try:
        yield app
    finally:
        app.extensions["inbox_version_listener"].stop()


def _browser(app: Flask) -> FlaskClient:
    client = app.test_client()
    login(client, "lea@example.com")
    return client


def _versions(chunks: Iterator[bytes], until: float) -> Iterator[int]:
    """The versions a stream sends (each event's `data`), until the stream ends or `until`."""
    for chunk in chunks:
        for line in chunk.decode().splitlines():
            if line.startswith("data: "):
                yield int(line.removeprefix("data: "))
        if time.monotonic() > until:
            return


def _open(client: FlaskClient) -> Any:
    response = client.get("/inbox/events", buffered=False)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def _sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    assert value is not None, name
    return value


def _say(app: Flask, body: str) -> None:
    message = meta.message(sender=CUSTOMER, content={"body": body})
    assert WebhookPoster(app.test_client())(meta.delivery(meta.value(messages=[message]))).status_code == 200


def test_the_stream_sends_the_version_at_once_and_again_when_a_commit_bumps_it(listening: Flask) -> None:
    response = _open(_browser(listening))
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-store"
    chunks = iter(response.response)
    first_chunk = next(chunks).decode()
    assert first_chunk.startswith("retry: 1000\n")
    first = int(first_chunk.split("data: ")[1].split("\n")[0])
    assert first == listening.extensions["inbox_version_listener"].current()
    # Nothing happened: the heartbeat repeats the same version (every LIVE_HEARTBEAT_SECONDS).
    started = time.monotonic()
    assert next(_versions(chunks, started + 5)) == first
    assert 1.5 < time.monotonic() - started < 4
    # A delivery committed (another worker, as far as the stream knows): its bump is pushed.
    _say(listening, "¿hay alguien?")
    said = time.monotonic()
    newer = next(v for v in _versions(chunks, said + 5) if v != first)
    assert newer > first
    # Woken by the NOTIFY, not by the next heartbeat or the worker check (2 s each).
    assert time.monotonic() - said < 0.7
    response.close()


def test_an_open_stream_holds_no_database_connection(listening: Flask) -> None:
    response = _open(_browser(listening))
    next(iter(response.response))
    with listening.app_context():
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    response.close()


def test_every_slot_taken_is_204_and_a_stream_gives_its_slot_back_however_it_ends(listening: Flask) -> None:
    streams: LiveStreams = listening.extensions["live_streams"]
    browser = _browser(listening)
    gauge = _sample("inbox_live_streams_open")  # of every app in this process
    one, two = _open(browser), _open(browser)
    next(iter(one.response))  # one has sent its first event; two is never iterated at all
    assert streams.open == 2 and _sample("inbox_live_streams_open") == gauge + 2
    refusals = _sample("inbox_live_streams_refused_total", reason="no_slot")
    refused = browser.get("/inbox/events")
    assert refused.status_code == 204  # server-sent events' "do not reconnect"
    assert refused.headers["Retry-After"] == "30" and refused.get_data() == b""
    assert _sample("inbox_live_streams_refused_total", reason="no_slot") == refusals + 1
    two.close()  # closed before its first byte (a client gone at once)
    assert streams.open == 1
    three = _open(browser)
    one.close()
    three.close()
    assert streams.open == 0 and _sample("inbox_live_streams_open") == gauge


def test_a_stream_ends_when_its_worker_stops_or_the_listener_stops_vouching(listening: Flask) -> None:
    streams: LiveStreams = listening.extensions["live_streams"]
    browser = _browser(listening)
    response = _open(browser)
    chunks = iter(response.response)
    next(chunks)
    streams.draining = lambda: True  # gunicorn.conf.py points it at `not worker.alive`
    started = time.monotonic()
    assert list(chunks) == []  # ended, without another event
    assert time.monotonic() - started < 3  # DRAIN_CHECK_SECONDS, not the 30 s lifetime
    assert streams.open == 0
    streams.draining = lambda: False

    response = _open(browser)
    chunks = iter(response.response)
    next(chunks)
    waiting = threading.Thread(target=lambda: list(chunks))
    waiting.start()
    time.sleep(0.2)
    listening.extensions["inbox_version_listener"].stop()
    waiting.join(timeout=2)
    assert not waiting.is_alive()  # woken at once by the lost listener
    assert streams.open == 0
    # And a new stream is refused while no listener vouches for the version: the page polls.
    assert browser.get("/inbox/events").status_code == 204


def test_a_stream_ends_at_its_lifetime(committed_db: str) -> None:
    app = _listening_app(committed_db, LIVE_STREAM_SECONDS=5, LIVE_HEARTBEAT_SECONDS=60)
    try:
        _wait_for_listener(app)
        response = _open(_browser(app))
        started = time.monotonic()
        assert len(list(response.response)) == 1  # the first event only, then the end
        assert 4.5 < time.monotonic() - started < 7
        assert app.extensions["live_streams"].open == 0
    finally:
        app.extensions["inbox_version_listener"].stop()


def test_without_a_listener_the_stream_is_refused_and_head_holds_nothing(
    app: Flask, client: FlaskClient, agent
) -> None:  # type: ignore[no-untyped-def]
    login(client, agent.email)
    refused = client.get("/inbox/events")  # the tests' config: INBOX_VERSION_LISTEN off
    assert refused.status_code == 204 and refused.headers["Retry-After"]
    head = client.head("/inbox/events")
    assert head.status_code == 200 and head.mimetype == "text/event-stream"
    assert app.extensions["live_streams"].open == 0


def test_a_visitor_is_sent_to_the_login_page(client: FlaskClient) -> None:
    response = client.get("/inbox/events")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_inbox_page_names_the_stream(client: FlaskClient, agent) -> None:  # type: ignore[no-untyped-def]
    login(client, agent.email)
    assert 'data-live="/inbox/events"' in client.get("/").get_data(as_text=True)


# --- gunicorn.conf.py's RequestSlots ---------------------------------------------------------


def _gunicorn_conf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    """gunicorn.conf.py as gunicorn reads it (its metrics directory pointed at a temporary one)."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("GUNICORN_THREADS", "2")
    monkeypatch.setenv("LIVE_STREAMS_PER_WORKER", "3")
    spec = importlib.util.spec_from_file_location("gunicorn_conf_under_test", PROJECT_ROOT / "gunicorn.conf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gunicorn_gives_the_streams_threads_of_their_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf = _gunicorn_conf(monkeypatch, tmp_path)
    assert (conf.request_threads, conf.live_streams, conf.threads) == (2, 3, 5)


def test_request_slots_let_no_more_requests_run_at_once_than_gunicorn_threads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = _gunicorn_conf(monkeypatch, tmp_path)
    running = {"request": 0, "stream": 0}
    most = dict(running)
    lock, release = threading.Lock(), threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        kind = "stream" if environ["PATH_INFO"] == conf.LIVE_STREAM_PATH else "request"
        with lock:
            running[kind] += 1
            most[kind] = max(most[kind], running[kind])
        release.wait(5)
        with lock:
            running[kind] -= 1
        start_response("200 OK", [])
        return [b""]

    slots = conf.RequestSlots(app, conf.request_threads)
    calls = [{"PATH_INFO": "/inbox/fragments/list"}] * 5 + [{"PATH_INFO": conf.LIVE_STREAM_PATH}] * 3
    threads = [threading.Thread(target=slots, args=(dict(environ), lambda *a: None)) for environ in calls]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while running != {"request": 2, "stream": 3} and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the three requests left wait for a slot, not for the streams
    assert running == {"request": 2, "stream": 3}
    release.set()
    for thread in threads:
        thread.join(5)
    assert most == {"request": 2, "stream": 3} and running == {"request": 0, "stream": 0}


# --- under gunicorn, as deployed ---------------------------------------------------------------


def test_gone_sees_a_closed_client_and_nothing_else() -> None:
    ours, theirs = socket.socketpair()
    try:
        assert not _gone(ours) and not _gone(None)
        theirs.sendall(b"x")  # something to read is not a client gone (nor consumed: a peek)
        assert not _gone(ours) and ours.recv(1) == b"x"
        theirs.close()
        assert _gone(ours)
    finally:
        ours.close()


@pytest.mark.live
def test_under_gunicorn_a_stream_has_its_slot_and_a_closed_one_gives_it_back_at_once(committed_db: str) -> None:
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": committed_db})
    with app.app_context():
        agent_service.create_agent("stream@example.com", "Stream", PASSWORD)
        db.engine.dispose()
    env = {"LIVE_STREAMS_PER_WORKER": "1", "INBOX_VERSION_LISTEN": "true"}
    with Gunicorn(committed_db, workers=1, env=env) as server:
        browser = Browser(server.base_url)
        browser.login("stream@example.com")
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items())}

        def stream() -> requests.Response:
            return requests.get(server.base_url + "/inbox/events", headers=headers, stream=True, timeout=10)

        first = stream()  # the worker's listener connected as it started: not refused
        assert first.status_code == 200 and first.headers["Content-Type"].startswith("text/event-stream")
        # Kept: an iterator of requests' dropped at once closes its connection (urllib3 closes it on
        # GeneratorExit), and the worker, seeing the client gone, would give the slot back.
        chunks = first.iter_content(chunk_size=None)
        assert b"event: version" in next(chunks)
        time.sleep(2.5)
        assert stream().status_code == 204  # its one slot is taken
        # Requests have their own threads meanwhile (GUNICORN_THREADS beyond the stream's).
        assert browser.request("GET", "/inbox/fragments/list").status_code == 200
        first.close()  # the page left: gunicorn's socket says so within DRAIN_CHECK_SECONDS
        deadline = time.monotonic() + 5
        while (again := stream()).status_code == 204:
            assert time.monotonic() < deadline, "the closed stream kept its slot"
            time.sleep(0.2)
        assert again.status_code == 200
        again.close()

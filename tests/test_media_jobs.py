"""Inbound media kept: fetched by a job after the webhook's commit, stored (filesystem and a real
S3-compatible server), and served from our copy — whole, by range — after WhatsApp forgets it.

The jobs run through the real queue (Procrastinate on the test database, a worker run until the
queue is empty), so these tests use committed data (`committed_db`): the worker has its own
connections and sees only what was committed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from app.extensions import db
from app.jobs import FETCH_MEDIA, MEDIA_QUEUE, SWEEP_MEDIA, defer_owed, web_queue
from app.jobs.media import RETRY, sweep_media
from app.jobs.worker import build_worker_queue, run_worker
from app.models import Message
from app.services import agents as agent_service
from app.services import media_fetch
from app.storage import media_storage
from tests import fake_graph, meta
from tests.conftest import PROJECT_ROOT, WebhookPoster
from tests.fake_graph import MEDIA_DOWNLOAD, MEDIA_INFO, delay, server_error
from tests.s3_server import S3Server
from tests.test_pages import login

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8 + b"\xff\xd9"
OGG = b"OggS\x00\x02" + bytes(range(200)) * 3
MP4 = random.Random(11).randbytes(300_001)
PDF = b"%PDF-1.7\n" + b"factura \xe2\x82\xac\n" * 40 + b"%%EOF\n"
WEBP = b"RIFF\x20\x00\x00\x00WEBPVP8 " + bytes(range(64))
MEDIA = {
    "image": ("7001", JPEG, "image/jpeg", {"caption": "el recibo"}),
    "audio": ("7002", OGG, "audio/ogg; codecs=opus", {"voice": True}),
    "video": ("7003", MP4, "video/mp4", {}),
    "document": ("7004", PDF, "application/pdf", {"filename": "factura.pdf"}),
    "sticker": ("7005", WEBP, "image/webp", {"animated": False}),
}
QUEUE_TABLES = "procrastinate_jobs, procrastinate_periodic_defers, procrastinate_workers"


def b64sha(content: bytes) -> str:
    """The webhook's sha256: base64 of the digest."""
    return base64.b64encode(hashlib.sha256(content).digest()).decode()


def _empty_queue(app: Flask) -> None:
    with app.app_context():
        db.session.execute(text(f"TRUNCATE {QUEUE_TABLES} RESTART IDENTITY CASCADE"))
        db.session.commit()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture
def jobs_app(app: Flask, committed_db: str, graph: fake_graph.FakeGraph, monkeypatch, tmp_path) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    """Committed data, an empty queue, media kept under the test's own directory."""
    monkeypatch.setitem(app.config, "MEDIA_STORAGE_PATH", str(tmp_path / "media"))
    monkeypatch.setitem(app.config, "MEDIA_S3_BUCKET", None)
    _empty_queue(app)
    yield app
    _empty_queue(app)


@pytest.fixture(params=["filesystem", "s3"])
def backend(request, jobs_app: Flask, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = f"media-{uuid.uuid4().hex[:12]}"
        server.create_bucket(bucket)
        for key, value in server.config(bucket, prefix="inbox/").items():
            monkeypatch.setitem(jobs_app.config, key, value)
    return str(request.param)


@pytest.fixture
def http(jobs_app: Flask) -> FlaskClient:
    return jobs_app.test_client()


@pytest.fixture
def auth(jobs_app: Flask) -> dict[str, str]:
    with jobs_app.app_context():
        agent = agent_service.create_agent("ana@example.com", "Ana", "correct horse battery", role="admin")
        return {"Authorization": f"Bearer {agent_service.create_token(agent.email)}"}


def media_message(
    msg_type: str, media_id: str, content: bytes, mime: str, sha256: str | None = None, **extra: Any
) -> dict:
    body = {"id": media_id, "mime_type": mime, "sha256": b64sha(content) if sha256 is None else sha256, **extra}
    return meta.message(msg_type, content=body)


def post(http: FlaskClient, *messages: dict) -> None:
    response = WebhookPoster(http)(meta.delivery(meta.value(messages=list(messages))))
    assert response.status_code == 200, response.text


def rows(app: Flask) -> dict[str, Message]:
    """Every message by wamid, read in a fresh session."""
    with app.app_context():
        found = {m.wamid: m for m in db.session.execute(select(Message)).scalars()}
        db.session.expunge_all()
        return found


def message_id(app: Flask, wamid: str) -> int:
    return rows(app)[wamid].id


def run_jobs(app: Flask) -> None:
    """A worker run through the real queue until nothing is due (jobs a job queued included)."""
    for _ in range(5):
        run_worker(app, once=True)
        if not _due_jobs(app):
            return
    raise AssertionError("the queue did not empty")


def _due_jobs(app: Flask) -> int:
    with app.app_context():
        count = db.session.execute(
            text(
                "SELECT count(*) FROM procrastinate_jobs"
                " WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())"
            )
        ).scalar_one()
        db.session.commit()
        return int(count)


def jobs(app: Flask) -> list[Any]:
    with app.app_context():
        found = db.session.execute(
            text("SELECT id, task_name, status, attempts, scheduled_at, args FROM procrastinate_jobs ORDER BY id")
        ).all()
        db.session.commit()
        return list(found)


def make_retries_due(app: Flask) -> None:
    with app.app_context():
        db.session.execute(text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'"))
        db.session.commit()


def media_url(app: Flask, wamid: str) -> str:
    return f"/whatsapp/api/media/{message_id(app, wamid)}"


# --- kept and served after Meta forgets ---------------------------------------------------------


def test_every_inbound_media_type_is_stored_and_still_served_after_graph_says_expired(
    jobs_app: Flask, backend: str, http: FlaskClient, auth: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    messages = {}
    for msg_type, (media_id, content, mime, extra) in MEDIA.items():
        graph.media[media_id] = (content, mime)
        messages[msg_type] = media_message(msg_type, media_id, content, mime, **extra)
    post(http, *messages.values())
    assert graph.requests == []  # the webhook never calls Graph
    assert {m.media_state for m in rows(jobs_app).values()} == {"pending"}
    assert [j.task_name for j in jobs(jobs_app)] == [FETCH_MEDIA] * 5  # queued after the commit

    run_jobs(jobs_app)

    kept = rows(jobs_app)
    for msg_type, (_, content, mime, _) in MEDIA.items():
        row = kept[messages[msg_type]["id"]]
        assert row.media_state == "stored", (msg_type, row.media_error)
        assert row.media_size == len(content) and row.media_stored_sha256 == hashlib.sha256(content).hexdigest()
        assert row.media_content_type == mime
    assert len(graph.sent(MEDIA_DOWNLOAD)) == 5

    graph.reset()  # Meta's copies are gone: Graph now answers "unknown object" (100) for every id
    for msg_type, (_, content, mime, _) in MEDIA.items():
        response = http.get(media_url(jobs_app, messages[msg_type]["id"]), headers=auth)
        assert response.status_code == 200, (msg_type, response.text)
        assert response.data == content  # byte for byte
        assert response.headers["Content-Type"] == mime
        assert response.headers["ETag"] == f'"{hashlib.sha256(content).hexdigest()}"'
        assert response.headers["Accept-Ranges"] == "bytes"
        assert response.headers["Content-Length"] == str(len(content))
        assert response.headers["Cache-Control"] == "private, max-age=86400"
        assert response.headers["Content-Security-Policy"] == "sandbox"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert graph.requests == []  # served from our storage only
    assert http.get(media_url(jobs_app, messages["image"]["id"])).status_code == 401  # same authentication
    assert (
        http.get(media_url(jobs_app, messages["document"]["id"]), headers=auth).headers["Content-Disposition"]
        == 'attachment; filename="factura.pdf"'
    )

    if backend == "s3":  # the objects really are in the bucket
        with jobs_app.app_context():
            storage = media_storage()
            key = kept[messages["video"]["id"]].media_storage_key
            stored = storage.client.get_object(Bucket=storage.bucket, Key=f"inbox/{key}")["Body"].read()  # type: ignore[attr-defined]
        assert stored == MP4


def test_range_requests_answer_206_with_the_right_bytes_and_416_out_of_range(
    jobs_app: Flask, backend: str, http: FlaskClient, auth: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    graph.media["7101"] = (MP4, "video/mp4")
    message = media_message("video", "7101", MP4, "video/mp4")
    post(http, message)
    run_jobs(jobs_app)
    graph.reset()
    url, size = media_url(jobs_app, message["id"]), len(MP4)
    etag = f'"{hashlib.sha256(MP4).hexdigest()}"'

    for header, start, stop in (
        ("bytes=0-1", 0, 2),  # Safari's first probe
        ("bytes=1000-70999", 1000, 71000),
        ("bytes=299990-", 299990, size),
        ("bytes=-10", size - 10, size),
        ("bytes=299000-999999999", 299000, size),
    ):
        response = http.get(url, headers={**auth, "Range": header})
        assert response.status_code == 206, header
        assert response.data == MP4[start:stop], header
        assert response.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{size}"
        assert response.headers["Content-Length"] == str(stop - start)
        assert response.headers["ETag"] == etag

    unsatisfiable = http.get(url, headers={**auth, "Range": f"bytes={size}-"})
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["Content-Range"] == f"bytes */{size}"
    assert unsatisfiable.data == b""

    assert http.get(url, headers={**auth, "If-None-Match": etag}).status_code == 304
    stale = http.get(url, headers={**auth, "Range": "bytes=0-9", "If-Range": '"another"'})
    assert stale.status_code == 200 and stale.data == MP4  # If-Range did not match: the whole file
    several = http.get(url, headers={**auth, "Range": "bytes=0-9,20-29"})
    assert several.status_code == 200 and several.data == MP4  # multipart ranges are not offered


# --- no job lost, none run twice at once --------------------------------------------------------


def test_the_webhook_queues_the_fetch_in_its_own_transaction(
    jobs_app: Flask, http: FlaskClient, graph: fake_graph.FakeGraph
) -> None:
    graph.media["7200"] = (JPEG, "image/jpeg")
    message = media_message("image", "7200", JPEG, "image/jpeg")
    post(http, message)
    queued = jobs(jobs_app)
    assert [(job.task_name, job.status, job.args) for job in queued] == [
        (FETCH_MEDIA, "todo", {"message_id": message_id(jobs_app, message["id"])})
    ]


def test_a_delivery_rolled_back_leaves_no_job(
    jobs_app: Flask, http: FlaskClient, graph: fake_graph.FakeGraph, monkeypatch
) -> None:
    """The job is part of the webhook's transaction: a failure after it was queued and before the
    commit leaves neither the message nor its job (Meta delivers again; nothing runs for a row
    that does not exist)."""
    monkeypatch.setattr("app.services.inbound.defer_owed", _defer_then_fail)
    message = media_message("image", "7203", JPEG, "image/jpeg")
    response = WebhookPoster(http)(meta.delivery(meta.value(messages=[message])))
    assert response.status_code == 500 and response.json == {
        "error": "internal_error",
        "message": "Something went wrong; it has been logged.",
    }
    assert jobs(jobs_app) == [] and message["id"] not in rows(jobs_app)


def _defer_then_fail(message_ids: list[int], reply_ids: list[int]) -> int:
    defer_owed(message_ids, reply_ids)
    raise RuntimeError("the process dies before the commit")


def test_a_fetch_left_unqueued_still_ends_stored_by_the_sweep(
    jobs_app: Flask, http: FlaskClient, auth: dict[str, str], graph: fake_graph.FakeGraph, monkeypatch
) -> None:
    graph.media["7201"] = (JPEG, "image/jpeg")
    graph.media["7202"] = (PDF, "application/pdf")
    # A version that queued nothing (or a job lost by a restore of the queue's tables).
    monkeypatch.setattr("app.services.inbound.defer_owed", lambda message_ids, reply_ids: 0)
    first = media_message("image", "7201", JPEG, "image/jpeg")
    post(http, first)
    # The queue refuses the job (one with the same queueing lock waits): the webhook still answers
    # 200 and commits the message as owed; the refused insert was rolled back to its savepoint.
    monkeypatch.setattr("app.services.inbound.defer_owed", defer_owed)
    with jobs_app.app_context():
        web_queue().configure_task(FETCH_MEDIA, queue=MEDIA_QUEUE, queueing_lock="taken").defer(message_id=0)
    monkeypatch.setattr("app.jobs.queue.fetch_lock", lambda message_id: "taken")
    second = media_message("document", "7202", PDF, "application/pdf", filename="f.pdf")
    post(http, second)
    assert [job.args for job in jobs(jobs_app)] == [{"message_id": 0}]
    assert {rows(jobs_app)[m["id"]].media_state for m in (first, second)} == {"pending"}
    monkeypatch.undo()

    web_queue_defer_sweep(jobs_app)  # what the worker's periodic deferrer does every minute
    run_jobs(jobs_app)

    kept = rows(jobs_app)
    assert [kept[m["id"]].media_state for m in (first, second)] == ["stored", "stored"]
    graph.reset()
    assert http.get(media_url(jobs_app, first["id"]), headers=auth).data == JPEG


def web_queue_defer_sweep(app: Flask) -> None:
    with app.app_context():
        web_queue().configure_task(SWEEP_MEDIA, queue=MEDIA_QUEUE, queueing_lock=SWEEP_MEDIA).defer(timestamp=0)


def test_the_sweep_does_not_queue_media_whose_job_is_still_waiting(
    jobs_app: Flask, http: FlaskClient, graph: fake_graph.FakeGraph
) -> None:
    graph.media["7301"] = (JPEG, "image/jpeg")
    post(http, media_message("image", "7301", JPEG, "image/jpeg"))
    with jobs_app.app_context():
        queue = build_worker_queue(jobs_app)

        async def sweep() -> int:
            async with queue.open_async():
                return await sweep_media(queue, jobs_app)

        assert asyncio.run(sweep()) == 0  # the webhook's job is waiting: the queueing lock holds
    assert len(jobs(jobs_app)) == 1


def test_two_workers_never_fetch_the_same_media_at_once(
    jobs_app: Flask, http: FlaskClient, graph: fake_graph.FakeGraph, monkeypatch
) -> None:
    graph.media["7401"] = (MP4, "video/mp4")
    message = media_message("video", "7401", MP4, "video/mp4")
    post(http, message)
    target = message_id(jobs_app, message["id"])
    # A second job for the same message, as a sweep racing the webhook's enqueue could leave.
    with jobs_app.app_context():
        web_queue().configure_task(FETCH_MEDIA, queue=MEDIA_QUEUE).defer(message_id=target)
    # A slow download (under the read timeout, so Graph's client never retries it): both overlap.
    monkeypatch.setitem(jobs_app.config, "GRAPH_READ_TIMEOUT", 10)
    graph.script(MEDIA_DOWNLOAD, delay(0.5), delay(0.5))

    started = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            started.wait(timeout=10)
            queue = build_worker_queue(jobs_app)
            queue.run_worker(queues=[MEDIA_QUEUE], wait=False, install_signal_handlers=False, listen_notify=False)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(graph.sent(MEDIA_DOWNLOAD)) == 1  # one download, although two jobs ran
    assert rows(jobs_app)[message["id"]].media_state == "stored"
    # (Only the fetches: a worker also defers the periodic tasks of queues it does not run.)
    assert {j.status for j in jobs(jobs_app) if j.task_name == FETCH_MEDIA} == {"succeeded"}


def test_two_fetches_racing_in_threads_download_once(
    jobs_app: Flask, http: FlaskClient, graph: fake_graph.FakeGraph, monkeypatch
) -> None:
    graph.media["7402"] = (JPEG, "image/jpeg")
    message = media_message("image", "7402", JPEG, "image/jpeg")
    post(http, message)
    target = message_id(jobs_app, message["id"])
    monkeypatch.setitem(jobs_app.config, "GRAPH_READ_TIMEOUT", 10)
    graph.script(MEDIA_DOWNLOAD, delay(0.5), delay(0.5))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def fetch() -> None:
        with jobs_app.app_context():
            barrier.wait(timeout=10)
            outcomes.append(media_fetch.fetch_media(target, last_attempt=False))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["not_owed", "stored"]
    assert len(graph.sent(MEDIA_DOWNLOAD)) == 1


# --- failures -------------------------------------------------------------------------------------


def test_a_sha256_mismatch_is_retried_then_marked_corrupt_and_never_served(
    jobs_app: Flask, http: FlaskClient, auth: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    graph.media["7501"] = (JPEG, "image/jpeg")
    message = media_message("image", "7501", JPEG, "image/jpeg", sha256=b64sha(b"what the customer sent"))
    post(http, message)
    url = media_url(jobs_app, message["id"])

    run_jobs(jobs_app)
    row = rows(jobs_app)[message["id"]]
    assert row.media_state == "pending" and row.media_attempts == 1
    assert row.media_error.startswith("checksum mismatch")
    [job] = jobs(jobs_app)
    assert job.status == "todo" and job.attempts == 1  # retried later, with backoff
    refused = http.get(url, headers=auth)
    assert refused.status_code == 502 and refused.json["error"] == "media_checksum_mismatch"  # not Graph's bytes

    for _ in range(RETRY.max_attempts or 0):
        make_retries_due(jobs_app)
        run_jobs(jobs_app)
    row = rows(jobs_app)[message["id"]]
    assert row.media_state == "corrupt" and row.media_attempts == 6 and row.media_storage_key is None
    assert jobs(jobs_app) == []  # the job ended (the row says why)
    gone = http.get(url, headers=auth)
    assert gone.status_code == 410 and gone.json["error"] == "media_corrupt"
    assert gone.headers["Cache-Control"] == "no-store"


def test_graph_5xx_is_retried_with_backoff_for_more_than_two_hours_then_stored(
    jobs_app: Flask, http: FlaskClient, graph: fake_graph.FakeGraph
) -> None:
    waits = [RETRY.wait + RETRY.exponential_wait ** (attempt + 1) for attempt in range(RETRY.max_attempts or 0)]
    assert sum(waits) > 2 * 3600 and len(waits) + 1 == 6  # 6 attempts spread over more than 2 hours

    graph.media["7601"] = (OGG, "audio/ogg")
    message = media_message("audio", "7601", OGG, "audio/ogg", voice=True)
    post(http, message)
    graph.script(MEDIA_INFO, *[server_error(503)] * 3)  # the client's own bounded retries all fail
    run_jobs(jobs_app)
    [job] = jobs(jobs_app)
    assert job.status == "todo" and job.attempts == 1
    assert rows(jobs_app)[message["id"]].media_state == "pending"

    make_retries_due(jobs_app)  # Graph is back
    run_jobs(jobs_app)
    assert rows(jobs_app)[message["id"]].media_state == "stored"


def test_media_expired_before_the_fetch_is_marked_and_answers_410(
    jobs_app: Flask, http: FlaskClient, auth: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    message = media_message("image", "7701", JPEG, "image/jpeg")  # Graph does not know 7701
    post(http, message)
    run_jobs(jobs_app)
    assert rows(jobs_app)[message["id"]].media_state == "expired"
    assert jobs(jobs_app) == []
    graph.reset()
    response = http.get(media_url(jobs_app, message["id"]), headers=auth)
    assert response.status_code == 410 and response.json["error"] == "media_expired"
    assert graph.requests == []  # known gone: Graph is not asked again


# --- retention ------------------------------------------------------------------------------------


def test_pruned_media_leaves_the_message_saying_so(
    jobs_app: Flask, backend: str, http: FlaskClient, auth: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    graph.media["7801"] = (PDF, "application/pdf")
    graph.media["7802"] = (JPEG, "image/jpeg")
    old = media_message("document", "7801", PDF, "application/pdf", filename="viejo.pdf")
    new = media_message("image", "7802", JPEG, "image/jpeg")
    post(http, old, new)
    run_jobs(jobs_app)
    with jobs_app.app_context():
        db.session.execute(
            text("UPDATE messages SET media_stored_at = now() - interval '40 days' WHERE wamid = :w"), {"w": old["id"]}
        )
        db.session.commit()
    key = rows(jobs_app)[old["id"]].media_storage_key
    result = jobs_app.test_cli_runner().invoke(args=["maintenance", "prune-media", "--days", "30"])
    assert result.exit_code == 0 and "Pruned 1 media" in result.output, result.output

    kept = rows(jobs_app)
    assert kept[old["id"]].media_state == "pruned" and kept[new["id"]].media_state == "stored"
    with jobs_app.app_context():
        assert not media_storage().exists(key)
    response = http.get(media_url(jobs_app, old["id"]), headers=auth)
    assert response.status_code == 410 and response.json["error"] == "media_pruned"
    assert http.get(media_url(jobs_app, new["id"]), headers=auth).data == JPEG


def test_files_no_message_serves_are_removed_once_a_day_old(
    jobs_app: Flask, backend: str, http: FlaskClient, auth: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    graph.media["7811"] = (JPEG, "image/jpeg")
    graph.media["7812"] = (PDF, "application/pdf")
    kept_message = media_message("image", "7811", JPEG, "image/jpeg")
    pruned_message = media_message("document", "7812", PDF, "application/pdf", filename="f.pdf")
    post(http, kept_message, pruned_message)
    run_jobs(jobs_app)
    stored = rows(jobs_app)
    kept_key = stored[kept_message["id"]].media_storage_key
    pruned_key = stored[pruned_message["id"]].media_storage_key
    assert kept_key and pruned_key
    kept_id = message_id(jobs_app, kept_message["id"])
    orphans = [
        f"messages/00099/999999-{'a' * 16}",  # an upload whose message never committed
        f"messages/{kept_id // 10000:05d}/{kept_id}-{'b' * 16}",  # the message's id, not its file
        f"messages/{kept_id // 10000:05d}/.half-written.tmp",  # a put interrupted
        pruned_key,  # a prune whose delete failed: the row says `pruned`
    ]
    with jobs_app.app_context():
        db.session.execute(
            text("UPDATE messages SET media_state = 'pruned' WHERE wamid = :w"), {"w": pruned_message["id"]}
        )
        db.session.commit()
        storage = media_storage()
        for key in orphans[:3]:
            storage.put(key, io.BytesIO(b"left behind"), size=11, content_type="application/octet-stream")

    # Younger than a day: an upload may still be about to commit its row; nothing goes.
    result = jobs_app.test_cli_runner().invoke(args=["maintenance", "prune-orphans"])
    assert result.exit_code == 0 and "Removed 0 orphaned" in result.output, result.output
    with jobs_app.app_context():
        assert all(media_storage().exists(key) for key in [kept_key, *orphans])
        removed = media_fetch.prune_orphans(now=datetime.now(UTC) + timedelta(days=2), batch=2)
        assert removed == len(orphans)
        assert media_storage().exists(kept_key)
        assert not any(media_storage().exists(key) for key in orphans)
    assert http.get(media_url(jobs_app, kept_message["id"]), headers=auth).data == JPEG


def test_retention_defaults_to_keeping_media_forever(jobs_app: Flask) -> None:
    assert jobs_app.config["MEDIA_RETENTION_DAYS"] == 0
    result = jobs_app.test_cli_runner().invoke(args=["maintenance", "prune-media"])
    assert result.exit_code == 0 and "kept forever" in result.output


# --- the thread, the jobs command, the metrics ---------------------------------------------------


def test_the_thread_shows_downloading_kept_and_unavailable(
    jobs_app: Flask, http: FlaskClient, auth: dict[str, str], graph: fake_graph.FakeGraph
) -> None:
    graph.media["7901"] = (JPEG, "image/jpeg")
    kept = media_message("image", "7901", JPEG, "image/jpeg")
    gone = media_message("image", "7902", JPEG, "image/jpeg")  # unknown to Graph: expired
    post(http, kept, gone)
    conversation = http.get("/whatsapp/api/conversaciones", headers=auth).json["conversations"][0]["id"]

    def states() -> list[str | None]:
        thread = http.get(f"/whatsapp/api/conversaciones/{conversation}/mensajes", headers=auth).json
        return [m["media"]["state"] for m in thread["messages"]]

    assert states() == ["pending", "pending"]
    page = _thread_page(jobs_app, http, conversation)
    assert page.count("Descargando…") == 2
    run_jobs(jobs_app)
    assert states() == ["stored", "expired"]
    page = _thread_page(jobs_app, http, conversation)
    assert "Guardado" in page and "No disponible: WhatsApp ya no tiene este archivo." in page


def _thread_page(app: Flask, http: FlaskClient, conversation_id: int) -> str:
    response = login(http, "ana@example.com", "correct horse battery")
    assert response.status_code in (302, 303), response.status_code
    return http.get(f"/inbox/fragments/conversations/{conversation_id}").text


def test_the_jobs_command_lists_failed_jobs_and_retries_them(jobs_app: Flask, http: FlaskClient) -> None:
    with jobs_app.app_context():
        web_queue().configure_task("media.unknown", queue=MEDIA_QUEUE).defer(message_id=1)  # no such task: fails
    run_worker(jobs_app, once=True)
    runner = jobs_app.test_cli_runner()
    listed = runner.invoke(args=["jobs"])
    assert listed.exit_code == 0, listed.output
    assert "1 failed jobs:" in listed.output and "media.unknown" in listed.output

    post(http, media_message("image", "7951", JPEG, "image/jpeg"))  # unknown to Graph
    with jobs_app.app_context():
        db.session.execute(text("UPDATE messages SET media_state = 'failed', media_error = 'Graph: 500'"))
        db.session.commit()
        db.session.execute(text("DELETE FROM procrastinate_jobs WHERE task_name = :t"), {"t": FETCH_MEDIA})
        db.session.commit()
    assert "1 media given up on:" in runner.invoke(args=["jobs"]).output

    retried = runner.invoke(args=["jobs", "retry"])
    assert retried.exit_code == 0 and "Queued again: 1 failed jobs, 1 media." in retried.output
    assert sorted((j.task_name, j.status) for j in jobs(jobs_app)) == [(FETCH_MEDIA, "todo"), ("media.unknown", "todo")]
    assert {m.media_state for m in rows(jobs_app).values()} == {"pending"}


def test_job_metrics_show_the_queue_by_task_and_the_oldest_job(
    jobs_app: Flask, http: FlaskClient, graph: fake_graph.FakeGraph, monkeypatch
) -> None:
    monkeypatch.setitem(jobs_app.config, "METRICS_TOKEN", "metrics-token")
    post(http, media_message("image", "7961", JPEG, "image/jpeg"), media_message("video", "7962", MP4, "video/mp4"))
    with jobs_app.app_context():
        db.session.execute(text("UPDATE procrastinate_events SET at = at - interval '11 minutes'"))
        db.session.commit()
    exported = http.get("/metrics", headers={"Authorization": "Bearer metrics-token"}).text
    assert 'inbox_jobs{state="queued",task="media.fetch"} 2.0' in exported
    assert 'inbox_jobs{state="failed",task="media.fetch"} 0.0' in exported
    assert "inbox_media_pending 2.0" in exported
    age = float(re.search(r"^inbox_jobs_oldest_queued_age_seconds (\S+)$", exported, re.MULTILINE).group(1))
    assert 600 < age < 3600  # the alert (monitoring/alerts.yml) fires past 10 minutes


@pytest.mark.slow
def test_a_worker_killed_mid_download_still_ends_stored(
    jobs_app: Flask, http: FlaskClient, graph: fake_graph.FakeGraph, tmp_path
) -> None:
    """A real `flask --app wsgi jobs worker` process, SIGKILLed while Graph is sending the file."""
    graph.media["7991"] = (MP4, "video/mp4")
    message = media_message("video", "7991", MP4, "video/mp4")
    post(http, message)
    graph.script(MEDIA_DOWNLOAD, delay(30))  # the download hangs until the worker is killed
    env = {
        **os.environ,
        "DATABASE_URL": jobs_app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": "worker-test",
        "WHATSAPP_GRAPH_URL": graph.base_url,
        "WHATSAPP_ACCESS_TOKEN": fake_graph.ACCESS_TOKEN,
        "WHATSAPP_MEDIA_HOSTS": "http://127.0.0.1",
        "GRAPH_READ_TIMEOUT": "60",
        "MEDIA_STORAGE_PATH": jobs_app.config["MEDIA_STORAGE_PATH"],
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "worker"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not graph.sent(MEDIA_DOWNLOAD) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert graph.sent(MEDIA_DOWNLOAD), "the worker never started the download"
    finally:
        worker.kill()  # SIGKILL: no clean-up of any kind
        worker.wait(timeout=10)
    row = rows(jobs_app)[message["id"]]
    assert row.media_state == "pending" and row.media_claimed_until is not None
    assert [j.status for j in jobs(jobs_app) if j.task_name == FETCH_MEDIA] == ["doing"]

    # Time passes: the dead worker's heartbeat goes stale and its claim lapses (10 minutes).
    with jobs_app.app_context():
        db.session.execute(text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '5 minutes'"))
        db.session.execute(text("UPDATE messages SET media_claimed_until = now() - interval '1 second'"))
        db.session.commit()
    web_queue_defer_sweep(jobs_app)
    run_jobs(jobs_app)
    assert rows(jobs_app)[message["id"]].media_state == "stored"
    graph.reset()
    assert len(MP4) == rows(jobs_app)[message["id"]].media_size


def test_the_worker_runs_at_a_lower_cpu_priority_never_a_higher_one() -> None:
    """JOBS_NICE: measured in a child process, so the suite's own priority is untouched."""
    script = (
        "import os, sys\n"
        "from app.jobs.worker import lower_priority\n"
        "first = lower_priority(10)\n"
        "again = lower_priority(5)\n"  # never raised back
        "most = lower_priority(40)\n"  # at most 19
        "sys.stdout.write(f'{first} {again} {most} {os.getpriority(os.PRIO_PROCESS, 0)}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout == "10 10 19 19"

"""Agents' attachments through HTTP: `POST …/mensajes` with `multipart/form-data`.

Each file is judged by its content and WhatsApp's limits, kept in our media storage (the
filesystem, and moto's real S3-compatible server), stored as a pending message, uploaded to the
fake Graph server (`POST /{phone-number-id}/media`) and sent by its media id — once per
Idempotency-Key. Refusals leave nothing behind: no message row, no stored file, no Graph call.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select, update

from app.api.docs import openapi_document
from app.extensions import db
from app.models import Conversation, IdempotencyKey, Message
from app.whatsapp.media_rules import ANIMATED_STICKER_LIMIT, AUDIO_LIMIT, IMAGE_LIMIT, MB, STICKER_LIMIT
from tests import media_samples, meta
from tests.fake_graph import MEDIA_UPLOAD, POST_MESSAGES, FakeGraph, error, server_error
from tests.s3_server import S3Server
from tests.test_openapi import THREAD, assert_documented

URL = "/whatsapp/api/conversaciones/{}/mensajes"
JPEG = media_samples.jpeg()
PDF = media_samples.pdf(3)


@pytest.fixture
def storage_dir(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Media kept under the test's own directory (filesystem storage)."""
    root = tmp_path / "media"
    monkeypatch.setitem(app.config, "MEDIA_STORAGE_PATH", str(root))
    monkeypatch.setitem(app.config, "MEDIA_S3_BUCKET", None)
    return root


@pytest.fixture
def conversation(post_webhook: Any, storage_dir: Path) -> int:
    """A conversation whose customer wrote a minute ago (the window is open)."""
    post_webhook(meta.delivery(meta.value(messages=[meta.message(ts=int(time.time()) - 60)])))
    return int(db.session.execute(select(Conversation.id)).scalar_one())


def send(
    client: FlaskClient,
    auth: dict[str, str],
    conversation: int,
    content: bytes,
    name: str | None = "file",
    mimetype: str = "application/octet-stream",
    *,
    key: str | None = None,
    **fields: str,
) -> Any:
    headers = dict(auth)
    if key is not None:
        headers["Idempotency-Key"] = key
    data: dict[str, Any] = {"file": (io.BytesIO(content), name, mimetype), **fields}
    return client.post(URL.format(conversation), data=data, headers=headers, content_type="multipart/form-data")


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def message_count() -> int:
    return int(db.session.execute(select(func.count()).select_from(Message)).scalar_one())


def row(message_id: int) -> Message:
    db.session.expire_all()
    return db.session.execute(select(Message).where(Message.id == message_id)).scalar_one()


@pytest.fixture
def nothing_kept(storage_dir: Path, graph: FakeGraph, conversation: int) -> Iterator[None]:
    """The test's refusals leave no message, no stored file, no Graph call."""
    before = message_count()
    yield
    assert message_count() == before
    assert stored_files(storage_dir) == []
    assert graph.requests == []
    assert db.session.execute(select(func.count()).select_from(IdempotencyKey)).scalar_one() == 0


# --- the three kinds of the issue: an image, a document, a voice note -------------------------------


def test_an_image_is_stored_uploaded_then_sent_by_id_with_its_caption(client, auth, graph, conversation, storage_dir):
    response = send(client, auth, conversation, JPEG, "recibo.jpg", "image/jpeg", caption="El recibo")
    assert response.status_code == 201, response.get_json()
    message = response.get_json()["message"]
    assert (message["type"], message["status"], message["text"]) == ("image", "accepted", "El recibo")
    assert message["media"]["state"] == "stored"

    [upload] = graph.uploads
    assert upload.content == JPEG
    assert upload.form == {"messaging_product": "whatsapp", "type": "image/jpeg"}
    assert (upload.filename, upload.content_type) == ("recibo.jpg", "image/jpeg")
    assert upload.phone_number_id == meta.PHONE_NUMBER_ID
    [sent] = graph.sent(POST_MESSAGES)
    assert sent.body["type"] == "image"
    assert sent.body["image"] == {"id": upload.media_id, "caption": "El recibo"}
    assert [r.path.rsplit("/", 1)[-1] for r in graph.requests] == ["media", "messages"]  # upload, then send

    stored = row(message["id"])
    assert (stored.media_id, stored.media_state, stored.media_size) == (upload.media_id, "stored", len(JPEG))
    assert (stored.media_mime_type, stored.media_content_type) == ("image/jpeg", "image/jpeg")
    assert stored.media_stored_sha256 == upload.sha256
    [kept] = stored_files(storage_dir)
    assert kept.read_bytes() == JPEG
    assert stored.media_storage_key == kept.relative_to(storage_dir).as_posix()


def test_a_pdf_is_sent_as_a_document_with_its_filename_and_caption(client, auth, graph, conversation):
    response = send(client, auth, conversation, PDF, "Factura 12.pdf", "application/pdf", caption="Su factura")
    assert response.status_code == 201, response.get_json()
    [upload] = graph.uploads
    assert (upload.content, upload.form["type"], upload.filename) == (PDF, "application/pdf", "Factura 12.pdf")
    [sent] = graph.sent(POST_MESSAGES)
    assert sent.body["document"] == {"id": upload.media_id, "caption": "Su factura", "filename": "Factura 12.pdf"}
    message = response.get_json()["message"]
    assert (message["type"], message["media"]["filename"], message["text"]) == (
        "document",
        "Factura 12.pdf",
        "Su factura",
    )


def test_a_document_name_can_be_given_and_gets_its_extension(client, auth, graph, conversation):
    response = send(client, auth, conversation, PDF, "scan0001.pdf", "application/pdf", filename="Contrato Ana")
    assert response.status_code == 201, response.get_json()
    [sent] = graph.sent(POST_MESSAGES)
    assert sent.body["document"] == {"id": graph.uploads[0].media_id, "filename": "Contrato Ana.pdf"}


def test_a_chromium_voice_recording_is_remuxed_to_ogg_opus_and_sent_as_a_voice_note(
    client, auth, graph, conversation, storage_dir
):
    recording = media_samples.voice_recording()
    response = send(client, auth, conversation, recording, "blob", "audio/webm;codecs=opus")
    assert response.status_code == 201, response.get_json()
    [upload] = graph.uploads
    assert upload.form["type"] == "audio/ogg"
    assert upload.content.startswith(b"OggS") and b"OpusHead" in upload.content[:100]
    [sent] = graph.sent(POST_MESSAGES)
    assert sent.body["type"] == "audio"
    assert sent.body["audio"] == {"id": upload.media_id, "voice": True}
    # Remuxed, not re-encoded: the very Opus packets of the recording, in an Ogg container.
    assert _opus_packets(upload.content) == _opus_packets(recording)
    message = response.get_json()["message"]
    assert message["media"]["voice"] is True
    stored = row(message["id"])
    assert stored.media_content_type == "audio/ogg; codecs=opus"
    [kept] = stored_files(storage_dir)
    assert kept.read_bytes() == upload.content


def test_a_stereo_recording_is_reencoded_to_mono_opus(client, auth, graph, conversation):
    response = send(client, auth, conversation, media_samples.voice_recording(layout="stereo"), "voice.webm")
    assert response.status_code == 201, response.get_json()
    with av.open(io.BytesIO(graph.uploads[0].content)) as ogg:
        stream = ogg.streams.audio[0]
        assert (ogg.format.name, stream.codec_context.name, stream.codec_context.channels) == ("ogg", "opus", 1)


def _opus_packets(data: bytes) -> list[bytes]:
    with av.open(io.BytesIO(data)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


@pytest.mark.parametrize(
    ("make", "filename", "kind", "mime"),
    [
        (media_samples.png, "captura.png", "image", "image/png"),
        (lambda: media_samples.video("mp4"), "clip.mp4", "video", "video/mp4"),
        (lambda: media_samples.video("mp4", sound=("aac",)), "clip.mp4", "video", "video/mp4"),
        (lambda: media_samples.video("3gp", sound=("aac",)), "clip.3gp", "video", "video/3gpp"),
        (lambda: media_samples.audio("mp3", "libmp3lame", rate=44100), "nota.mp3", "audio", "audio/mpeg"),
        (lambda: media_samples.audio("ipod", "aac", rate=44100), "nota.m4a", "audio", "audio/mp4"),
        (lambda: media_samples.audio("adts", "aac", rate=44100), "nota.aac", "audio", "audio/aac"),
        (lambda: media_samples.audio("amr", "libopencore_amrnb", rate=8000), "nota.amr", "audio", "audio/amr"),
        (lambda: media_samples.audio("ogg", "libopus"), "nota.ogg", "audio", "audio/ogg"),
        (
            media_samples.docx,
            "carta.docx",
            "document",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (lambda: "Hola, ¿qué tal?\n".encode(), "nota.txt", "document", "text/plain"),
        (media_samples.webp, "sticker.webp", "sticker", "image/webp"),
        (lambda: media_samples.webp(animated=True), "sticker.webp", "sticker", "image/webp"),
        (lambda: media_samples.webp(lossless=True), "sticker.webp", "sticker", "image/webp"),
    ],
)
def test_every_accepted_format_goes_out_as_its_whatsapp_type(
    client, auth, graph, conversation, make, filename, kind, mime
):
    content = make()
    response = send(client, auth, conversation, content, filename)
    assert response.status_code == 201, response.get_json()
    [upload] = graph.uploads
    assert (upload.form["type"], upload.content) == (mime, content)
    [sent] = graph.sent(POST_MESSAGES)
    assert sent.body["type"] == kind and sent.body[kind]["id"] == upload.media_id


def test_graph_is_called_only_after_commits_the_upload_then_the_send(client, auth, graph, conversation):
    statements: list[tuple[int, str]] = []  # (Graph requests seen so far, SQL)

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append((len(graph.requests), statement))

    connection = db.session.connection()  # every session of the test runs on it
    event.listen(connection, "before_cursor_execute", record)
    try:
        response = send(client, auth, conversation, JPEG, "a.jpg", key="order-1")
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert response.status_code == 201
    # The inbox version's bump (app/cache.py) follows each commit; it is not part of the order.
    statements = [(seen, sql) for seen, sql in statements if "inbox_version" not in sql]
    before_upload = [sql for seen, sql in statements if seen == 0]
    before_send = [sql for seen, sql in statements if seen == 1]
    assert any("INSERT INTO messages" in sql for sql in before_upload)  # stored pending before Graph
    assert before_upload[-1].startswith("RELEASE SAVEPOINT")  # the service's commit, in tests
    assert any("UPDATE messages SET media_id" in sql for sql in before_send)
    assert before_send[-1].startswith("RELEASE SAVEPOINT")


# --- once per Idempotency-Key ---------------------------------------------------------------------


def test_the_same_idempotency_key_uploads_and_sends_once_and_replays_the_answer(client, auth, graph, conversation):
    first = send(client, auth, conversation, JPEG, "a.jpg", caption="hola", key="img-1")
    again = send(client, auth, conversation, JPEG, "a.jpg", caption="hola", key="img-1")
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert len(graph.uploads) == 1 and len(graph.sent(POST_MESSAGES)) == 1
    assert db.session.execute(select(func.count()).select_from(Message).where(Message.type == "image")).scalar() == 1


def test_a_voice_note_and_a_document_are_sent_once_per_key_too(client, auth, graph, conversation, storage_dir):
    recording = media_samples.voice_recording()
    for _ in range(2):
        assert send(client, auth, conversation, recording, "blob", key="voice-1").status_code == 201
        assert send(client, auth, conversation, PDF, "f.pdf", key="doc-1").status_code == 201
    assert [u.form["type"] for u in graph.uploads] == ["audio/ogg", "application/pdf"]
    assert len(graph.sent(POST_MESSAGES)) == 2
    assert len(stored_files(storage_dir)) == 2


def test_the_same_key_with_another_file_or_caption_is_422(client, auth, graph, conversation):
    assert send(client, auth, conversation, JPEG, "a.jpg", caption="uno", key="k").status_code == 201
    other_caption = send(client, auth, conversation, JPEG, "a.jpg", caption="dos", key="k")
    other_file = send(client, auth, conversation, media_samples.png(), "a.png", caption="uno", key="k")
    assert other_caption.status_code == other_file.status_code == 422
    assert other_file.get_json()["error"] == "idempotency_key_reused"
    assert len(graph.uploads) == 1


# --- refusals: nothing stored, nothing uploaded ------------------------------------------------------


def _oversized(head: bytes, size: int) -> bytes:
    return head + b"\0" * (size - len(head))


OGG_VORBIS = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x1e" + b"\x01vorbis" + b"\x00" * 40
REFUSALS = [
    ("empty", b"", "a.jpg", 400, "empty_file"),
    ("image over 5 MB", _oversized(JPEG, IMAGE_LIMIT + 1), "a.jpg", 413, "file_too_large"),
    (
        "audio over 16 MB",
        _oversized(b"ID3\x04\x00\x00\x00\x00\x00\x00", AUDIO_LIMIT + 1),
        "a.mp3",
        413,
        "file_too_large",
    ),
    (
        "static sticker over 100 KB",
        _oversized(media_samples.webp(), STICKER_LIMIT + 1),
        "s.webp",
        413,
        "file_too_large",
    ),
    (
        "animated sticker over 500 KB",
        _oversized(media_samples.webp(animated=True), ANIMATED_STICKER_LIMIT + 1),
        "s.webp",
        413,
        "file_too_large",
    ),
    ("a PDF named .jpg", PDF, "foto.jpg", 415, "media_type_mismatch"),
    ("a JPEG named .pdf", JPEG, "factura.pdf", 415, "media_type_mismatch"),
    ("unknown bytes", bytes(range(256)) * 4, "x.bin", 415, "unsupported_media_type"),
    ("a zip", b"PK\x03\x04" + b"\x00" * 200, "x.zip", 415, "unsupported_media_type"),
    ("a GIF", b"GIF89a" + b"\x00" * 100, "x.gif", 415, "unsupported_media_type"),
    ("OGG Vorbis", OGG_VORBIS, "x.ogg", 415, "unsupported_media_type"),
    ("WebM video", media_samples.video("webm", "libvpx"), "clip.webm", 415, "unsupported_media_type"),
    ("HTML", b"<!doctype html><script>alert(1)</script>", "page.html", 415, "unsupported_media_type"),
    ("HEVC video", media_samples.video("mp4", "libx265"), "iphone.mp4", 415, "unsupported_media_type"),
    ("MPEG-4 Part 2 3GP", media_samples.video("3gp", "mpeg4"), "old.3gp", 415, "unsupported_media_type"),
    ("MP4 with MP3 sound", media_samples.video("mp4", sound=("libmp3lame",)), "c.mp4", 415, "unsupported_media_type"),
    (
        "MP4 with two sound tracks",
        media_samples.video("mp4", sound=("aac", "aac")),
        "c.mp4",
        415,
        "unsupported_media_type",
    ),
    ("a sticker of 64 x 64", media_samples.webp(size=64), "s.webp", 400, "sticker_dimensions"),
    (
        "a lossless sticker of 100 x 100",
        media_samples.webp(size=100, lossless=True),
        "s.webp",
        400,
        "sticker_dimensions",
    ),
    (
        "an animated sticker of 256 x 256",
        media_samples.webp(animated=True, size=256),
        "s.webp",
        400,
        "sticker_dimensions",
    ),
    (
        "a broken WebM",
        b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\xf2\x81\x04B\xf3\x81\x08B\x82\x84webm" + b"\x00" * 50,
        "v.webm",
        415,
        "unsupported_media_type",
    ),
]


@pytest.mark.parametrize(
    ("content", "filename", "status", "code"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_a_file_whatsapp_refuses_is_refused_before_anything_is_kept(
    client, auth, conversation, nothing_kept, content, filename, status, code
):
    response = send(client, auth, conversation, content, filename, key=f"refused-{uuid.uuid4().hex}")
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["error"] == code
    if code == "file_too_large":
        assert body["limit_bytes"] in (IMAGE_LIMIT, AUDIO_LIMIT, STICKER_LIMIT, ANIMATED_STICKER_LIMIT)
        assert body["size"] == len(content)
        assert "MB" in body["message"] or "KB" in body["message"]
    if code == "sticker_dimensions":
        assert "512 × 512" in body["message"] and (body["width"], body["height"]) in ((64, 64), (100, 100), (256, 256))
    if filename == "iphone.mp4":
        assert "HEVC (H.265)" in body["message"] and body["video_codecs"] == ["hevc"]


@pytest.mark.slow
def test_a_document_over_100_mb_is_413_naming_the_limit(client, auth, conversation, nothing_kept):
    response = send(client, auth, conversation, _oversized(PDF, 100 * MB + 1), "grande.pdf")
    assert response.status_code == 413
    assert response.get_json()["limit_bytes"] == 100 * MB
    assert "100 MB" in response.get_json()["message"]


def test_an_upload_over_the_route_ceiling_is_413_before_it_is_read(client, auth, conversation, nothing_kept):
    response = client.post(
        URL.format(conversation),
        data={"file": (io.BytesIO(JPEG), "a.jpg")},
        headers=auth,
        content_type="multipart/form-data",
        environ_overrides={"CONTENT_LENGTH": str(200 * MB)},
    )
    assert response.status_code == 413
    assert response.get_json()["error"] == "file_too_large"
    assert response.get_json()["limit_bytes"] == 100 * MB


def test_other_bodies_keep_the_4_mb_ceiling(client, auth, conversation):
    response = client.post(
        f"/whatsapp/api/conversaciones/{conversation}/notas", json={"text": "x" * (5 * MB)}, headers=auth
    )
    assert response.status_code == 413
    big_json = client.post(URL.format(conversation), json={"type": "text", "text": "x" * (5 * MB)}, headers=auth)
    assert big_json.status_code == 413


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"caption": "x" * 1025}, "invalid_body"),
        ({"unknown": "1"}, "invalid_body"),
        ({"reply_to": "abc"}, "invalid_body"),
        ({"reply_to": "999999"}, "invalid_body"),
    ],
)
def test_bad_form_fields_are_400(client, auth, conversation, nothing_kept, fields, code):
    response = send(client, auth, conversation, JPEG, "a.jpg", **fields)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == code


def test_a_caption_on_audio_is_400(client, auth, conversation, nothing_kept):
    response = send(client, auth, conversation, media_samples.voice_recording(), "blob", caption="escucha")
    assert response.status_code == 400
    assert response.get_json()["error"] == "caption_not_allowed"


def test_a_form_without_a_file_is_400(client, auth, conversation, nothing_kept):
    response = client.post(
        URL.format(conversation), data={"caption": "hola"}, headers=auth, content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_body"


def test_outside_the_window_it_is_409_and_nothing_is_kept(client, auth, conversation, nothing_kept):
    db.session.execute(
        update(Conversation)
        .where(Conversation.id == conversation)
        .values(last_customer_message_at=datetime.now(UTC) - timedelta(days=2))
    )
    db.session.commit()
    response = send(client, auth, conversation, JPEG, "a.jpg")
    assert response.status_code == 409
    assert response.get_json()["error"] == "window_closed"


def test_an_unknown_conversation_is_404(client, auth, storage_dir, graph):
    response = send(client, auth, 2_000_000, JPEG, "a.jpg")
    assert response.status_code == 404
    assert stored_files(storage_dir) == [] and graph.requests == []


# --- Meta's errors, and retries that reuse our copy -------------------------------------------------


def test_meta_refusing_the_upload_is_stored_failed_with_its_code_and_no_send(client, auth, graph, conversation):
    graph.script(MEDIA_UPLOAD, error(131053))
    response = send(client, auth, conversation, JPEG, "a.jpg")
    assert response.status_code == 502
    body = response.get_json()
    assert body["error"] == "graph_error" and body["graph_error"]["code"] == 131053
    assert body["stored_message"]["status"] == "failed"
    assert body["stored_message"]["error"]["code"] == 131053
    assert graph.sent(POST_MESSAGES) == []
    stored = row(body["message_id"])
    assert (stored.status, stored.error_code, stored.media_id, stored.media_state) == ("failed", 131053, None, "stored")


def test_meta_refusing_the_send_is_stored_failed_with_its_code(client, auth, graph, conversation):
    graph.script(POST_MESSAGES, error(131026))
    response = send(client, auth, conversation, PDF, "f.pdf")
    assert response.status_code == 502
    assert response.get_json()["stored_message"]["error"]["code"] == 131026
    assert row(response.get_json()["message_id"]).media_id == graph.uploads[0].media_id


def test_a_transient_upload_failure_is_retried_with_the_whole_file(client, auth, graph, conversation):
    graph.script(MEDIA_UPLOAD, server_error())
    response = send(client, auth, conversation, JPEG, "a.jpg")
    assert response.status_code == 201, response.get_json()
    assert [u.content for u in graph.uploads] == [JPEG, JPEG]


def test_a_retry_after_a_failed_upload_uploads_our_stored_copy(client, auth, graph, conversation, storage_dir):
    graph.script(MEDIA_UPLOAD, error(131053))
    failed = send(client, auth, conversation, JPEG, "a.jpg", caption="otra vez")
    message_id = failed.get_json()["message_id"]
    retried = client.post(f"{URL.format(conversation)}/{message_id}/reintentar", headers=auth)
    assert retried.status_code == 201, retried.get_json()
    assert [u.content for u in graph.uploads] == [JPEG, JPEG]
    [sent] = graph.sent(POST_MESSAGES)
    assert sent.body["image"] == {"id": graph.uploads[1].media_id, "caption": "otra vez"}
    assert retried.get_json()["message"]["id"] == message_id
    assert len(stored_files(storage_dir)) == 1


def test_a_retry_after_a_failed_send_reuses_the_uploaded_media_id(client, auth, graph, conversation):
    graph.script(POST_MESSAGES, error(131026))
    failed = send(client, auth, conversation, JPEG, "a.jpg")
    message_id = failed.get_json()["message_id"]
    retried = client.post(f"{URL.format(conversation)}/{message_id}/reintentar", headers=auth)
    assert retried.status_code == 201, retried.get_json()
    assert len(graph.uploads) == 1
    assert [s.body["image"]["id"] for s in graph.sent(POST_MESSAGES)] == [graph.uploads[0].media_id] * 2


def test_a_retry_a_month_later_uploads_again(client, auth, graph, conversation):
    graph.script(POST_MESSAGES, error(131026))
    message_id = send(client, auth, conversation, JPEG, "a.jpg").get_json()["message_id"]
    db.session.execute(
        update(Message).where(Message.id == message_id).values(sent_at=datetime.now(UTC) - timedelta(days=31))
    )
    db.session.commit()
    assert client.post(f"{URL.format(conversation)}/{message_id}/reintentar", headers=auth).status_code == 201
    assert len(graph.uploads) == 2


def test_a_media_retry_outside_the_window_is_409(client, auth, graph, conversation):
    graph.script(MEDIA_UPLOAD, error(131053))
    message_id = send(client, auth, conversation, JPEG, "a.jpg").get_json()["message_id"]
    db.session.execute(
        update(Conversation)
        .where(Conversation.id == conversation)
        .values(last_customer_message_at=datetime.now(UTC) - timedelta(days=2))
    )
    db.session.commit()
    response = client.post(f"{URL.format(conversation)}/{message_id}/reintentar", headers=auth)
    assert response.status_code == 409 and response.get_json()["error"] == "window_closed"
    assert len(graph.uploads) == 1


# --- what was sent is served from our storage ----------------------------------------------------------


def test_the_stored_copy_is_served_whole_and_by_range(client, auth, graph, conversation):
    message_id = send(client, auth, conversation, PDF, "f.pdf").get_json()["message"]["id"]
    graph.requests.clear()
    whole = client.get(f"/whatsapp/api/media/{message_id}", headers=auth)
    assert whole.status_code == 200 and whole.data == PDF
    assert whole.headers["Content-Type"] == "application/pdf"
    assert whole.headers["Content-Disposition"].startswith("attachment;")
    part = client.get(f"/whatsapp/api/media/{message_id}", headers={**auth, "Range": "bytes=5-14"})
    assert part.status_code == 206
    assert part.data == PDF[5:15]
    assert part.headers["Content-Range"] == f"bytes 5-14/{len(PDF)}"
    assert graph.requests == []  # our copy, not Graph's


def test_a_file_whose_upload_failed_is_still_served_from_our_copy(client, auth, graph, conversation):
    graph.script(MEDIA_UPLOAD, error(131053))
    message_id = send(client, auth, conversation, JPEG, "a.jpg").get_json()["message_id"]
    response = client.get(f"/whatsapp/api/media/{message_id}", headers={**auth, "Range": "bytes=0-3"})
    assert response.status_code == 206 and response.data == JPEG[:4]


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


def test_with_the_s3_backend_the_file_is_kept_in_the_bucket_sent_and_served(
    app, client, auth, graph, conversation, s3_server, monkeypatch
):
    bucket = f"media-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    for name, value in s3_server.config(bucket, prefix="inbox/").items():
        monkeypatch.setitem(app.config, name, value)
    recording = media_samples.voice_recording()
    response = send(client, auth, conversation, recording, "blob", caption="")
    assert response.status_code == 201, response.get_json()
    message_id = response.get_json()["message"]["id"]
    stored = row(message_id)
    objects = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in objects] == [f"inbox/{stored.media_storage_key}"]
    assert graph.uploads[0].content.startswith(b"OggS")
    part = client.get(f"/whatsapp/api/media/{message_id}", headers={**auth, "Range": "bytes=0-3"})
    assert part.status_code == 206 and part.data == b"OggS"

    # A retry reads the file back from the bucket.
    graph.script(MEDIA_UPLOAD, error(131053))
    failed = send(client, auth, conversation, JPEG, "a.jpg")
    retried = client.post(f"{URL.format(conversation)}/{failed.get_json()['message_id']}/reintentar", headers=auth)
    assert retried.status_code == 201
    assert graph.uploads[-1].content == JPEG


# --- the contract ------------------------------------------------------------------------------


def test_the_openapi_document_describes_the_form_beside_the_json_body(app):
    operation = openapi_document(app)["paths"]["/whatsapp/api/conversaciones/{conversation_id}/mensajes"]["post"]
    content = operation["requestBody"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/SendRequest"}
    form = content["multipart/form-data"]["schema"]
    schemas = openapi_document(app)["components"]["schemas"]
    properties = schemas[form["$ref"].rsplit("/", 1)[-1]]["properties"]
    assert properties["file"]["format"] == "binary"
    assert properties["caption"]["type"] == "string"
    assert {"413", "415"} <= set(operation["responses"])


def test_the_answers_to_files_are_as_documented(client, auth, graph, conversation):
    sent = send(client, auth, conversation, JPEG, "a.jpg", caption="hola", key="doc-k")
    assert assert_documented(sent, THREAD, "post")["message"]["media"]["state"] == "stored"
    replay = send(client, auth, conversation, JPEG, "a.jpg", caption="hola", key="doc-k")
    assert assert_documented(replay, THREAD, "post") == sent.get_json()
    answers = {
        400: send(client, auth, conversation, b"", "a.jpg"),
        413: send(client, auth, conversation, _oversized(JPEG, IMAGE_LIMIT + 1), "a.jpg"),
        415: send(client, auth, conversation, PDF, "a.jpg"),
        422: send(client, auth, conversation, PDF, "a.pdf", key="doc-k"),
    }
    graph.script(MEDIA_UPLOAD, error(131053))
    answers[502] = send(client, auth, conversation, JPEG, "b.jpg")
    for status, response in answers.items():
        assert response.status_code == status, response.get_json()
        assert_documented(response, THREAD, "post")

"""Media download through the fake Graph server: the two steps, headers, failures, auth."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select
from werkzeug.http import parse_options_header
from werkzeug.test import EnvironBuilder

from app.extensions import db
from app.models import Conversation, Message
from tests import fake_graph, meta
from tests.fake_graph import MEDIA_DOWNLOAD, MEDIA_INFO, error, server_error
from tests.test_openapi import assert_documented

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"
PDF = b"%PDF-1.7\n" + b"\x00\x01\x02 factura \xe2\x82\xac\n" * 50 + b"%%EOF\n"


def _url(message_id: int) -> str:
    return f"/whatsapp/api/media/{message_id}"


@pytest.fixture
def receive(post_webhook):  # type: ignore[no-untyped-def]
    """Store an inbound message of `msg_type` with `content`; returns its id."""

    def receive(msg_type: str, content: dict | None = None, **extra: object) -> int:
        message = meta.message(msg_type, content=content, **extra)
        assert post_webhook(meta.delivery(meta.value(messages=[message]))).status_code == 200
        return db.session.execute(select(Message.id).where(Message.wamid == message["id"])).scalar_one()

    return receive


def test_image_is_streamed_inline_with_safe_headers(client, auth, graph, receive):
    graph.media["1001"] = (JPEG, "image/jpeg")
    message_id = receive("image", {"id": "1001", "mime_type": "image/jpeg", "sha256": "x", "caption": "Mirá"})
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 200
    assert response.data == JPEG
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Length"] == str(len(JPEG))
    assert response.headers["Content-Disposition"] == f'inline; filename="whatsapp-image-{message_id}.jpg"'
    assert response.headers["Cache-Control"] == "private, max-age=86400"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert "Set-Cookie" not in response.headers


def test_document_is_an_attachment_with_its_non_ascii_filename(client, auth, graph, receive):
    graph.media["2001"] = (PDF, "application/pdf")
    filename = "Presupuesto año 2026 (señal).pdf"
    message_id = receive("document", {"id": "2001", "mime_type": "application/pdf", "filename": filename})
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 200 and response.data == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition == (
        'attachment; filename="Presupuesto ano 2026 (senal).pdf"; '
        "filename*=UTF-8''Presupuesto%20a%C3%B1o%202026%20%28se%C3%B1al%29.pdf"
    )
    assert disposition.isascii()
    value, options = parse_options_header(disposition)
    assert (value, options["filename"]) == ("attachment", filename)  # what a browser saves


@pytest.mark.parametrize(
    "filename",
    [
        'factura.pdf"\r\nSet-Cookie: session=stolen',
        "../../etc/passwd",
        "a\\b\x00c\x7f.pdf",
        "\u2028evil\u0085.pdf",
        "factura\u202efdp.exe",
    ],
)
def test_a_filename_cannot_inject_headers_or_paths(client, auth, graph, receive, filename):
    graph.media["2002"] = (PDF, "application/pdf")
    message_id = receive("document", {"id": "2002", "mime_type": "application/pdf", "filename": filename})
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=") and disposition.isascii()
    assert not any(c in disposition for c in "\r\n\x00\x7f")
    saved = parse_options_header(disposition)[1]["filename"]
    assert "/" not in saved and "\\" not in saved and '"' not in saved and not saved.startswith(".")
    assert all(c.isprintable() for c in saved), saved


def test_audio_keeps_its_codecs_parameter(client, auth, graph, receive):
    ogg = b"OggS\x00\x02" + bytes(range(200))
    graph.media["3001"] = (ogg, "audio/ogg; codecs=opus")
    message_id = receive("audio", {"id": "3001", "mime_type": "audio/ogg; codecs=opus", "voice": True})
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 200 and response.data == ogg
    assert response.headers["Content-Type"] == "audio/ogg; codecs=opus"
    assert response.headers["Content-Disposition"].startswith("inline; filename=")


def test_large_video_bytes_arrive_exactly_across_many_chunks(client, auth, graph, receive):
    content = random.Random(7).randbytes(1_000_003)  # ~16 chunks of 64 KiB, every byte value
    graph.media["4001"] = (content, "video/mp4")
    message_id = receive("video", {"id": "4001", "mime_type": "video/mp4"})
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 200
    assert response.data == content
    assert response.headers["Content-Length"] == str(len(content))


def test_sticker_is_inline(client, auth, graph, receive):
    graph.media["5001"] = (b"RIFF\x00\x00WEBP", "image/webp")
    message_id = receive("sticker", {"id": "5001", "mime_type": "image/webp", "animated": False})
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 200 and response.data == b"RIFF\x00\x00WEBP"
    assert response.headers["Content-Disposition"].startswith("inline;")


def test_an_image_that_is_not_a_picture_is_downloaded_not_shown(client, auth, graph, receive):
    graph.media["1098"] = (b"<script>alert(1)</script>", "text/html")
    message_id = receive("image", {"id": "1098", "mime_type": "image/jpeg"})
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Content-Security-Policy"] == "sandbox"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_media_info_is_asked_for_on_every_download(client, auth, graph, receive):
    graph.media["1002"] = (JPEG, "image/jpeg")
    message_id = receive("image", {"id": "1002", "mime_type": "image/jpeg"})
    assert client.get(_url(message_id), headers=auth).data == JPEG
    assert client.get(_url(message_id), headers=auth).data == JPEG
    assert [r.path for r in graph.sent(MEDIA_INFO)] == [f"/{fake_graph.API_VERSION}/1002"] * 2
    assert [r.path for r in graph.sent(MEDIA_DOWNLOAD)] == ["/download/1002"] * 2


def test_the_bearer_token_goes_to_both_graph_steps(client, auth, graph, receive):
    graph.media["1003"] = (JPEG, "image/jpeg")
    message_id = receive("image", {"id": "1003", "mime_type": "image/jpeg"})
    assert client.get(_url(message_id), headers=auth).status_code == 200
    [info] = graph.sent(MEDIA_INFO)
    [download] = graph.sent(MEDIA_DOWNLOAD)
    bearer = f"Bearer {fake_graph.ACCESS_TOKEN}"
    assert info.headers["Authorization"] == bearer and download.headers["Authorization"] == bearer
    assert "expires" in download.query  # the URL Graph just gave, as given


def test_the_stored_mime_type_is_used_when_graph_gives_none(client, auth, graph, receive):
    graph.media["2003"] = (PDF, "application/pdf")
    message_id = receive("document", {"id": "2003", "mime_type": "application/pdf", "filename": "f.pdf"})
    url = f"http://127.0.0.1:{graph.port}/download/2003"
    graph.script(MEDIA_INFO, (200, {"url": url, "id": "2003", "messaging_product": "whatsapp"}))
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 200 and response.data == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Disposition"] == 'attachment; filename="f.pdf"'


def test_expired_media_is_410_with_a_clear_message(client, auth, graph, receive):
    message_id = receive("image", {"id": "7001", "mime_type": "image/jpeg"})  # unknown to Graph: code 100
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 410
    assert response.json == {
        "error": "media_expired",
        "message": "WhatsApp keeps media for 7 days; this file is no longer available.",
    }
    assert len(graph.sent(MEDIA_INFO)) == 1 and graph.sent(MEDIA_DOWNLOAD) == []  # code 100 is not retried


def test_media_gone_between_the_two_steps_is_410_too(client, auth, graph, receive):
    graph.media["1004"] = (JPEG, "image/jpeg")
    message_id = receive("image", {"id": "1004", "mime_type": "image/jpeg"})
    graph.script(MEDIA_DOWNLOAD, error(100))
    assert client.get(_url(message_id), headers=auth).status_code == 410


def test_expired_token_is_502_with_metas_error(client, auth, graph, receive):
    graph.media["1005"] = (JPEG, "image/jpeg")
    message_id = receive("image", {"id": "1005", "mime_type": "image/jpeg"})
    graph.script(MEDIA_INFO, error(190))
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 502
    body = response.json
    assert body["error"] == "graph_error" and body["message"].startswith("WhatsApp did not hand over the file")
    assert body["graph_error"]["code"] == 190 and body["graph_error"]["fbtrace_id"] == "Afake190"
    assert response.headers["Cache-Control"] == "no-store"
    assert graph.sent(MEDIA_DOWNLOAD) == []


def test_persistent_5xx_is_502_after_bounded_retries(client, auth, graph, receive):
    graph.media["1006"] = (JPEG, "image/jpeg")
    message_id = receive("image", {"id": "1006", "mime_type": "image/jpeg"})
    graph.script(MEDIA_INFO, *[server_error()] * 5)
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 502 and response.json["graph_error"]["code"] == 2
    assert len(graph.sent(MEDIA_INFO)) == 3  # the first try and GRAPH_MAX_RETRIES (2)


def test_a_transient_5xx_on_the_download_is_retried(client, auth, graph, receive):
    graph.media["1007"] = (JPEG, "image/jpeg")
    message_id = receive("image", {"id": "1007", "mime_type": "image/jpeg"})
    graph.script(MEDIA_DOWNLOAD, server_error(503))
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 200 and response.data == JPEG
    assert len(graph.sent(MEDIA_DOWNLOAD)) == 2


def test_graph_without_a_download_url_is_502(client, auth, graph, receive):
    message_id = receive("image", {"id": "1008", "mime_type": "image/jpeg"})
    graph.script(MEDIA_INFO, (200, {"id": "1008", "mime_type": "image/jpeg"}))
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 502 and response.json["error"] == "graph_error"


def test_a_message_without_media_is_404(client, auth, graph, receive):
    message_id = receive("text")
    response = client.get(_url(message_id), headers=auth)
    assert response.status_code == 404
    assert response.json == {"error": "not_found", "message": "This message has no media."}
    assert graph.requests == []


def test_a_revoked_media_message_is_404(client, auth, graph, receive, post_webhook):
    graph.media["1009"] = (JPEG, "image/jpeg")
    message_id = receive("image", {"id": "1009", "mime_type": "image/jpeg"})
    wamid = db.session.get(Message, message_id).wamid
    receive("revoke", {"original_message_id": wamid})
    assert client.get(_url(message_id), headers=auth).status_code == 404
    assert graph.requests == []


@pytest.mark.parametrize("message_id", ["999999", str(2**63 - 1), str(2**63), str(10**30)])
def test_an_unknown_message_is_404_json(client, auth, graph, message_id):
    response = client.get(f"/whatsapp/api/media/{message_id}", headers=auth)
    assert response.status_code == 404 and response.json["error"] == "not_found"
    assert graph.requests == []


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}])
def test_credentials_are_required(client, graph, receive, headers):
    graph.media["1010"] = (JPEG, "image/jpeg")
    message_id = receive("image", {"id": "1010", "mime_type": "image/jpeg"})
    response = client.get(_url(message_id), headers=headers)
    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert graph.requests == []


def test_outbound_media_is_served_the_same_way(client, auth, agent, graph, receive):
    receive("text")
    conversation_id = db.session.execute(select(Conversation.id)).scalar_one()
    graph.media["6001"] = (JPEG, "image/jpeg")
    sent = Message(
        conversation_id=conversation_id,
        direction="out",
        sender="agent",
        agent_id=agent.id,
        type="image",
        media_id="6001",
        media_mime_type="image/jpeg",
        sent_at=datetime.now(UTC),
        status="accepted",
    )
    db.session.add(sent)
    db.session.commit()
    response = client.get(_url(sent.id), headers=auth)
    assert response.status_code == 200 and response.data == JPEG


def test_the_transaction_ends_before_graph_is_called_and_no_sql_runs_while_streaming(app, auth, graph, receive):
    content = random.Random(8).randbytes(300_000)
    graph.media["4002"] = (content, "video/mp4")
    message_id = receive("video", {"id": "4002", "mime_type": "video/mp4"})
    statements: list[tuple[int, str]] = []  # (Graph requests seen so far, SQL)

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append((len(graph.requests), statement))

    connection = db.session.connection()  # every session of the test runs on it
    event.listen(connection, "before_cursor_execute", record)
    started: list[str] = []
    try:
        # Straight WSGI, so nothing of the body is read before we say so.
        environ = EnvironBuilder(path=_url(message_id), headers=auth).get_environ()
        body = app(environ, lambda status, headers, exc_info=None: started.append(status))
        assert started == ["200 OK"]
        before_streaming = len(statements)
        streamed = b"".join(body)
        getattr(body, "close", lambda: None)()
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert streamed == content
    assert len(statements) == before_streaming, statements[before_streaming:]  # none while the bytes flow
    before_graph = [sql for seen, sql in statements if seen == 0]
    assert before_graph and before_graph[-1].startswith("RELEASE SAVEPOINT")  # the service's commit, in tests
    assert not any("messages" in sql for seen, sql in statements if seen > 0)


def test_answers_are_as_documented(client, auth, graph, receive):
    documented = "/whatsapp/api/media/{message_id}"
    graph.media["1099"] = (JPEG, "image/jpeg")
    graph.media["2099"] = (PDF, "application/pdf")
    graph.media["3099"] = (b"OggS", "audio/ogg; codecs=opus")
    graph.media["4099"] = (b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    graph.media["8099"] = (b"hola", "text/plain")
    ok = [
        receive("image", {"id": "1099", "mime_type": "image/jpeg"}),
        receive("document", {"id": "2099", "mime_type": "application/pdf", "filename": "señal.pdf"}),
        receive("audio", {"id": "3099", "mime_type": "audio/ogg; codecs=opus", "voice": True}),
        receive("video", {"id": "4099", "mime_type": "video/mp4"}),
        receive("document", {"id": "8099", "mime_type": "text/plain", "filename": "notas.txt"}),
    ]
    for message_id in ok:
        response = client.get(_url(message_id), headers=auth)
        assert response.status_code == 200
        assert_documented(response, documented)
    expired = receive("image", {"id": "7099", "mime_type": "image/jpeg"})
    graph.script(MEDIA_INFO, error(190))
    failures = {
        502: client.get(_url(ok[0]), headers=auth),
        410: client.get(_url(expired), headers=auth),
        404: client.get(_url(receive("text")), headers=auth),
        401: client.get(_url(ok[0])),
    }
    for status, response in failures.items():
        assert response.status_code == status
        assert_documented(response, documented)
    assert assert_documented(client.get("/whatsapp/api/media/999999", headers=auth), documented)["error"] == "not_found"

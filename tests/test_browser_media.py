"""Files and voice notes from the composer, in real headless Chromium (issue 11's outbound media).

The app runs under gunicorn against the fake Graph server, as in tests/test_browser.py (whose
helpers this module reuses), with its own media directory and one conversation whose 24-hour
window is open. Chromium gets a fake microphone (`--use-fake-device-for-media-stream`, a beeping
tone) that it may use without asking (`--use-fake-ui-for-media-stream`). Screenshots of the
preview, the recording and the thread with media go to tests/screenshots/ (media-*.png).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests import fake_graph, meta
from tests.browser import launched_chromium, png, require_chromium
from tests.fake_graph import POST_MESSAGES, delay, error
from tests.live import Gunicorn
from tests.test_browser import World, _expect, _login, _new_page, _seed_accounts, _shot, _truncate

pytestmark = [pytest.mark.live, pytest.mark.browser]

FAKE_MEDIA_ARGS = (
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
)
ROSA = ("5491155550201", "Rosa Medina")
# A small but real PDF (one empty page): what an agent sends as an invoice.
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
# A Windows program renamed to look like a photo: the server judges by content (415).
EXE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + b"\x00" * 240
    + b"This program cannot be run in DOS mode."
)


@pytest.fixture(scope="module")
def world(app, database_url: str, graph_server: fake_graph.FakeGraph, tmp_path_factory) -> Iterator[World]:
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
        "MEDIA_STORAGE_PATH": str(tmp_path_factory.mktemp("media")),
        "GRAPH_READ_TIMEOUT": "3",
        "GRAPH_RETRY_BACKOFF": "0.01",
        "LOG_LEVEL": "WARNING",
    }
    try:
        with Gunicorn(database_url, workers=2, threads=4, env=env) as server:
            world = World(server=server, database_url=database_url, graph=graph_server)
            world.say(ROSA, "Hola, ¿me mandan la factura y una foto del pedido?")
            world.conversations["rosa"] = world.scalar(
                "SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = :w", w=ROSA[0]
            )
            yield world
    finally:
        graph_server.reset()
        _truncate(database_url)


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[Any]:
    with launched_chromium(FAKE_MEDIA_ARGS) as chromium:
        yield chromium


def _open_rosa(page: Any, world: World) -> None:
    cid = world.conversations["rosa"]
    page.goto(f"{world.base}/?c={cid}")
    page.locator("#composer").wait_for()


def _outbound(world: World, kind: str) -> list[dict[str, Any]]:
    """The sends by media id the fake Graph received, of one type."""
    return [r.body for r in world.graph.sent(POST_MESSAGES) if isinstance(r.body, dict) and r.body.get("type") == kind]


def _uploads(world: World) -> list[fake_graph.Upload]:
    """The files the fake Graph received by `POST /{phone-number-id}/media`."""
    return list(world.graph.uploads)


def _count_messages(world: World) -> int:
    return world.scalar("SELECT count(*) FROM messages WHERE conversation_id = :c", c=world.conversations["rosa"])


def test_an_image_and_a_pdf_are_previewed_uploaded_and_shown_in_the_thread(world, browser):
    page = _new_page(world, browser)
    _login(page, world)
    _open_rosa(page, world)
    assert page.locator("#attach-btn").is_visible()

    # The image: a thumbnail from an object URL, its name and size, a caption.
    page.set_input_files(
        "#attach-input", files=[{"name": "pedido.png", "mimeType": "image/png", "buffer": png(640, 420)}]
    )
    panel = page.locator("#attachment")
    panel.wait_for()
    thumb = panel.locator(".attachment-preview img")
    assert thumb.get_attribute("src").startswith("blob:")
    _expect(lambda: thumb.evaluate("img => img.complete && img.naturalWidth") == 640, 5, "thumbnail drawn")
    assert "pedido.png" in panel.locator(".attachment-name").inner_text()
    assert "KB" in panel.locator(".attachment-size").inner_text()
    assert page.locator("label[for=attachment-caption]").inner_text() == "Pie de foto (opcional)"
    assert page.locator("#message-text").is_hidden()  # the preview takes the text box's place
    page.locator("#attachment-caption").fill("Así quedó el pedido")
    _shot(page, "media-01-preview-image")

    # Sent while Graph is slow: the progress bar fills and a pending bubble stands in the thread.
    world.graph.reset()
    world.graph.script(POST_MESSAGES, delay(1.5))
    before = _count_messages(world)
    page.locator("#attachment-send").click()
    stand_in = page.locator("li.msg-upload")
    stand_in.wait_for(timeout=2000)
    assert stand_in.locator(".ticks-pending").count() == 1
    _expect(lambda: page.locator("#attachment-progress-bar").evaluate("p => p.value") == 100, 5, "upload progress")
    assert "100" in page.locator("#attachment-progress-text").inner_text()
    _shot(page, "media-02-uploading")
    sent = page.locator("li.msg.msg-out .media-image img")
    sent.wait_for(timeout=8000)
    _expect(lambda: stand_in.count() == 0, 5, "the stand-in replaced by the real message")
    _expect(lambda: sent.evaluate("img => img.complete && img.naturalWidth") == 640, 5, "sent image from our storage")
    assert page.locator("#attachment").is_hidden() and page.locator("#message-text").is_visible()
    bubble = page.locator("li.msg.msg-out").filter(has=page.locator(".media-image"))
    assert "Así quedó el pedido" in bubble.locator(".text").inner_text()
    assert _count_messages(world) == before + 1
    (upload,) = _uploads(world)  # one upload to Graph, then one send by its id
    assert upload.content == png(640, 420) and upload.form.get("type") == "image/png"
    (image,) = _outbound(world, "image")
    assert image["image"]["id"] == upload.media_id and image["image"].get("caption") == "Así quedó el pedido"

    # The PDF: a file chip; its "caption" is the file name the customer sees.
    page.set_input_files(
        "#attach-input", files=[{"name": "factura-0107.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    panel.wait_for()
    assert panel.locator(".attachment-icon").is_visible()
    assert page.locator("label[for=attachment-caption]").inner_text() == "Nombre del archivo que ve el cliente"
    assert page.locator("#attachment-caption").input_value() == "factura-0107.pdf"
    page.locator("#attachment-caption").fill("Factura 0107.pdf")
    _shot(page, "media-03-preview-document")
    page.locator("#attachment-caption").press("Enter")
    chip = page.locator("li.msg.msg-out a.document")
    chip.wait_for(timeout=8000)
    assert "Factura 0107.pdf" in chip.inner_text()
    href = chip.get_attribute("href")
    assert re.search(r"/whatsapp/api/media/\d+$", href)
    assert page.evaluate("url => fetch(url).then(r => r.arrayBuffer()).then(b => b.byteLength)", href) == len(PDF)
    assert len(_uploads(world)) == 2 and _uploads(world)[-1].content == PDF
    (document,) = _outbound(world, "document")
    assert document["document"]["id"] == _uploads(world)[-1].media_id
    assert document["document"].get("filename") == "Factura 0107.pdf"
    _expect(lambda: page.locator("li.msg.msg-out .ticks[data-status=accepted]").count() >= 2, 5, "ticks on both")
    _shot(page, "media-04-thread-desktop")
    page.context.close()


def test_a_voice_note_is_recorded_previewed_and_sent_as_audio(world, browser):
    page = _new_page(world, browser)
    _login(page, world)
    _open_rosa(page, world)
    record = page.locator("#record-btn")
    assert record.is_visible()
    record.click()
    recorder = page.locator("#recorder")
    recorder.wait_for()
    page.wait_for_timeout(2200)
    assert page.locator("#record-time").inner_text() in ("0:02", "0:03")
    _shot(page, "media-05-recording")
    page.locator("#record-stop").click()
    panel = page.locator("#attachment")
    panel.wait_for()
    audio = panel.locator(".attachment-preview audio")
    assert audio.get_attribute("src").startswith("blob:")
    _expect(lambda: (audio.evaluate("a => a.duration") or 0) > 0, 5, "the recording plays back")
    assert "Nota de voz" in panel.locator(".attachment-name").inner_text()
    assert page.locator("#attachment-caption-field").is_hidden()  # WhatsApp's audio has no caption
    _shot(page, "media-06-voice-preview")
    world.graph.reset()
    page.locator("#attachment-send").click()
    sent = page.locator("li.msg.msg-out audio.media-audio")
    sent.wait_for(timeout=8000)
    (upload,) = _uploads(world)
    assert upload.content.startswith(b"OggS")  # converted from Chromium's webm/opus
    (voice,) = _outbound(world, "audio")
    assert voice["audio"]["id"] == upload.media_id
    mime = world.scalar(
        "SELECT media_mime_type FROM messages WHERE conversation_id = :c AND type = 'audio' ORDER BY id DESC LIMIT 1",
        c=world.conversations["rosa"],
    )
    assert mime and mime.startswith("audio/ogg")
    page.context.close()


def test_a_refused_file_shows_the_servers_reason_and_leaves_nothing_in_the_thread(world, browser):
    page = _new_page(world, browser)
    _login(page, world)
    _open_rosa(page, world)
    before = _count_messages(world)
    shown = page.locator("li.msg").count()
    world.graph.reset()
    page.set_input_files("#attach-input", files=[{"name": "foto.jpg", "mimeType": "image/jpeg", "buffer": EXE}])
    page.locator("#attachment").wait_for()
    page.locator("#attachment-send").click()
    error = page.locator("#composer-error")
    error.wait_for()
    assert error.inner_text().startswith("No se envió el archivo:")
    _shot(page, "media-07-refused")
    assert page.locator("li.msg-upload").count() == 0
    page.wait_for_timeout(2500)  # a refresh later: still nothing new
    assert _count_messages(world) == before
    assert page.locator("li.msg").count() == shown
    assert _uploads(world) == [] and _outbound(world, "image") == []
    # The client's own check answers at once for what WhatsApp never takes.
    page.locator("#attachment-remove").click()
    page.set_input_files(
        "#attach-input", files=[{"name": "anim.gif", "mimeType": "image/gif", "buffer": b"GIF89a" + b"\x00" * 20}]
    )
    assert "JPEG o PNG" in error.inner_text()
    assert page.locator("#attachment").is_hidden()
    page.context.close()


def test_a_photo_whatsapp_refuses_is_kept_failed_with_metas_reason_and_retried(world, browser):
    page = _new_page(world, browser)
    _login(page, world)
    _open_rosa(page, world)
    world.graph.reset()
    world.graph.script(POST_MESSAGES, error(131026))
    page.set_input_files(
        "#attach-input", files=[{"name": "reintento.png", "mimeType": "image/png", "buffer": png(300, 200)}]
    )
    page.locator("#attachment").wait_for()
    page.locator("#attachment-send").click()
    page.locator("li.msg.msg-out").filter(has=page.locator(".failure")).last.wait_for(timeout=8000)
    failed = page.locator(
        "#" + page.locator("li.msg.msg-out").filter(has=page.locator(".failure")).last.get_attribute("id")
    )
    assert "Message undeliverable" in failed.locator(".failure").inner_text()
    assert failed.locator(".ticks").get_attribute("data-status") == "failed"
    assert failed.locator(".media-image img").count() == 1  # what was sent, from our storage
    assert page.locator("#attachment").is_hidden()  # stored: the composer is free again
    _shot(page, "media-14-failed-photo")
    failed.get_by_role("button", name="Reintentar").click()
    _expect(lambda: failed.locator(".failure").count() == 0, 8, "retried")
    # Pushed news may show the retry as pending first (its own commit), then accepted.
    _expect(lambda: failed.locator(".ticks").get_attribute("data-status") == "accepted", 8, "accepted")
    sends = _outbound(world, "image")
    assert len(sends) == 2 and sends[0]["image"]["id"] == sends[1]["image"]["id"]  # the same upload, sent again
    page.context.close()


DRAG_FILE = """([selector, type, name]) => {
    const file = new File([new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10])], name, { type: "image/png" });
    const data = new DataTransfer();
    data.items.add(file);
    const target = document.querySelector(selector);
    if (type === "paste") {
        target.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
    } else {
        target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
    }
}"""


def test_a_file_dropped_on_the_thread_or_an_image_pasted_is_attached(world, browser):
    page = _new_page(world, browser)
    _login(page, world)
    _open_rosa(page, world)
    page.evaluate(DRAG_FILE, ["#messages", "dragenter", "arrastrada.png"])
    drop = page.locator("#drop-target")
    assert drop.is_visible()
    assert "Suelta el archivo para adjuntarlo" in drop.inner_text()
    _shot(page, "media-13-drop-target")
    page.evaluate(DRAG_FILE, ["#drop-target", "drop", "arrastrada.png"])
    assert drop.is_hidden()
    page.locator("#attachment").wait_for()
    assert page.locator("#attachment-name").inner_text() == "arrastrada.png"
    page.locator("#attachment-remove").click()
    assert page.locator("#attachment").is_hidden()
    page.evaluate(DRAG_FILE, ["#message-text", "paste", "image.png"])
    page.locator("#attachment").wait_for()
    assert page.locator("#attachment-name").inner_text() == "image.png"
    # A private note takes no file: the agent is told so.
    page.locator("#attachment-remove").click()
    page.locator("#tab-note").click()
    page.evaluate(DRAG_FILE, ["#drop-target", "drop", "nota.png"])
    assert "Las notas privadas son solo texto" in page.locator("#composer-error").inner_text()
    assert page.locator("#attachment").is_hidden()
    page.context.close()


def test_the_phone_layout_carries_attachments_and_recording(world, browser):
    page = _new_page(world, browser, width=375, height=740)
    _login(page, world)
    _open_rosa(page, world)
    for control in ("#attach-btn", "#record-btn", "#composer button[type=submit].send-btn"):
        box = page.locator(control).bounding_box()
        assert box and box["y"] > 600 and box["x"] + box["width"] <= 375, control  # in the thumb's reach
    _shot(page, "media-08-phone-thread")
    page.set_input_files(
        "#attach-input",
        files=[
            {"name": "un-nombre-de-archivo-muy-largo-del-pedido.png", "mimeType": "image/png", "buffer": png(800, 600)}
        ],
    )
    page.locator("#attachment").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box = page.locator("#attachment").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375
    _shot(page, "media-09-phone-preview")
    page.locator("#attachment-remove").click()
    page.locator("#record-btn").click()
    page.locator("#recorder").wait_for()
    page.wait_for_timeout(1200)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    _shot(page, "media-10-phone-recording")
    page.locator("#record-cancel").click()
    assert page.locator("#recorder").is_hidden()
    page.wait_for_timeout(300)  # the recorder's last data arrives: a discarded note stays discarded
    assert page.locator("#attachment").is_hidden() and page.locator("#message-text").is_visible()
    page.context.close()


def test_the_composer_in_english_and_no_csp_errors(world, browser):
    page = _new_page(world, browser, locale="en-US")
    _login(page, world)
    _open_rosa(page, world)
    assert page.get_by_role("button", name="Attach a photo, video, audio or document").is_visible()
    assert page.get_by_role("button", name="Record a voice note").is_visible()
    page.set_input_files(
        "#attach-input",
        files=[{"name": "big.png", "mimeType": "image/png", "buffer": b"\x89PNG" + b"\x00" * (6 * 1024 * 1024)}],
    )
    assert "WhatsApp takes photos up to 5 MB; this one is 6 MB." in page.locator("#composer-error").inner_text()
    _shot(page, "media-11-en-limit")
    _expect(lambda: page.locator("li.msg").count() >= 1, 5, "thread")
    _shot(page, "media-12-thread-en")
    assert world.console == []
    page.context.close()

"""The Graph token goes only where it belongs (issue 10, item 4).

A media id from a webhook is put into a Graph URL, and the URL Graph answers is then fetched:
an id such as `../../me/accounts?fields=access_token#` would make us call another Graph path
with the system-user token, and a `url` on any host would receive that token. Media ids must
be Meta's digits (a stored bad one is never sent to Graph), the token is attached per request
and only to the Graph host and to https URLs on `WHATSAPP_MEDIA_HOSTS`; any other URL is not
followed (502), and what is logged carries no token.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Message
from app.whatsapp.graph_client import GraphClient, GraphError, is_media_id
from config import ConfigError, load_config
from tests import fake_graph, meta
from tests.fake_graph import MEDIA_DOWNLOAD, MEDIA_INFO, TEMPLATES

JPEG = b"\xff\xd8\xff\xe0 not really a picture \xff\xd9"
TOKEN = fake_graph.ACCESS_TOKEN
PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "x" * 64, "DATABASE_URL": "postgres://h/db"}


class Elsewhere:
    """A server on another host name (`localhost`, not the allowed `127.0.0.1`) that records
    what reaches it; `redirect_to` makes it answer 302 there."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.redirect_to: str | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.seen.append(dict(self.headers.items()))
                if outer.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", outer.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(JPEG)))
                self.end_headers()
                self.wfile.write(JPEG)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def elsewhere() -> Iterator[Elsewhere]:
    server = Elsewhere()
    yield server
    server.close()


def _receive(post_webhook, msg_type: str, content: dict) -> int:  # type: ignore[no-untyped-def]
    message = meta.message(msg_type, content=content)
    assert post_webhook(meta.delivery(meta.value(messages=[message]))).status_code == 200
    return db.session.execute(select(Message.id).where(Message.wamid == message["id"])).scalar_one()


def _media(client, auth, message_id: int):  # type: ignore[no-untyped-def]
    return client.get(f"/whatsapp/api/media/{message_id}", headers=auth)


# --- media ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "media_id",
    [
        "../../me/accounts?fields=access_token#",
        "../me",
        "123/../../me",
        "123?fields=access_token",
        "123#",
        "1 2",
        "١٢٣",  # digits, but not ASCII ones
        "",
        "9" * 65,
    ],
)
def test_a_stored_media_id_that_is_not_metas_digits_never_reaches_graph(client, auth, graph, post_webhook, media_id):
    message_id = _receive(post_webhook, "image", {"id": media_id, "mime_type": "image/jpeg"})
    response = _media(client, auth, message_id)
    assert response.status_code == 404 and response.json["error"] == "not_found"
    assert graph.requests == []


def test_the_graph_client_refuses_a_media_id_before_building_a_url(graph):
    client = GraphClient(graph.base_url, TOKEN)
    with pytest.raises(GraphError, match="media id"):
        client.media_info("../../me/accounts?fields=access_token#")
    assert graph.requests == []
    assert is_media_id("1234567890123456") and not is_media_id("12a") and not is_media_id(12)


def test_metas_media_ids_are_digits_and_still_download(client, auth, graph, post_webhook):
    graph.media["1234567890123456"] = (JPEG, "image/jpeg")
    message_id = _receive(post_webhook, "image", {"id": "1234567890123456", "mime_type": "image/jpeg"})
    response = _media(client, auth, message_id)
    assert response.status_code == 200 and response.data == JPEG


# --- where the token goes --------------------------------------------------------------------


def test_the_token_is_not_a_session_header(graph):
    client = GraphClient(graph.base_url, TOKEN)
    assert "Authorization" not in client.session.headers


def test_a_download_url_on_another_host_is_not_followed_and_gets_no_token(
    client, auth, graph, post_webhook, elsewhere, caplog
):
    message_id = _receive(post_webhook, "image", {"id": "111", "mime_type": "image/jpeg"})
    stolen = f"http://localhost:{elsewhere.port}/steal?mid=111"
    graph.script(MEDIA_INFO, (200, {"url": stolen, "id": "111", "mime_type": "image/jpeg"}))
    with caplog.at_level(logging.INFO):
        response = _media(client, auth, message_id)
    assert response.status_code == 502
    assert response.json["error"] == "graph_error"
    assert "not on WHATSAPP_MEDIA_HOSTS" in response.json["message"]
    assert elsewhere.seen == [] and graph.sent(MEDIA_DOWNLOAD) == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "localhost" in logged and TOKEN not in logged and TOKEN not in response.text


def test_a_media_host_over_plain_http_is_refused_when_only_https_is_allowed(graph):
    client = GraphClient(graph.base_url, TOKEN, media_hosts=(f"127.0.0.1:{graph.port}",))
    url = f"http://127.0.0.1:{graph.port}/download/222"
    with pytest.raises(GraphError, match="WHATSAPP_MEDIA_HOSTS"):
        client.download(url)
    assert graph.requests == []


def test_a_download_url_on_the_graph_host_is_not_a_media_url(graph):
    """Otherwise a Graph answer could send us, with the token, to any other Graph path."""
    client = GraphClient(graph.base_url, TOKEN, media_hosts=("lookaside.fbsbx.com",))
    with pytest.raises(GraphError, match="WHATSAPP_MEDIA_HOSTS"):
        client.download(f"{graph.base_url}/me/accounts?fields=access_token")
    assert graph.requests == []


def test_a_redirect_away_from_the_media_hosts_is_not_followed(graph, elsewhere):
    graph.media["333"] = (JPEG, "image/jpeg")
    elsewhere.redirect_to = f"http://localhost:{graph.port}/download/333"
    client = GraphClient(graph.base_url, TOKEN, media_hosts=(f"http://127.0.0.1:{elsewhere.port}",))
    with pytest.raises(GraphError, match="WHATSAPP_MEDIA_HOSTS"):
        client.download(f"http://127.0.0.1:{elsewhere.port}/download/333")
    assert [h.get("Authorization") for h in elsewhere.seen] == [f"Bearer {TOKEN}"]
    assert graph.requests == []  # localhost is not 127.0.0.1: the redirect is not followed


def test_a_redirect_within_the_media_hosts_is_followed_with_the_token(graph, elsewhere):
    graph.media["444"] = (JPEG, "image/jpeg")
    elsewhere.redirect_to = f"http://127.0.0.1:{graph.port}/download/444"
    client = GraphClient(graph.base_url, TOKEN, media_hosts=("http://127.0.0.1",))
    response, chunks = client.download(f"http://127.0.0.1:{elsewhere.port}/first")
    assert b"".join(chunks) == JPEG
    response.close()
    [download] = graph.sent(MEDIA_DOWNLOAD)
    assert download.headers["Authorization"] == f"Bearer {TOKEN}"


def test_template_paging_that_leaves_the_graph_host_is_not_followed(graph, elsewhere):
    graph.script(
        TEMPLATES,
        (200, {"data": [{"id": "1", "name": "a"}], "paging": {"next": f"http://localhost:{elsewhere.port}/next"}}),
    )
    client = GraphClient(graph.base_url, TOKEN)
    with pytest.raises(GraphError, match="Graph host"):
        client.message_templates(meta.WABA_ID)
    assert elsewhere.seen == []


def test_graph_paths_cannot_be_changed_by_an_id(graph):
    client = GraphClient(graph.base_url, TOKEN)
    with pytest.raises(GraphError):
        client.message_templates("..")
    client.mark_read("123/../../me", "wamid.X")
    assert [r.path for r in graph.sent("mark_read")] == [f"/{fake_graph.API_VERSION}/123%2F..%2F..%2Fme/messages"]


# --- the setting -----------------------------------------------------------------------------


def test_media_hosts_default_to_metas_https_host_and_tests_can_allow_the_fake_server():
    assert load_config({})["WHATSAPP_MEDIA_HOSTS"] == ("https://lookaside.fbsbx.com",)
    assert load_config(PRODUCTION)["WHATSAPP_MEDIA_HOSTS"] == ("https://lookaside.fbsbx.com",)
    configured = load_config({"WHATSAPP_MEDIA_HOSTS": " Lookaside.fbsbx.com, cdn.example.com:8443 ,http://127.0.0.1"})
    assert configured["WHATSAPP_MEDIA_HOSTS"] == (
        "https://lookaside.fbsbx.com",
        "https://cdn.example.com:8443",
        "http://127.0.0.1",
    )


@pytest.mark.parametrize("value", ["ftp://lookaside.fbsbx.com", "https://h/path", "https://u@h", "h:port", ","])
def test_a_malformed_media_host_stops_start_up(value):
    with pytest.raises(ConfigError, match="WHATSAPP_MEDIA_HOSTS"):
        load_config({"WHATSAPP_MEDIA_HOSTS": value})


def test_production_refuses_a_plain_http_media_host():
    with pytest.raises(ConfigError, match="WHATSAPP_MEDIA_HOSTS"):
        load_config({**PRODUCTION, "WHATSAPP_MEDIA_HOSTS": "http://127.0.0.1"})

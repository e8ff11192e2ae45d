"""A real HTTP server on 127.0.0.1 standing in for Meta's Graph API.

It answers with Meta's documented shapes and records every request it receives. Tests
script its answers: `graph.script(POST_MESSAGES, error(131047))`, `graph.script(..., TIMEOUT)`.
Uploads (`POST /{phone-number-id}/media`, multipart) answer a new media id and are kept in
`uploads` (the bytes, type and name received); the uploaded file can then be downloaded like
any media (`GET /{media-id}`).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from werkzeug.formparser import MultiPartParser
from werkzeug.http import parse_options_header

ACCESS_TOKEN = "test-graph-token"
API_VERSION = "v25.0"

# Keys for scripting: which kind of request an answer is for.
POST_MESSAGES = "messages"  # sends (and read receipts: see MARK_READ)
MARK_READ = "mark_read"
MEDIA_INFO = "media_info"
MEDIA_DOWNLOAD = "media_download"
MEDIA_UPLOAD = "media_upload"
TEMPLATES = "templates"

TIMEOUT = "timeout"  # sleep longer than the client's read timeout, then answer 200
DISCONNECT = "disconnect"  # close the connection without answering


def delay(seconds: float) -> tuple[str, float]:
    """Answer success, but only after `seconds` (a slow Graph)."""
    return ("delay", seconds)


ERROR_TITLES = {
    131047: (
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    ),
    131026: ("Message undeliverable", "Unable to deliver message."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    190: ("Error validating access token: Session has expired", None),
    100: ("Invalid parameter", "Unsupported get request."),
    131000: ("Something went wrong", "Something went wrong"),
}


def error(code: int, http_status: int | None = None) -> tuple[int, dict[str, Any]]:
    title, details = ERROR_TITLES.get(code, (f"Error {code}", None))
    body: dict[str, Any] = {
        "error": {"message": title, "type": "OAuthException", "code": code, "fbtrace_id": f"Afake{code}"}
    }
    if details:
        body["error"]["error_data"] = {"messaging_product": "whatsapp", "details": details}
    status = http_status or (401 if code == 190 else 404 if code == 100 else 400)
    return status, body


def server_error(status: int = 500) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": "An unexpected error has occurred.", "code": 2, "fbtrace_id": "Afake500"}}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Upload:
    """One file received by `POST /{phone-number-id}/media`."""

    phone_number_id: str
    media_id: str | None  # None when the upload was answered with a scripted error
    form: dict[str, str]  # messaging_product, type
    filename: str | None
    content_type: str | None
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class FakeGraph:
    timeout_seconds: float = 2.0
    requests: list[Recorded] = field(default_factory=list)
    scripts: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    templates: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    # When set, templates are served in pages of this size, each but the last with `paging.next`.
    templates_page_size: int | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/{API_VERSION}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # --- test API ------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.scripts.clear()
            self.media.clear()
            self.templates.clear()
            self.uploads.clear()
            self.templates_page_size = None

    def script(self, kind: str, *answers: Any) -> None:
        """Queue answers for the next requests of `kind`; afterwards it answers success again."""
        with self._lock:
            self.scripts[kind].extend(answers)

    def sent(self, kind: str = POST_MESSAGES) -> list[Recorded]:
        return [r for r in self.requests if self._kind(r.method, r.path, r.body) == kind]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- serving -------------------------------------------------------------------------

    def _kind(self, method: str, path: str, body: Any) -> str:
        parts = [p for p in path.split("/") if p]
        if parts and parts[0] == "download":
            return MEDIA_DOWNLOAD
        if method == "POST" and parts[-1:] == ["media"]:
            return MEDIA_UPLOAD
        if method == "POST" and parts[-1:] == ["messages"]:
            return MARK_READ if isinstance(body, dict) and body.get("status") == "read" else POST_MESSAGES
        if parts[-1:] == ["message_templates"]:
            return TEMPLATES
        return MEDIA_INFO

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        upload = None
        if handler.headers.get("Content-Type", "").startswith("multipart/form-data"):
            upload = self._parse_upload(split.path, handler.headers["Content-Type"], raw)
            body: Any = {**upload.form, "file": {"filename": upload.filename, "size": len(upload.content)}}
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
        recorded = Recorded(method, split.path, parse_qs(split.query), dict(handler.headers.items()), body)
        kind = self._kind(method, split.path, body)
        with self._lock:
            self.requests.append(recorded)
            answer = self.scripts[kind].popleft() if self.scripts[kind] else None
            if upload is not None:
                self.uploads.append(upload)
        if handler.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return self._reply(handler, *error(190))
        if answer == TIMEOUT:
            time.sleep(self.timeout_seconds)
            answer = None
        if isinstance(answer, tuple) and answer[0] == "delay":
            time.sleep(answer[1])
            answer = None
        if answer == DISCONNECT:
            handler.close_connection = True
            handler.connection.shutdown(2)
            return None
        if answer is not None:
            return self._reply(handler, *answer)
        if upload is not None and kind == MEDIA_UPLOAD:
            return self._accept_upload(handler, upload)
        return self._default(handler, kind, split.path, body)

    def _accept_upload(self, handler: BaseHTTPRequestHandler, upload: Upload) -> None:
        media_id = str(900_000_000_000 + next(self._ids))
        with self._lock:
            upload.media_id = media_id
            self.media[media_id] = (upload.content, upload.form.get("type") or "application/octet-stream")
        return self._reply(handler, 200, {"id": media_id})

    @staticmethod
    def _parse_upload(path: str, content_type: str, raw: bytes) -> Upload:
        _, options = parse_options_header(content_type)
        boundary = options.get("boundary", "").encode()
        form, files = MultiPartParser().parse(io.BytesIO(raw), boundary, len(raw))
        part = files.get("file")
        parts = [p for p in path.split("/") if p]
        return Upload(
            phone_number_id=parts[-2] if len(parts) >= 2 else "",
            media_id=None,
            form={k: v for k, v in form.items()},
            filename=part.filename if part else None,
            content_type=part.content_type if part else None,
            content=part.read() if part else b"",
        )

    def _default(self, handler: BaseHTTPRequestHandler, kind: str, path: str, body: Any) -> None:
        if kind == POST_MESSAGES:
            to = body.get("to") if isinstance(body, dict) else None
            wamid = f"wamid.FAKE{time.time_ns()}{next(self._ids)}"
            return self._reply(
                handler,
                200,
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": to, "wa_id": to}],
                    "messages": [{"id": wamid}],
                },
            )
        if kind == MARK_READ:
            return self._reply(handler, 200, {"success": True})
        if kind == TEMPLATES:
            if not self.templates_page_size:
                return self._reply(handler, 200, {"data": self.templates, "paging": {"cursors": {}}})
            after = parse_qs(urlsplit(handler.path).query).get("after", ["0"])[0]
            start, size = int(after) if after.isdigit() else 0, self.templates_page_size
            paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + size)}}
            if start + size < len(self.templates):
                paging["next"] = f"http://127.0.0.1:{self.port}{path}?limit={size}&after={start + size}"
            return self._reply(handler, 200, {"data": self.templates[start : start + size], "paging": paging})
        media_id = [p for p in path.split("/") if p][-1]
        if media_id not in self.media:
            return self._reply(handler, *error(100))
        content, mime = self.media[media_id]
        if kind == MEDIA_DOWNLOAD:
            handler.send_response(200)
            handler.send_header("Content-Type", mime)
            handler.send_header("Content-Length", str(len(content)))
            handler.end_headers()
            handler.wfile.write(content)
            return None
        return self._reply(
            handler,
            200,
            {
                "url": f"http://127.0.0.1:{self.port}/download/{media_id}?expires={int(time.time()) + 300}",
                "mime_type": mime,
                "sha256": "fake",
                "file_size": len(content),
                "id": media_id,
                "messaging_product": "whatsapp",
            },
        )

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

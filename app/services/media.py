"""Media of a message: our stored copy when we have one, else streamed from WhatsApp.

Inbound media is fetched and kept by a job soon after the webhook (app/services/media_fetch.py);
once `media_state` is `stored` the file is served from our storage (app/storage/), whole or by
byte range, with its sha256 as the `ETag`, whether or not Meta still has it. Until then (or for
media we do not keep) it is streamed through Graph's two-step download:

1. the message is read from the database and the transaction ends (`media_source`): no
   connection is held while bytes flow;
2. `GET /{media-id}` gives a fresh download URL (it expires after 5 minutes, so it is
   asked for on every download and never cached);
3. `GET <url>` with the same bearer token streams the bytes (`open_media`).

Everything keys on the message row's `media_id`, so outbound media (once agents can send
it) is served the same way as inbound media.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import requests
from sqlalchemy import select
from werkzeug.http import parse_etags, parse_range_header, unquote_etag

from app.extensions import db
from app.models import Message
from app.services.errors import DomainError, Gone, NotFound, UpstreamFailed
from app.services.graph_factory import graph_client
from app.services.media_fetch import CHECKSUM_ERROR
from app.storage import StorageError, StoredObjectMissing, media_storage
from app.whatsapp.graph_client import GraphError, is_media_id
from app.whatsapp.payloads import MEDIA_TYPES

log = logging.getLogger(__name__)

# Browsers may keep a copy for a day, never a shared cache: the bytes are a customer's.
CACHE_CONTROL = "private, max-age=86400"
# Even a file a browser renders on its own (a crafted "image" opened in a tab) runs no script
# and gets no access to the inbox's origin.
CONTENT_SECURITY_POLICY = "sandbox"
DEFAULT_MIME_TYPE = "application/octet-stream"
GRAPH_UNKNOWN_OBJECT = 100  # "Unsupported get request": the media id is unknown or expired
EXPIRED_MESSAGE = "WhatsApp keeps media for 7 days; this file is no longer available."
MAX_FILENAME_CHARS = 180

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MIME = re.compile(rf"^{_TOKEN}/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\x00-\x1f\x7f]*\"))*$")
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\\"]+")


@dataclass(frozen=True)
class MediaSource:
    """What a download needs from the database, detached from it."""

    message_id: int
    type: str
    media_id: str | None
    mime_type: str | None
    filename: str | None
    # Our copy (media_state `stored`), or why there is none.
    state: str | None = None
    storage_key: str | None = None
    stored_sha256: str | None = None
    size: int | None = None
    content_type: str | None = None
    error: str | None = None


@dataclass
class MediaStream:
    """An open download: the headers to answer with and the bytes, to be closed when done."""

    headers: dict[str, str]
    body: MediaBody | Iterable[bytes]
    status: int = 200


# What the thread says and the media route answers when we hold no copy (media_state).
UNAVAILABLE = {
    "expired": ("media_expired", EXPIRED_MESSAGE),
    "corrupt": (
        "media_corrupt",
        "The file WhatsApp handed over did not match its checksum, so it is not shown.",
    ),
    "pruned": ("media_pruned", "This file was removed after the media retention period (MEDIA_RETENTION_DAYS)."),
}


class MediaBody:
    """The bytes from Graph as a WSGI iterable.

    `close()` releases Graph's connection even when the body is never iterated (a HEAD
    request, a client gone before the first byte); a generator's `finally` would not run then.
    """

    def __init__(self, response: requests.Response, chunks: Iterator[bytes], message_id: int) -> None:
        self._response = response
        self._chunks = chunks
        self._message_id = message_id

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._chunks:
                if chunk:
                    yield chunk
        except requests.RequestException as exc:
            # Too late for an error status: the connection is dropped, so the client sees a
            # truncated download instead of a file that looks complete.
            log.warning("media of message %s: download from Graph broke off: %s", self._message_id, exc)
            raise
        finally:
            self.close()

    def close(self) -> None:
        self._response.close()


# --- the database part ------------------------------------------------------------------------


def source_of(message: Message) -> MediaSource | None:
    """The media of a message row (inbound or outbound), or None when it has none to serve."""
    if message.type not in MEDIA_TYPES or message.deleted_at is not None:
        return None
    kept = message.media_state == "stored" and message.media_storage_key is not None
    if not is_media_id(message.media_id) and not kept:
        return None  # a media id not of Meta's shape (digits) is never sent to Graph
    # An agent's file is stored before it is uploaded: served from our copy, with or without an id.
    return MediaSource(
        message_id=message.id,
        type=message.type,
        media_id=message.media_id,
        mime_type=message.media_mime_type,
        filename=message.media_filename,
        state=message.media_state,
        storage_key=message.media_storage_key,
        stored_sha256=message.media_stored_sha256,
        size=message.media_size,
        content_type=message.media_content_type,
        error=message.media_error,
    )


def media_source(message_id: int) -> MediaSource:
    """Read the message's media from the database, then end the transaction."""
    message = db.session.execute(select(Message).where(Message.id == message_id)).scalar_one_or_none()
    source = source_of(message) if message is not None else None
    # Commit (not roll back) so anything the request already did is kept; either way the
    # connection goes back to the pool before Graph is called.
    db.session.commit()
    if message is None:
        raise NotFound("Message not found.")
    if source is None:
        raise NotFound("This message has no media.")
    return source


def open_kept_or_graph(
    source: MediaSource, *, range_header: str | None, if_none_match: str | None, if_range: str | None
) -> MediaStream:
    """The stored copy when there is one; a refusal when it is known to be gone; else Graph."""
    if source.state == "stored" and source.storage_key and source.stored_sha256 and source.size is not None:
        try:
            return open_stored(source, range_header=range_header, if_none_match=if_none_match, if_range=if_range)
        except StoredObjectMissing:
            log.error("media of message %s: the stored copy %s is missing", source.message_id, source.storage_key)
        except StorageError as exc:
            log.warning("media of message %s: storage failed, trying Graph: %s", source.message_id, exc)
    elif source.state in UNAVAILABLE:
        code, message = UNAVAILABLE[source.state]
        raise Gone(message, code=code)
    elif source.state == "pending" and (source.error or "").startswith(CHECKSUM_ERROR):
        # Never relay bytes known not to match the webhook's checksum; the job tries again.
        raise UpstreamFailed(
            "The file WhatsApp handed over did not match its checksum; it is being fetched again.",
            code="media_checksum_mismatch",
        )
    return open_media(source)


# --- our stored copy (no database) -------------------------------------------------------------


def open_stored(
    source: MediaSource, *, range_header: str | None, if_none_match: str | None, if_range: str | None
) -> MediaStream:
    """Our copy, whole (200), by one byte range (206), unchanged (304), or 416 out of range."""
    assert source.storage_key and source.stored_sha256 and source.size is not None
    size = source.size
    etag = f'"{source.stored_sha256}"'
    headers = answer_headers(source, graph_mime_type=source.content_type, content_length=None)
    headers["ETag"] = etag
    headers["Accept-Ranges"] = "bytes"
    if if_none_match and parse_etags(if_none_match).contains_weak(source.stored_sha256):
        return MediaStream(headers=_without_body_headers(headers), body=iter(()), status=304)
    start, stop, status = 0, size, 200
    wanted = parse_range_header(range_header) if range_header else None
    if wanted is not None and wanted.units == "bytes" and len(wanted.ranges) == 1 and _if_range_holds(if_range, etag):
        bounds = wanted.range_for_length(size)
        if bounds is None:
            unsatisfiable = _without_body_headers(headers)
            unsatisfiable["Content-Range"] = f"bytes */{size}"
            return MediaStream(headers=unsatisfiable, body=iter(()), status=416)
        start, stop = bounds
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["Content-Length"] = str(stop - start)
    body = media_storage().open_range(source.storage_key, start, stop)
    return MediaStream(headers=headers, body=body, status=status)


def _if_range_holds(if_range: str | None, etag: str) -> bool:
    """`If-Range` with another validator (or a date: ours never change, but be strict) means the
    whole file is sent."""
    if not if_range:
        return True
    value, weak = unquote_etag(if_range.strip())
    return not weak and value is not None and f'"{value}"' == etag


def _without_body_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in ("Content-Type", "Content-Disposition", "Content-Length")}


# --- the Graph part (no database) --------------------------------------------------------------


def open_media(source: MediaSource) -> MediaStream:
    """Ask Graph for a fresh URL, start the download and work out the answer's headers."""
    client = graph_client()
    try:
        if source.media_id is None:  # an agent's file not uploaded yet, and our copy unreadable
            raise GraphError(code=None, title="The file was never uploaded to WhatsApp and our copy is unavailable")
        info = client.media_info(source.media_id)
        url = info.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("https", "http"):
            raise GraphError(code=None, title="Graph answered without a download URL")
        response, chunks = client.download(url)
    except GraphError as error:
        raise _failure(source, error) from error
    headers = answer_headers(
        source,
        graph_mime_type=info.get("mime_type") if isinstance(info.get("mime_type"), str) else None,
        content_length=_content_length(response),
    )
    return MediaStream(headers=headers, body=MediaBody(response, chunks, source.message_id))


def _failure(source: MediaSource, error: GraphError) -> DomainError:
    if error.code == GRAPH_UNKNOWN_OBJECT or (error.code is None and error.http_status in (404, 410)):
        log.info("media of message %s is gone from WhatsApp: %s", source.message_id, error)
        return Gone(EXPIRED_MESSAGE, code="media_expired")
    log.warning(
        "media of message %s could not be downloaded: %s (fbtrace_id=%s)", source.message_id, error, error.fbtrace_id
    )
    return UpstreamFailed(
        f"WhatsApp did not hand over the file: {error.title}",
        graph_error={
            "code": error.code,
            "title": error.title,
            "details": error.details,
            "fbtrace_id": error.fbtrace_id,
        },
    )


def _content_length(response: requests.Response) -> int | None:
    """The size of what will be streamed, when it is known for sure."""
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None  # requests decompresses: the header counts the compressed bytes
    raw = response.headers.get("Content-Length", "")
    return int(raw) if raw.isascii() and raw.isdigit() else None


# --- headers (pure) ----------------------------------------------------------------------------


def clean_mime_type(value: str | None) -> str | None:
    """A syntactically valid `type/subtype; param=value` (kept as is), else None."""
    if not value:
        return None
    value = value.strip()
    return value if len(value) <= 255 and _MIME.match(value) else None


def answer_headers(source: MediaSource, *, graph_mime_type: str | None, content_length: int | None) -> dict[str, str]:
    mime_type = clean_mime_type(graph_mime_type) or clean_mime_type(source.mime_type) or DEFAULT_MIME_TYPE
    headers = {
        "Content-Type": mime_type,
        "Content-Disposition": content_disposition(source, mime_type),
        "Cache-Control": CACHE_CONTROL,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    }
    if content_length is not None:
        headers["Content-Length"] = str(content_length)
    return headers


def _shown_inline(source: MediaSource, mime_type: str) -> bool:
    """Pictures, sound and video open in the browser; documents and anything odd download."""
    essence = mime_type.split(";", 1)[0].strip().lower()
    if source.type == "document" or essence == "image/svg+xml":
        return False
    return essence.split("/", 1)[0] in ("image", "audio", "video")


def content_disposition(source: MediaSource, mime_type: str) -> str:
    disposition = "inline" if _shown_inline(source, mime_type) else "attachment"
    name = safe_filename(source.filename) or _fallback_filename(source, mime_type)
    return f"{disposition}; {filename_parameters(name)}"


def safe_filename(name: str | None) -> str | None:
    """The customer's filename without paths, quotes or control characters, bounded in length."""
    if not name:
        return None
    name = unicodedata.normalize("NFC", name)
    # Controls, line separators and bidi overrides ("factura\u202efdp.exe") become "_" too.
    name = "".join("_" if unicodedata.category(c)[0] == "C" or c in "\u2028\u2029" else c for c in name)
    name = _UNSAFE_FILENAME.sub("_", name).strip(" ._")
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            name = stem[: MAX_FILENAME_CHARS - len(extension) - 1] + "." + extension
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name or None


def _fallback_filename(source: MediaSource, mime_type: str) -> str:
    extension = mimetypes.guess_extension(mime_type.split(";", 1)[0].strip().lower()) or ""
    return f"whatsapp-{source.type}-{source.message_id}{extension}"


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _UNSAFE_FILENAME.sub("_", text).strip(" ._")


def filename_parameters(name: str) -> str:
    """`filename="…"` in plain ASCII, plus RFC 5987 `filename*=UTF-8''…` when it is not ASCII."""
    if name.isascii():
        return f'filename="{name}"'
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    ascii_extension = _ascii(extension)
    ascii_name = (_ascii(stem) or "download") + (f".{ascii_extension}" if ascii_extension else "")
    return f"filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"

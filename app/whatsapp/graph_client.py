"""Meta's Graph API: a small client with timeouts, pooled connections and typed errors.

No Flask and no database here: callers pass the settings and decide what an error means
for the data they keep. The app's configured instance comes from
`app.services.graph_factory.graph_client()`.

Where the access token goes: it is attached to each request (never to the session), and only
to the Graph host of `base_url` and to media downloads on an allowed media host (`media_hosts`:
https, unless an entry names `http://` itself). Ids put into a Graph path cannot change it
(media ids must be Meta's digits); a URL from a Graph answer (a download, a redirect, a paging
link) on any other host is not followed: a `GraphError` says which host, without the token.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests_toolbelt.multipart.encoder import MultipartEncoder

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
# Codes Meta documents as transient (retry with backoff) — see docs/whatsapp-cloud-api.md.
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131056})
WINDOW_CLOSED = 131047
# Meta's media ids are decimal digits (e.g. "1234567890123456"); nothing else is sent to Graph.
_MEDIA_ID = re.compile(r"[0-9]{1,64}", re.ASCII)
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_REDIRECTS = 3


@dataclass(eq=False)
class GraphError(Exception):
    """What Graph (or the way to it) answered instead of success."""

    code: int | None
    title: str
    details: str | None = None
    fbtrace_id: str | None = None
    http_status: int | None = None
    retryable: bool = False
    # True when the request may have reached Meta (a read timeout): a send must not be repeated.
    ambiguous: bool = False

    def __str__(self) -> str:
        return f"Graph error {self.code}: {self.title}" + (f" ({self.details})" if self.details else "")


def parse_error(http_status: int, body: Any) -> GraphError:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return GraphError(
            code=None, title=f"HTTP {http_status} from Graph", http_status=http_status, retryable=http_status >= 500
        )
    code = error.get("code") if isinstance(error.get("code"), int) else None
    error_data = error.get("error_data")
    data: dict[str, Any] = error_data if isinstance(error_data, dict) else {}
    details = data.get("details") if isinstance(data.get("details"), str) else None
    return GraphError(
        code=code,
        title=str(error.get("error_user_title") or error.get("message") or f"HTTP {http_status}"),
        details=details or (str(error["error_user_msg"]) if error.get("error_user_msg") else None),
        fbtrace_id=error.get("fbtrace_id") if isinstance(error.get("fbtrace_id"), str) else None,
        http_status=http_status,
        retryable=(code in TRANSIENT_CODES) or http_status >= 500,
    )


def is_media_id(value: object) -> TypeGuard[str]:
    """True for a media id of Meta's shape: ASCII digits only."""
    return isinstance(value, str) and _MEDIA_ID.fullmatch(value) is not None


Origin = tuple[str, str, int]  # scheme, host name (lowercase), port


def _origin(url: str) -> Origin | None:
    """Scheme, host and port of an absolute http(s) URL; None for anything odd (user info,
    backslashes, spaces or control characters, which parsers disagree about)."""
    if not isinstance(url, str) or any(c <= " " or c in "\\\x7f" for c in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return scheme, parts.hostname, port or DEFAULT_PORTS[scheme]


def parse_host_rule(entry: str) -> tuple[str, str, int | None]:
    """A `WHATSAPP_MEDIA_HOSTS` entry: `host[:port]` (https) or `scheme://host[:port]`.

    Without a port, any port of that host matches. Raises ValueError for anything else.
    """
    entry = entry.strip().lower()
    text = entry if "://" in entry else f"https://{entry}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{entry!r} is not a host name or an http(s) origin") from exc
    if (
        parts.scheme not in DEFAULT_PORTS
        or not parts.hostname
        or "@" in parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(f"{entry!r} is not a host name or an http(s) origin")
    return parts.scheme, parts.hostname, port


def _host_rules(media_hosts: str | Iterable[str]) -> tuple[tuple[str, str, int | None], ...]:
    entries = media_hosts.split(",") if isinstance(media_hosts, str) else media_hosts
    return tuple(parse_host_rule(e) for e in entries if e.strip())


def _shown(origin: Origin | None, url: str) -> str:
    """Where a URL points, for errors and logs: never its path or query (they may carry secrets)."""
    if origin is None:
        return "an unusable URL" if isinstance(url, str) else "no URL"
    scheme, host, port = origin
    return f"{scheme}://{host}" + ("" if port == DEFAULT_PORTS[scheme] else f":{port}")


def _segment(value: str) -> str:
    """An id as one path segment: it cannot add segments, a query or a fragment."""
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise GraphError(code=None, title="Not an id that can be sent to Graph; Graph was not called")
    return quote(value, safe="")


def _result_label(error: GraphError) -> str:
    if error.code is not None:
        return str(error.code)
    if error.ambiguous or "in time" in error.title:
        return "timeout"
    if error.http_status:
        return f"http_{error.http_status}"
    return "unreachable"


class GraphClient:
    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        max_retries: int = 2,
        backoff: float = 0.5,
        observer: Callable[[str, str], None] | None = None,
        media_hosts: str | Iterable[str] = (),
    ) -> None:
        """`observer(operation, result)` is told the outcome of every call (for metrics).

        `media_hosts`: where media downloads may go with the token (see `parse_host_rule`).
        """
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.max_retries = max_retries
        self.backoff = backoff
        self.observer = observer
        self._access_token = access_token
        self._graph_origin = _origin(self.base_url)
        self.media_hosts = _host_rules(media_hosts)
        # No session-wide Authorization header: each request gets the token only when its URL
        # is one the token may go to (`_authorised`).
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    # --- where the token may go -----------------------------------------------------------

    def _on_graph_host(self, url: str) -> bool:
        origin = _origin(url)
        return origin is not None and origin == self._graph_origin

    def _on_media_host(self, url: str) -> bool:
        origin = _origin(url)
        if origin is None:
            return False
        scheme, host, port = origin
        return any(
            scheme == r_scheme and host == r_host and r_port in (None, port)
            for r_scheme, r_host, r_port in self.media_hosts
        )

    def _authorised(self, url: str, *, media: bool) -> dict[str, str]:
        """The Authorization header for `url`, or a GraphError when the token must not go there."""
        allowed = self._on_media_host(url) if media else self._on_graph_host(url)
        if not allowed:
            where = _shown(_origin(url), url)
            if media:
                title = f"Graph gave a download URL on {where}, which is not on WHATSAPP_MEDIA_HOSTS"
            else:
                title = f"Graph gave a URL on {where}, which is not the Graph host"
            log.warning("graph: not following %s (the access token is only sent to known hosts)", where)
            raise GraphError(code=None, title=title + "; it was not followed")
        return {"Authorization": f"Bearer {self._access_token}"}

    # --- transport ---------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        idempotent: bool,
        media: bool = False,
        fresh_body: Callable[[], tuple[Any, str]] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One Graph call, retried a bounded number of times when that is safe.

        A request that never reached Meta (connection refused, connect timeout) or that Meta
        refused as transient is retried with backoff. A read timeout is ambiguous — Meta may
        have accepted it — so a non-idempotent call (a send) is not repeated.

        `fresh_body`, when given, makes a fresh (streamed body, Content-Type) for each attempt: a
        stream cannot be read twice.
        """
        headers = self._authorised(url, media=media)
        attempt = 0
        while True:
            attempt += 1
            if fresh_body is not None:
                kwargs["data"], content_type = fresh_body()
                headers = {**headers, "Content-Type": content_type}
            try:
                response = self.session.request(
                    method, url, headers=headers, timeout=self.timeout, allow_redirects=False, **kwargs
                )
            except requests.ConnectTimeout as exc:
                error = GraphError(code=None, title="Graph did not accept the connection in time", retryable=True)
                cause: Exception | None = exc
            except requests.ReadTimeout as exc:
                error = GraphError(
                    code=None,
                    title="Graph did not answer in time",
                    details="The request may or may not have reached WhatsApp.",
                    retryable=idempotent,
                    ambiguous=not idempotent,
                )
                cause = exc
            except requests.ConnectionError as exc:
                error = GraphError(code=None, title="Graph could not be reached", retryable=True)
                cause = exc
            else:
                if response.status_code < 400:
                    self._observe(operation, "ok")
                    return response
                try:
                    body = response.json()
                except ValueError:
                    body = None
                error = parse_error(response.status_code, body)
                cause = None
            self._observe(operation, _result_label(error))
            if not error.retryable or attempt > self.max_retries:
                raise error from cause
            delay = self.backoff * (2 ** (attempt - 1))
            # Without the query string: Meta's paging URLs carry the access token.
            safe_url = url.split("?", 1)[0]
            log.warning("graph %s %s failed (%s); retry %d in %.1f s", method, safe_url, error, attempt, delay)
            time.sleep(delay)

    def _observe(self, operation: str, result: str) -> None:
        if self.observer is not None:
            try:
                self.observer(operation, result)
            except Exception:  # metrics must never break a send
                log.warning("graph observer failed", exc_info=True)

    def _json(self, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError as exc:
            raise GraphError(
                code=None, title="Graph answered with something that is not JSON", http_status=response.status_code
            ) from exc
        if not isinstance(body, dict):
            raise GraphError(
                code=None, title="Graph answered with an unexpected shape", http_status=response.status_code
            )
        return body

    # --- calls -------------------------------------------------------------------------

    def send_message(self, phone_number_id: str, payload: dict[str, Any]) -> str:
        """POST /{phone_number_id}/messages; returns the wamid Meta accepted."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", **payload}
        response = self._request(
            "POST", f"{self.base_url}/{phone_number_id}/messages", json=body, operation="send", idempotent=False
        )
        data = self._json(response)
        messages = data.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            wamid = messages[0].get("id")
            if isinstance(wamid, str) and wamid:
                return wamid
        raise GraphError(
            code=None, title="Graph accepted the message but returned no id", http_status=response.status_code
        )

    def upload_media(
        self,
        phone_number_id: str,
        open_chunks: Callable[[], Iterable[bytes]],
        *,
        size: int,
        mime_type: str,
        filename: str,
    ) -> str:
        """POST /{phone_number_id}/media (multipart: `messaging_product`, `type`, `file`); returns the
        media id to send by. The `size` bytes of `open_chunks()` (called again for a retry) are
        streamed, never held in memory whole. Safe to retry: a second upload only makes a second id."""
        opened: list[_ChunkReader] = []

        def multipart() -> tuple[MultipartEncoder, str]:
            reader = _ChunkReader(open_chunks(), size)
            opened.append(reader)
            encoder = MultipartEncoder(
                fields={"messaging_product": "whatsapp", "type": mime_type, "file": (filename, reader, mime_type)}
            )
            return encoder, encoder.content_type

        try:
            response = self._request(
                "POST",
                f"{self.base_url}/{_segment(phone_number_id)}/media",
                fresh_body=multipart,
                operation="media_upload",
                idempotent=True,
            )
        finally:
            for reader in opened:
                reader.close()
        media_id = self._json(response).get("id")
        if not is_media_id(media_id):
            raise GraphError(
                code=None, title="Graph accepted the upload but returned no media id", http_status=response.status_code
            )
        return media_id

    def mark_read(self, phone_number_id: str, wamid: str) -> None:
        """Blue ticks for `wamid`. Best effort: a read timeout is not retried, so a hanging Graph
        costs one read timeout, well inside gunicorn's worker timeout."""
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
        self._request(
            "POST",
            f"{self.base_url}/{_segment(phone_number_id)}/messages",
            json=body,
            operation="mark_read",
            idempotent=False,
        )

    def media_info(self, media_id: str) -> dict[str, Any]:
        """GET /{media-id}: a short-lived download URL (5 minutes) with mime type and size.

        Only Meta's digits are sent: anything else is refused before a URL is built."""
        if not is_media_id(media_id):
            raise GraphError(code=None, title="Not a WhatsApp media id (digits only); Graph was not called")
        return self._json(self._request("GET", f"{self.base_url}/{media_id}", operation="media_info", idempotent=True))

    def download(self, url: str) -> tuple[requests.Response, Iterator[bytes]]:
        """Stream the media bytes from the URL `media_info` gave (same bearer token).

        The URL, and every redirect from it, must be on an allowed media host."""
        for _ in range(MAX_REDIRECTS + 1):
            response = self._request("GET", url, operation="media_download", idempotent=True, media=True, stream=True)
            if not response.is_redirect:
                return response, response.iter_content(chunk_size=64 * 1024)
            response.close()
            url = urljoin(url, response.headers.get("Location", ""))
        raise GraphError(code=None, title="The media download redirected too many times")

    def message_templates(self, waba_id: str) -> list[dict[str, Any]]:
        """Every template of the business account, following Graph's paging."""
        templates: list[dict[str, Any]] = []
        url: str | None = f"{self.base_url}/{_segment(waba_id)}/message_templates"
        params: dict[str, Any] | None = {"limit": 100, "fields": "id,name,language,status,category,components"}
        while url:
            data = self._json(self._request("GET", url, params=params, operation="templates", idempotent=True))
            templates += [t for t in data.get("data", []) if isinstance(t, dict)]
            raw_paging = data.get("paging")
            paging: dict[str, Any] = raw_paging if isinstance(raw_paging, dict) else {}
            url = paging.get("next") if isinstance(paging.get("next"), str) else None
            params = None
        return templates


class _ChunkReader:
    """`size` bytes from an iterable of chunks as the file object a streamed multipart body reads;
    `len()` is what is left (requests-toolbelt asks it as it goes)."""

    def __init__(self, chunks: Iterable[bytes], size: int) -> None:
        self._source = chunks
        self._chunks = iter(chunks)
        self._buffer = b""
        self._left = size

    def __len__(self) -> int:
        return self._left

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if n < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
        self._left = max(0, self._left - len(data))
        return data

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if callable(close):
            close()

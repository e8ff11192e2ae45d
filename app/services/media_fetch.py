"""Keeping inbound media: the job's work (app/jobs/media.py runs it) and the retention prune.

Ingest marks every inbound media message `media_state = 'pending'` in the webhook's own
transaction (the work owed lives on the row). Fetching it:

1. claim the row with a conditional UPDATE (still pending, no live claim): a second worker that
   gets the same message finds nothing to claim and stops, so a file is never fetched twice at
   once; a worker killed mid-download leaves a claim that expires after `CLAIM_SECONDS`;
2. commit, so no database connection is held while bytes flow;
3. Graph's two-step download into a temporary file, hashing as it goes; compare with the
   webhook's sha256 (Meta sends it base64; hex is accepted too);
4. store the file (app/storage/), then mark the row `stored` with our digest, size and type.

Transient trouble (Graph 5xx, timeouts, an unreachable store) and a digest that does not match
raise `RetryLater`: the job queue runs the job again with backoff. On the last attempt the row
is marked `failed` or `corrupt` instead; an expired media id is marked `expired` at once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import text

from app.extensions import db
from app.services.graph_factory import graph_client
from app.storage import StorageError, media_storage
from app.whatsapp.graph_client import GraphError

log = logging.getLogger(__name__)

CLAIM_SECONDS = 600  # longer than any download may take (Graph's timeouts bound each read)
MAX_MEDIA_BYTES = 110 * 1024 * 1024  # WhatsApp's largest (documents, 100 MB) with some slack
SPOOL_BYTES = 4 * 1024 * 1024  # smaller files stay in memory while hashed
GRAPH_UNKNOWN_OBJECT = 100

OUTCOMES = ("stored", "expired", "corrupt", "failed", "not_owed")
# How `media_error` starts while a checksum mismatch is being retried: the media route then
# refuses to relay Graph's (unverified) bytes.
CHECKSUM_ERROR = "checksum mismatch"


class RetryLater(Exception):
    """Transient: run the job again later (the queue's retry strategy decides when)."""


class ChecksumMismatch(RetryLater):
    """The bytes Graph gave do not hash to the webhook's sha256."""


@dataclass(frozen=True)
class Claimed:
    message_id: int
    type: str
    media_id: str
    mime_type: str | None
    expected_sha256: str | None


CLAIM = text(
    """
    UPDATE messages
       SET media_claimed_until = now() + make_interval(secs => :lease),
           media_attempts = media_attempts + 1
     WHERE id = :id AND media_state = 'pending'
       AND (media_claimed_until IS NULL OR media_claimed_until < now())
    RETURNING id, type, media_id, media_mime_type, media_sha256
    """
)
RELEASE = text(
    "UPDATE messages SET media_claimed_until = NULL, media_error = :error WHERE id = :id AND media_state = 'pending'"
)
FINISH = text(
    """
    UPDATE messages
       SET media_state = :state, media_claimed_until = NULL, media_error = :error,
           media_storage_key = :key, media_stored_sha256 = :sha256, media_size = :size,
           media_content_type = :content_type,
           media_stored_at = CASE WHEN :state = 'stored' THEN now() ELSE NULL END
     WHERE id = :id AND media_state = 'pending'
    """
)


def storage_key(message_id: int, sha256_hex: str) -> str:
    """Immutable: a new fetch of different bytes never overwrites a served file."""
    return f"messages/{message_id // 10000:05d}/{message_id}-{sha256_hex[:16]}"


def sha256_matches(expected: str | None, digest: bytes) -> bool:
    """Meta's webhook sha256 is base64; a hex spelling is accepted too. None: nothing to check."""
    if not expected:
        return True
    value = expected.strip()
    if len(value) == 64 and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower() == digest.hex()
    try:
        return base64.b64decode(value, validate=True) == digest
    except (binascii.Error, ValueError):
        return False


def claim(message_id: int) -> Claimed | None:
    row = db.session.execute(CLAIM, {"id": message_id, "lease": CLAIM_SECONDS}).first()
    db.session.commit()
    if row is None:
        return None
    return Claimed(row.id, row.type, row.media_id, row.media_mime_type, row.media_sha256)


def _finish(message_id: int, state: str, *, error: str | None = None, **stored: object) -> None:
    values = {"key": None, "sha256": None, "size": None, "content_type": None, **stored}
    db.session.execute(FINISH, {"id": message_id, "state": state, "error": error, **values})
    db.session.commit()


def _release(message_id: int, error: str) -> None:
    db.session.execute(RELEASE, {"id": message_id, "error": error[:500]})
    db.session.commit()


def fetch_media(message_id: int, *, last_attempt: bool) -> str:
    """Fetch, check and store one message's media. Returns the outcome (see `OUTCOMES`)."""
    claimed = claim(message_id)
    if claimed is None:
        return "not_owed"  # already kept, given up on, or being fetched by another worker right now
    try:
        return _fetch_claimed(claimed)
    except ChecksumMismatch as exc:
        if last_attempt:
            log.warning("media of message %s marked corrupt: %s", message_id, exc)
            _finish(message_id, "corrupt", error=str(exc)[:500])
            return "corrupt"
        _release(message_id, str(exc))
        raise
    except RetryLater as exc:
        if last_attempt:
            log.warning("media of message %s could not be fetched, giving up: %s", message_id, exc)
            _finish(message_id, "failed", error=str(exc)[:500])
            return "failed"
        _release(message_id, str(exc))
        raise
    except BaseException:
        db.session.rollback()
        _release(message_id, "the fetch stopped unexpectedly")
        raise


def _fetch_claimed(claimed: Claimed) -> str:
    client = graph_client()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        try:
            info = client.media_info(claimed.media_id)
            url = info.get("url")
            if not isinstance(url, str) or urlsplit(url).scheme not in ("https", "http"):
                raise GraphError(code=None, title="Graph answered without a download URL")
            response, chunks = client.download(url)
            digest = hashlib.sha256()
            size = 0
            try:
                for chunk in chunks:
                    size += len(chunk)
                    if size > MAX_MEDIA_BYTES:
                        raise RetryLater(f"the file is larger than {MAX_MEDIA_BYTES} bytes")
                    digest.update(chunk)
                    spool.write(chunk)
            finally:
                response.close()
        except GraphError as error:
            if error.code == GRAPH_UNKNOWN_OBJECT or (error.code is None and error.http_status in (404, 410)):
                log.info("media of message %s is gone from WhatsApp: %s", claimed.message_id, error)
                _finish(claimed.message_id, "expired", error=str(error)[:500])
                return "expired"
            raise RetryLater(f"Graph: {error}") from error
        except OSError as exc:  # requests' connection errors while streaming, a full disk
            raise RetryLater(f"download broke off: {exc}") from exc
        if not sha256_matches(claimed.expected_sha256, digest.digest()):
            raise ChecksumMismatch(
                f"{CHECKSUM_ERROR}: the sha256 of the {size} bytes received is not the webhook's "
                f"({claimed.expected_sha256})"
            )
        sha256_hex = digest.hexdigest()
        mime = info.get("mime_type") if isinstance(info.get("mime_type"), str) else None
        content_type = mime or claimed.mime_type or "application/octet-stream"
        key = storage_key(claimed.message_id, sha256_hex)
        spool.seek(0)
        try:
            media_storage().put(key, spool, size=size, content_type=content_type)  # type: ignore[arg-type]
        except StorageError as exc:
            raise RetryLater(f"storage: {exc}") from exc
    _finish(claimed.message_id, "stored", key=key, sha256=sha256_hex, size=size, content_type=content_type)
    log.info("media of message %s stored (%d bytes)", claimed.message_id, size)
    return "stored"


# --- what the sweep and the prune need --------------------------------------------------------

OWED = text(
    """
    SELECT id FROM messages
     WHERE media_state = 'pending' AND (media_claimed_until IS NULL OR media_claimed_until < now())
     ORDER BY id LIMIT :limit
    """
)


def owed_media(limit: int = 500) -> list[int]:
    """Messages whose media is still owed and that no worker holds a live claim on."""
    ids = [row.id for row in db.session.execute(OWED, {"limit": limit})]
    db.session.commit()
    return ids


PRUNE_BATCH = text(
    """
    UPDATE messages SET media_state = 'pruned', media_error = NULL
     WHERE id IN (SELECT id FROM messages WHERE media_state = 'stored' AND media_stored_at < :before
                   ORDER BY media_stored_at LIMIT :limit FOR UPDATE SKIP LOCKED)
    RETURNING id, media_storage_key
    """
)


def prune_media(days: int, *, batch: int = 500) -> int:
    """Remove our copies of files stored more than `days` ago.

    The row is marked `pruned` and committed *before* its file is deleted: a message never points
    at a file that is gone (at worst, a crash leaves a file no message points at)."""
    before = datetime.now(UTC) - timedelta(days=days)
    storage = media_storage()
    removed = 0
    while True:
        rows = db.session.execute(PRUNE_BATCH, {"before": before, "limit": batch}).all()
        db.session.commit()
        for row in rows:
            if row.media_storage_key:
                try:
                    storage.delete(row.media_storage_key)
                except StorageError as exc:
                    log.warning("pruned media of message %s left its file behind: %s", row.id, exc)
        removed += len(rows)
        if len(rows) < batch:
            return removed


# A file younger than this is never an orphan: an agent's upload is stored before its message row
# commits (app/services/outbound_media.py), a fetch before its row says `stored`.
ORPHAN_GRACE = timedelta(hours=24)
_KEY_ID = re.compile(r"^messages/\d+/(\d+)-[0-9a-f]{16}$")
KEPT_KEYS = text(
    "SELECT media_storage_key FROM messages WHERE id = ANY(:ids) AND media_state = 'stored'"
    " AND media_storage_key IS NOT NULL"
)


def prune_orphans(*, now: datetime | None = None, batch: int = 1000) -> int:
    """Delete stored files that no message serves: left by a process killed between storing a
    file and committing its row, by a prune whose delete failed, or half-written (`.tmp`).

    A file is kept while the message its key names (`storage_key`: the id is in the key, so each
    batch is one primary-key lookup) is `stored` under exactly that key, and any file younger
    than `ORPHAN_GRACE` is kept whatever it is."""
    cutoff = (now or datetime.now(UTC)) - ORPHAN_GRACE
    storage = media_storage()
    removed = 0
    pending: list[str] = []

    def settle() -> int:
        ids = sorted({int(match[1]) for key in pending if (match := _KEY_ID.match(key))})
        kept = set(db.session.execute(KEPT_KEYS, {"ids": ids}).scalars()) if ids else set()
        db.session.commit()
        gone = 0
        for key in pending:
            if key in kept:
                continue
            try:
                storage.delete(key)
                gone += 1
            except StorageError as exc:
                log.warning("an orphaned media file could not be deleted (%s): %s", key, exc)
        pending.clear()
        return gone

    for item in storage.listing("messages/"):
        if item.modified_at < cutoff:
            pending.append(item.key)
        if len(pending) >= batch:
            removed += settle()
    removed += settle()
    if removed:
        log.info("removed %d orphaned media files", removed)
    return removed


GIVE_UP_ATTEMPTS = 24  # the sweep's re-enqueues included: the fetch keeps failing for no clear reason
GIVE_UP = text(
    """
    UPDATE messages SET media_state = 'failed', media_claimed_until = NULL,
           media_error = coalesce(media_error, 'too many attempts')
     WHERE media_state = 'pending' AND media_attempts >= :attempts
       AND (media_claimed_until IS NULL OR media_claimed_until < now())
    """
)


def give_up_exhausted() -> int:
    result = db.session.execute(GIVE_UP, {"attempts": GIVE_UP_ATTEMPTS})
    db.session.commit()
    return int(getattr(result, "rowcount", 0) or 0)

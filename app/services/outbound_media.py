"""Agents' attachments: an image, video, audio, document or sticker (and a browser's voice
recording) checked, kept in our media storage, then uploaded to Graph and sent by id.

The order gives media every guarantee text has (app/services/sending.py), and refuses a file
before anything is kept:

1. `prepared()`: the file's type is judged by its content and its size checked against
   WhatsApp's limit for that type (`app/whatsapp/media_rules.py`); a WebM recording becomes
   OGG/Opus (`app/whatsapp/voice_notes.py`). A refusal here leaves nothing behind: no message,
   no stored file, no Graph call, no Idempotency-Key.
2. `send_media()`: a replayed Idempotency-Key answers the first request's answer; the conversation
   must exist, reach a phone number and have its 24-hour window open (else 409, nothing stored);
3. the file is written to our storage (the same as inbound media's, under the message's id) with
   no transaction open;
4. one transaction claims the Idempotency-Key, checks the conversation again under its lock and
   stores the message `pending` with its stored file (`media_state = 'stored'`): committed;
5. Graph: upload (`POST /{phone-number-id}/media`), then send by id, with no database connection
   held; the outcome is recorded as for text (`accepted` with the wamid, or `failed` with Meta's
   code). A retry (`sending.retry`) uploads our copy again when needed.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import select, text, update

from app.extensions import db
from app.models import IdempotencyKey, Message
from app.services.errors import (
    Conflict,
    DomainError,
    Invalid,
    StorageUnavailable,
    TooLarge,
    UnsupportedMedia,
)
from app.services.media_fetch import storage_key
from app.services.sending import (
    Idempotency,
    KeptAnswer,
    SendOutcome,
    StoredMedia,
    _Claim,
    _claim_key,
    _deliver_media,
    _keep,
    _load_target,
    _Target,
    _window_refusal,
)
from app.services.summaries import touch_conversation
from app.storage import StorageError, media_storage
from app.storage.base import CHUNK_SIZE
from app.whatsapp import media_probe, media_rules, voice_notes
from app.whatsapp.media_rules import OGG_OPUS, Judged, Refused
from app.whatsapp.rules import window_open

log = logging.getLogger(__name__)

# The message's id before its row exists: the file is stored under it (`storage_key`) first.
RESERVE_ID = text("SELECT nextval(pg_get_serial_sequence('messages', 'id'))")


@dataclass(frozen=True)
class Attachment:
    """What the agent sent: the uploaded file (a seekable binary stream) and the form's fields."""

    stream: IO[bytes]
    filename: str | None
    caption: str | None = None
    filename_override: str | None = None  # documents: the name the customer sees
    reply_to: int | None = None


@dataclass(frozen=True)
class PreparedMedia:
    """A file WhatsApp will take, ready to keep and send."""

    file: IO[bytes]  # what is stored and uploaded (the upload, or its OGG/Opus conversion)
    size: int
    sha256: str  # hex, of `file`
    upload_sha256: str  # hex, of the bytes the client sent (what an Idempotency-Key stands for)
    judged: Judged
    filename: str  # the name Graph and the customer get
    caption: str | None
    reply_to: int | None
    remuxed: bool | None = None  # a converted recording: copied (True) or re-encoded (False)

    @property
    def kind(self) -> str:
        return self.judged.kind

    @property
    def voice(self) -> bool:
        """OGG/Opus audio is sent as a voice message."""
        return self.judged.format.mime_type == OGG_OPUS

    def request_facts(self) -> dict[str, Any]:
        """What an Idempotency-Key stands for, besides the conversation."""
        return {
            "file_sha256": self.upload_sha256,
            "caption": self.caption,
            "filename": self.filename,
            "reply_to": self.reply_to,
        }


def _refusal(refused: Refused) -> DomainError:
    if refused.reason == "empty":
        return Invalid(refused.message, field="file", code="empty_file")
    if refused.reason == "too_large":
        return TooLarge(refused.message, **refused.facts)
    if refused.reason == "dimensions":
        return Invalid(refused.message, field="file", code="sticker_dimensions", **refused.facts)
    if refused.reason == "mismatch":
        return UnsupportedMedia(refused.message, code="media_type_mismatch", **refused.facts)
    return UnsupportedMedia(refused.message, **refused.facts)


def _digest_and_size(stream: IO[bytes]) -> tuple[str, int]:
    stream.seek(0)
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


@contextmanager
def prepared(attachment: Attachment) -> Iterator[PreparedMedia]:
    """The attachment judged, within its limit, converted when it is a recording; or a domain
    error (400 `empty_file`, 413 `file_too_large`, 415 `unsupported_media_type` (a video's codecs
    included) / `media_type_mismatch`, 400 `sticker_dimensions`, 400 for a caption where WhatsApp
    takes none). Nothing is stored."""
    stream = attachment.stream
    upload_sha256, size = _digest_and_size(stream)
    head = stream.read(media_rules.HEAD_BYTES)
    stream.seek(0)
    try:
        judged = media_rules.judge(head, size, attachment.filename)
    except Refused as refused:
        raise _refusal(refused) from None
    caption = (attachment.caption or "").strip() or None
    if caption and not judged.format.caption:
        raise Invalid(
            f"WhatsApp sends {judged.kind} without a caption; leave 'caption' empty.",
            field="caption",
            code="caption_not_allowed",
        )
    if judged.kind == "video":
        try:
            media_probe.check_video(stream, judged.format.mime_type)
        except Refused as refused:
            raise _refusal(refused) from None
    if not judged.needs_conversion:
        yield _ready(stream, size, upload_sha256, upload_sha256, judged, attachment, caption)
        return
    with tempfile.TemporaryFile() as converted:
        try:
            outcome = voice_notes.to_ogg_opus(stream, converted)
            converted.flush()
            sha256, converted_size = _digest_and_size(converted)
            judged = media_rules.judge(converted.read(media_rules.HEAD_BYTES), converted_size, None)
        except Refused as refused:
            raise _refusal(refused) from None
        converted.seek(0)
        yield _ready(
            converted,
            converted_size,
            sha256,
            upload_sha256,
            judged,
            attachment,
            caption,
            remuxed=outcome.remuxed,
        )


def _ready(
    file: IO[bytes],
    size: int,
    sha256: str,
    upload_sha256: str,
    judged: Judged,
    attachment: Attachment,
    caption: str | None,
    *,
    remuxed: bool | None = None,
) -> PreparedMedia:
    fmt = judged.format
    if judged.kind == "document":
        name = media_rules.document_filename(attachment.filename_override or attachment.filename, fmt)
    elif fmt.mime_type == OGG_OPUS and remuxed is not None:
        name = "voice-note.ogg"
    else:
        stem = media_rules.clean_filename(attachment.filename) or judged.kind
        name = stem if media_rules.extension(stem) in fmt.extensions else f"{stem}.{fmt.extensions[0]}"
    if attachment.filename_override and judged.kind == "document":
        claimed = media_rules.extension(attachment.filename_override)
        if claimed in media_rules.KNOWN_EXTENSIONS and claimed not in fmt.extensions:
            raise UnsupportedMedia(
                f"'filename' says .{claimed} but the file is a {fmt.label}.",
                code="media_type_mismatch",
                detected=fmt.mime_type,
            )
    return PreparedMedia(file, size, sha256, upload_sha256, judged, name, caption, attachment.reply_to, remuxed)


# --- sending -------------------------------------------------------------------------------------


def send_media(
    conversation_id: int, agent_id: int, media: PreparedMedia, idempotency: Idempotency | None = None
) -> SendOutcome | KeptAnswer:
    """Keep the file, store the message pending, upload it, send it by id, record the outcome.

    With an Idempotency-Key a replay returns the first answer (a `KeptAnswer`) and nothing is
    stored or uploaded again; a refusal is kept on the key as for text.
    """
    # A replay, or a conversation that cannot take the file now: answered before the file is kept.
    claim: _Claim | None = None
    if idempotency is not None:
        claimed = _claim_key(agent_id, idempotency.key, idempotency.request_hash)
        if isinstance(claimed, KeptAnswer):
            return claimed
        claim = _Claim(claimed, idempotency.render)
    try:
        _checked_target(conversation_id, media.reply_to, lock=False)
    except DomainError as refused:
        _keep(claim, refused)
        db.session.commit()
        raise
    message_id = int(db.session.execute(RESERVE_ID).scalar_one())
    db.session.rollback()  # nothing kept yet (the key is claimed for real below); the id stays reserved

    key = storage_key(message_id, media.sha256)
    media.file.seek(0)
    try:
        media_storage().put(key, media.file, size=media.size, content_type=media.judged.content_type)  # type: ignore[arg-type]
    except StorageError as exc:
        log.warning("outbound media could not be stored: %s", exc)
        raise StorageUnavailable(
            "The file could not be kept in the media storage; nothing was sent. Try again."
        ) from exc

    try:
        stored = _store_pending(conversation_id, agent_id, media, message_id, key, idempotency)
    except BaseException:
        _forget(key)
        raise
    if isinstance(stored, KeptAnswer):  # the same key won meanwhile by another request
        _forget(key)
        return stored
    phone_number_id, payload, claim = stored
    upload = StoredMedia(
        payload=payload,
        storage_key=key,
        size=media.size,
        mime_type=media.judged.format.mime_type,
        filename=media.filename,
        local=media.file,
    )
    return _deliver_media(message_id, agent_id, phone_number_id, upload, claim)


def _forget(key: str) -> None:
    try:
        media_storage().delete(key)
    except StorageError as exc:
        log.warning("an unsent file was left in storage (%s): %s", key, exc)


def _checked_target(conversation_id: int, reply_to: int | None, *, lock: bool) -> tuple[_Target, str | None]:
    """The conversation, if it can take media now (its window open), and the quoted message's wamid."""
    target = _load_target(conversation_id, lock=lock)
    if not target.wa_id:
        raise Conflict(
            "This contact has no WhatsApp number (only a username id); replying to it is not supported yet.",
            code="contact_unreachable",
        )
    if not window_open(target.conversation.last_customer_message_at):
        raise _window_refusal(target.conversation)
    reply_wamid = None
    if reply_to is not None:
        reply_wamid = db.session.execute(
            select(Message.wamid).where(Message.id == reply_to, Message.conversation_id == conversation_id)
        ).scalar()
        if not reply_wamid:
            raise Invalid("'reply_to' must be the id of a message in this conversation.", field="reply_to")
    return target, reply_wamid


def _store_pending(
    conversation_id: int,
    agent_id: int,
    media: PreparedMedia,
    message_id: int,
    key: str,
    idempotency: Idempotency | None,
) -> tuple[str, dict[str, Any], _Claim | None] | KeptAnswer:
    claim: _Claim | None = None
    if idempotency is not None:
        claimed = _claim_key(agent_id, idempotency.key, idempotency.request_hash)
        if isinstance(claimed, KeptAnswer):
            return claimed
        claim = _Claim(claimed, idempotency.render)
    try:
        target, reply_wamid = _checked_target(conversation_id, media.reply_to, lock=True)
    except DomainError as refused:  # the window closed in the meantime
        _keep(claim, refused)
        db.session.commit()
        raise
    payload: dict[str, Any] = {
        "to": target.wa_id,
        **media_rules.media_payload(media.kind, caption=media.caption, filename=media.filename, voice=media.voice),
    }
    if reply_wamid:
        payload["context"] = {"message_id": reply_wamid}
    fmt = media.judged.format
    now = datetime.now(UTC)
    message = Message(
        id=message_id,
        conversation_id=conversation_id,
        direction="out",
        sender="agent",
        agent_id=agent_id,
        type=media.kind,
        text=media.caption,
        reply_to_wamid=reply_wamid,
        sent_at=now,
        status="pending",
        media_mime_type=media.judged.content_type,
        media_filename=media.filename,
        media_state="stored",
        media_storage_key=key,
        media_stored_sha256=media.sha256,
        media_size=media.size,
        media_content_type=media.judged.content_type,
        media_stored_at=now,
        payload=payload,
    )
    db.session.add(message)
    db.session.flush()
    touch_conversation(
        db.session,
        conversation_id,
        message_id,
        message_type=media.kind,
        sender="agent",
        direction="out",
        sent_at=now,
        agent_id=agent_id,
    )
    if claim is not None:
        db.session.execute(
            update(IdempotencyKey).where(IdempotencyKey.id == claim.key_id).values(message_id=message_id)
        )
    db.session.commit()
    log.info("outbound %s %s stored (%d bytes, %s)", fmt.label, message_id, media.size, key)
    return target.phone_number_id, payload, claim

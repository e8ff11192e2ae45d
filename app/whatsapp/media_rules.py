"""What WhatsApp accepts as an agent's attachment, in one place: the types, their size limits,
how a file's type is judged from its content, and the send-by-id payloads.

Pure code (no Flask, no database). The type is judged by the content, never by the file's name
or the browser's Content-Type: `filetype` (pure Python, no libmagic) reads the magic bytes, and
this module looks further where WhatsApp's rules need it (an Ogg file's codec, an animated WebP,
a 3GP brand, plain text). A name whose extension says another type is refused as mislabelled.

| WhatsApp type | formats                                          | at most              |
|---------------|--------------------------------------------------|----------------------|
| image         | JPEG, PNG                                        | 5 MB                 |
| video         | MP4, 3GP (H.264 video; no sound or one AAC track) | 16 MB               |
| audio         | AAC, AMR, MP3, M4A, OGG (Opus only)              | 16 MB                |
| document      | PDF, TXT, DOC(X), XLS(X), PPT(X)                 | 100 MB               |
| sticker       | WebP, 512 × 512 pixels                           | 100 KB / 500 KB anim |

A voice note recorded by Chromium arrives as WebM with Opus: it is accepted as audio (16 MB) and
converted to OGG/Opus before it is stored (`app/whatsapp/voice_notes.py`); WebM video is not.
MB and KB are binary here (MiB, KiB), and every refusal names the limit in bytes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import filetype

KB = 1024
MB = 1024 * 1024

# How much of the start of a file the classification reads.
HEAD_BYTES = 64 * KB

MAX_CAPTION_CHARS = 1024  # Graph's limit on a media caption
MAX_FILENAME_CHARS = 240

# The largest upload anything may be (documents); the request ceiling adds room for the form.
MAX_UPLOAD_BYTES = 100 * MB

WEBM = "audio/webm"  # a browser's recording: converted to OGG/Opus, never sent as is
OGG_OPUS = "audio/ogg"


@dataclass(frozen=True)
class Format:
    """One accepted format: its WhatsApp message type, MIME type, limit and file extensions
    (the first is the one given to a name that has none)."""

    kind: str
    mime_type: str
    label: str
    limit: int
    extensions: tuple[str, ...]
    caption: bool = True


IMAGE_LIMIT = 5 * MB
STICKER_PIXELS = (512, 512)  # static and animated alike
# What WhatsApp plays in an MP4 or 3GP (checked by app/whatsapp/media_probe.py): H.264 video and,
# if there is sound, one AAC stream.
VIDEO_CODECS = ("h264",)
VIDEO_AUDIO_CODECS = ("aac",)
VIDEO_LIMIT = 16 * MB
AUDIO_LIMIT = 16 * MB
DOCUMENT_LIMIT = 100 * MB
STICKER_LIMIT = 100 * KB
ANIMATED_STICKER_LIMIT = 500 * KB

_FORMATS = (
    Format("image", "image/jpeg", "JPEG image", IMAGE_LIMIT, ("jpg", "jpeg", "jpe", "jfif")),
    Format("image", "image/png", "PNG image", IMAGE_LIMIT, ("png",)),
    Format("video", "video/mp4", "MP4 video", VIDEO_LIMIT, ("mp4", "m4v")),
    Format("video", "video/3gpp", "3GP video", VIDEO_LIMIT, ("3gp", "3gpp", "3g2")),
    Format("audio", "audio/aac", "AAC audio", AUDIO_LIMIT, ("aac",), caption=False),
    Format("audio", "audio/amr", "AMR audio", AUDIO_LIMIT, ("amr",), caption=False),
    Format("audio", "audio/mpeg", "MP3 audio", AUDIO_LIMIT, ("mp3", "mpga"), caption=False),
    Format("audio", "audio/mp4", "M4A audio", AUDIO_LIMIT, ("m4a", "mp4"), caption=False),
    Format("audio", OGG_OPUS, "OGG/Opus audio", AUDIO_LIMIT, ("ogg", "oga", "opus"), caption=False),
    Format("audio", WEBM, "WebM/Opus recording", AUDIO_LIMIT, ("webm", "weba"), caption=False),
    Format("document", "application/pdf", "PDF document", DOCUMENT_LIMIT, ("pdf",)),
    Format("document", "text/plain", "text document", DOCUMENT_LIMIT, ("txt",)),
    Format("document", "application/msword", "Word document", DOCUMENT_LIMIT, ("doc", "dot")),
    Format(
        "document",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "Word document",
        DOCUMENT_LIMIT,
        ("docx",),
    ),
    Format("document", "application/vnd.ms-excel", "Excel workbook", DOCUMENT_LIMIT, ("xls",)),
    Format(
        "document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "Excel workbook",
        DOCUMENT_LIMIT,
        ("xlsx",),
    ),
    Format("document", "application/vnd.ms-powerpoint", "PowerPoint presentation", DOCUMENT_LIMIT, ("ppt", "pps")),
    Format(
        "document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "PowerPoint presentation",
        DOCUMENT_LIMIT,
        ("pptx",),
    ),
    Format("sticker", "image/webp", "WebP sticker", STICKER_LIMIT, ("webp",), caption=False),
)
FORMATS: dict[str, Format] = {f.mime_type: f for f in _FORMATS}
ANIMATED_STICKER = Format(
    "sticker", "image/webp", "animated WebP sticker", ANIMATED_STICKER_LIMIT, ("webp",), caption=False
)
# Every extension some accepted format claims: a name with one of these must match the content.
KNOWN_EXTENSIONS = frozenset(e for f in _FORMATS for e in f.extensions)

# For the README and the API's documentation: each type's formats and limit.
LIMITS: tuple[tuple[str, str, int], ...] = (
    ("image", "JPEG, PNG", IMAGE_LIMIT),
    ("video", "MP4, 3GP", VIDEO_LIMIT),
    ("audio", "AAC, AMR, MP3, M4A, OGG/Opus (a WebM/Opus recording is converted to OGG/Opus)", AUDIO_LIMIT),
    ("document", "PDF, TXT, DOC, DOCX, XLS, XLSX, PPT, PPTX", DOCUMENT_LIMIT),
    ("sticker", "WebP (static)", STICKER_LIMIT),
    ("sticker", "WebP (animated)", ANIMATED_STICKER_LIMIT),
)


class Refused(Exception):
    """The file cannot be sent. `reason` is `empty`, `unsupported`, `mismatch` or `too_large`;
    `facts` are what the answer may add (limit, size, detected type)."""

    def __init__(self, reason: str, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.facts = facts


@dataclass(frozen=True)
class Judged:
    """What a file is, judged from its content."""

    format: Format
    # The MIME type Graph is told (with the codec for Ogg: `audio/ogg; codecs=opus`).
    content_type: str

    @property
    def kind(self) -> str:
        return self.format.kind

    @property
    def needs_conversion(self) -> bool:
        return self.format.mime_type == WEBM


def human_size(size: int) -> str:
    """`5 MB`, `100 KB`, `1.5 MB`: how a limit is written in messages."""
    if size >= MB:
        value, unit = size / MB, "MB"
    elif size >= KB:
        value, unit = size / KB, "KB"
    else:
        return f"{size} bytes"
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


# --- judging the content (the first HEAD_BYTES of the file) ------------------------------------

_MKV_DOCTYPE = re.compile(rb"\x42\x82[\x80-\xff](webm|matroska)")


def _iso_brand(head: bytes) -> bytes | None:
    return head[8:12] if len(head) >= 12 and head[4:8] == b"ftyp" else None


def _ogg_codec(head: bytes) -> str | None:
    """The codec of an Ogg file's first stream: 'opus', 'vorbis', … (from its first packet)."""
    if not head.startswith(b"OggS") or len(head) < 28:
        return None
    segments = head[26]
    packet = head[27 + segments : 27 + segments + 16]
    if packet.startswith(b"OpusHead"):
        return "opus"
    if packet.startswith(b"\x01vorbis"):
        return "vorbis"
    if packet.startswith(b"\x7fFLAC"):
        return "flac"
    if packet.startswith(b"\x80theora"):
        return "theora"
    return "unknown"


def _webp_animated(head: bytes) -> bool:
    """An extended WebP (VP8X) with the animation flag set."""
    return head[12:16] == b"VP8X" and len(head) > 20 and bool(head[20] & 0x02)


def webp_size(head: bytes) -> tuple[int, int] | None:
    """A WebP's canvas in pixels, from its first chunk's header (RFC 9649): VP8X (extended, and
    every animated one), VP8L (lossless) or VP8 (lossy); None when it cannot be read."""
    chunk, body = head[12:16], head[20:]
    if chunk == b"VP8X" and len(body) >= 10:
        return 1 + int.from_bytes(body[4:7], "little"), 1 + int.from_bytes(body[7:10], "little")
    if chunk == b"VP8L" and len(body) >= 5 and body[0] == 0x2F:
        bits = int.from_bytes(body[1:5], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
        return int.from_bytes(body[6:8], "little") & 0x3FFF, int.from_bytes(body[8:10], "little") & 0x3FFF
    return None


# Control bytes that do not occur in text (as file(1) judges it): NUL, most C0 controls.
_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def _looks_like_text(head: bytes) -> bool:
    return bool(head) and _BINARY.search(head) is None


def _detected(head: bytes) -> tuple[str | None, str | None]:
    """The MIME type the content shows (None: unknown) and a refinement (an Ogg codec)."""
    if head.startswith(b"OggS"):
        return "application/ogg", _ogg_codec(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        doctype = _MKV_DOCTYPE.search(head[:64])
        return ("video/webm" if doctype and doctype.group(1) == b"webm" else "video/x-matroska"), None
    brand = _iso_brand(head)
    if brand is not None and brand.startswith((b"3gp", b"3g2")):
        return "video/3gpp", None
    if brand in (b"M4A ", b"M4B "):
        return "audio/mp4", None
    guess = filetype.guess_mime(head)
    if guess is None and _looks_like_text(head):
        return "text/plain", None
    return guess, None


def extension(filename: str | None) -> str | None:
    if not filename or "." not in filename:
        return None
    return filename.rsplit(".", 1)[1].strip().lower() or None


def judge(head: bytes, size: int, filename: str | None) -> Judged:
    """What the file is and whether WhatsApp takes it, or `Refused` (empty, an unknown or
    refused type, a name that says another type, too large). `head` is the file's first
    HEAD_BYTES (or all of it), `size` its length."""
    if size == 0:
        raise Refused("empty", "The file is empty.")
    detected, codec = _detected(head)
    fmt = _format_of(detected, codec, head, filename)
    claimed = extension(filename)
    if claimed in KNOWN_EXTENSIONS and claimed not in fmt.extensions:
        raise Refused(
            "mismatch",
            f"The file's name says .{claimed} but its content is a {fmt.label}: rename it or choose the right file.",
            detected=fmt.mime_type,
        )
    if size > fmt.limit:
        raise Refused(
            "too_large",
            f"WhatsApp accepts a {fmt.label} of at most {human_size(fmt.limit)}; this file is {human_size(size)}.",
            limit_bytes=fmt.limit,
            size=size,
            media_type=fmt.kind,
        )
    if fmt.kind == "sticker":
        dimensions = webp_size(head)
        if dimensions != STICKER_PIXELS:
            shown = f"{dimensions[0]} × {dimensions[1]}" if dimensions else "of unknown size"
            raise Refused(
                "dimensions",
                f"WhatsApp takes stickers of exactly {STICKER_PIXELS[0]} × {STICKER_PIXELS[1]} pixels; this one is "
                f"{shown}. Send it as an image instead, or resize it.",
                width=dimensions[0] if dimensions else None,
                height=dimensions[1] if dimensions else None,
            )
    content_type = "audio/ogg; codecs=opus" if fmt.mime_type == OGG_OPUS else fmt.mime_type
    return Judged(fmt, content_type)


def _format_of(detected: str | None, codec: str | None, head: bytes, filename: str | None) -> Format:
    if detected == "application/ogg":
        if codec == "opus":
            return FORMATS[OGG_OPUS]
        raise Refused(
            "unsupported",
            f"WhatsApp accepts OGG audio only with the Opus codec; this file is OGG/{codec or 'unknown'}.",
            detected=f"application/ogg; codecs={codec}",
        )
    if detected == "video/webm":
        # Audio or video cannot be told from the header: the conversion looks at the streams and
        # refuses video (app/whatsapp/voice_notes.py).
        return FORMATS[WEBM]
    if detected == "image/webp":
        return ANIMATED_STICKER if _webp_animated(head) else FORMATS["image/webp"]
    if detected == "text/plain" and extension(filename) != "txt":
        raise Refused(
            "unsupported",
            "Plain text is sent only as a .txt document; other text files (HTML, CSV, SVG…) are not accepted.",
            detected="text/plain",
        )
    fmt = FORMATS.get(detected or "")
    if fmt is None or fmt.mime_type == WEBM:
        shown = detected or "an unknown type"
        raise Refused(
            "unsupported",
            f"WhatsApp does not accept this file ({shown}). Images: JPEG, PNG; video: MP4, 3GP; audio: AAC, AMR, "
            "MP3, M4A, OGG/Opus; documents: PDF, TXT, Word, Excel, PowerPoint; stickers: WebP.",
            detected=detected,
        )
    return fmt


# --- names and captions -----------------------------------------------------------------------

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\\"]+")


def clean_filename(name: str | None) -> str | None:
    """A file name as the customer will see it: no path, quotes or control characters, bounded."""
    if not name:
        return None
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join("_" if unicodedata.category(c)[0] == "C" else c for c in name)
    name = _UNSAFE.sub("_", name).strip(" ._")
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        name = stem[: MAX_FILENAME_CHARS - len(ext) - 1] + "." + ext if dot and len(ext) <= 10 else name[:240]
    return name or None


def document_filename(name: str | None, fmt: Format) -> str:
    """The name a document is sent with: the given one, with the format's extension when it has
    none (a PDF called `factura` arrives as `factura.pdf`)."""
    cleaned = clean_filename(name) or "document"
    if extension(cleaned) not in fmt.extensions:
        cleaned = f"{cleaned}.{fmt.extensions[0]}"
    return cleaned


# --- what Graph is sent ------------------------------------------------------------------------


def media_payload(kind: str, *, caption: str | None, filename: str | None, voice: bool) -> dict[str, Any]:
    """The message object stored with the pending message, before the file is uploaded:
    `{"type": "image", "image": {"caption": …}}`. The media id is added at send time."""
    body: dict[str, Any] = {}
    if caption and kind in ("image", "video", "document"):
        body["caption"] = caption
    if kind == "document" and filename:
        body["filename"] = filename
    if kind == "audio" and voice:
        body["voice"] = True  # WhatsApp shows it as a voice message (OGG/Opus only)
    return {"type": kind, kind: body}


def send_by_id(payload: dict[str, Any], media_id: str) -> dict[str, Any]:
    """The stored payload with the uploaded media id: `{"type": "image", "image": {"id", …}}`."""
    kind = payload["type"]
    return {**payload, kind: {"id": media_id, **payload.get(kind, {})}}

"""What is inside an agent's video: WhatsApp plays an MP4 or 3GP only with H.264 video and, if it
has sound, a single AAC track (an iPhone's HEVC clip or an MPEG-4 Part 2 3GP is refused by Meta
after the upload). The magic bytes (app/whatsapp/media_rules.py) cannot tell: PyAV reads the
container's stream headers (no decoding) and this module checks them against the rule there.

No Flask, no database: a file in, a `Refused` or nothing out.
"""

from __future__ import annotations

import logging
from typing import IO

from app.whatsapp.media_rules import VIDEO_AUDIO_CODECS, VIDEO_CODECS, Refused

log = logging.getLogger(__name__)

_NAMES = {
    "h264": "H.264",
    "hevc": "HEVC (H.265)",
    "mpeg4": "MPEG-4 Part 2",
    "aac": "AAC",
    "mp3": "MP3",
    "mp3float": "MP3",
}


def _name(codec: str) -> str:
    return _NAMES.get(codec, codec)


def check_video(source: IO[bytes], mime_type: str) -> None:
    """`Refused` unless `source` has one H.264 video stream and at most one AAC audio stream."""
    # PyAV loads FFmpeg's libraries (~30 MB resident): imported only when a video is sent, so
    # processes that never send one do not pay for it (not a dodged cycle).
    import av

    try:
        with av.open(source, mode="r") as container:
            video = [stream.codec_context.name for stream in container.streams.video]
            audio = [stream.codec_context.name for stream in container.streams.audio]
    except av.FFmpegError as exc:
        log.info("a video could not be read: %s", exc)
        raise Refused("unsupported", "The video could not be read.", detected=mime_type) from exc
    finally:
        source.seek(0)
    wanted = f"WhatsApp plays {_name(VIDEO_CODECS[0])} video with no sound or one {_name(VIDEO_AUDIO_CODECS[0])} track"
    if len(video) != 1 or video[0] not in VIDEO_CODECS:
        found = ", ".join(_name(codec) for codec in video) or "no video"
        raise Refused(
            "unsupported",
            f"{wanted}; this file has {found}. Convert it, or send it as a document.",
            detected=mime_type,
            video_codecs=video,
            audio_codecs=audio,
        )
    if len(audio) > 1 or any(codec not in VIDEO_AUDIO_CODECS for codec in audio):
        found = ", ".join(_name(codec) for codec in audio)
        raise Refused(
            "unsupported",
            f"{wanted}; this file's sound is {found}. Convert it, or send it as a document.",
            detected=mime_type,
            video_codecs=video,
            audio_codecs=audio,
        )

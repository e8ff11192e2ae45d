"""Voice notes: what a browser records (WebM with Opus, Chromium's MediaRecorder) becomes the OGG/Opus
file WhatsApp plays as a voice message.

PyAV (FFmpeg's libraries, bundled in its wheels: nothing to install on the machine) does it. When
the recording is one mono Opus stream, its packets are copied into an Ogg container as they are
(a remux: no re-encoding, no loss, a few milliseconds); anything else (stereo, another codec) is
decoded and encoded again as mono Opus at 48 kHz. A WebM with a video track is refused: WhatsApp
takes no WebM video.

No Flask, no database: file in, file out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import IO, Any

from app.whatsapp.media_rules import Refused

log = logging.getLogger(__name__)

VOICE_RATE = 48_000
VOICE_BIT_RATE = 32_000  # WhatsApp's own voice notes are around 16–32 kb/s mono Opus
FRAME_SAMPLES = 960  # 20 ms at 48 kHz, Opus's usual frame


@dataclass(frozen=True)
class Converted:
    remuxed: bool  # True: the Opus packets were copied; False: re-encoded
    codec: str  # the recording's codec
    channels: int


def to_ogg_opus(source: IO[bytes], target: IO[bytes]) -> Converted:
    """Write `source` (a WebM recording) to `target` as OGG/Opus; `Refused` when it has video, no
    audio, or cannot be read."""
    # PyAV loads FFmpeg's libraries (~30 MB resident): imported only when a recording arrives, so
    # processes that never convert one do not pay for it (not a dodged cycle).
    import av

    try:
        with av.open(source, mode="r") as recording:
            if recording.streams.video:
                raise Refused(
                    "unsupported",
                    "WebM video is not accepted: WhatsApp takes MP4 or 3GP video. Only WebM voice recordings "
                    "(audio only) are converted.",
                    detected="video/webm",
                )
            if len(recording.streams.audio) != 1:
                raise Refused("unsupported", "The recording has no audio track.", detected="video/webm")
            stream = recording.streams.audio[0]
            codec = stream.codec_context.name
            channels = stream.codec_context.channels
            with av.open(target, mode="w", format="ogg") as ogg:
                if codec == "opus" and channels == 1:
                    _remux(recording, stream, ogg)
                    return Converted(remuxed=True, codec=codec, channels=channels)
                _reencode(av, recording, stream, ogg)
                return Converted(remuxed=False, codec=codec, channels=channels)
    except av.FFmpegError as exc:
        log.info("a recording could not be converted: %s", exc)
        raise Refused("unsupported", "The recording could not be read as WebM audio.", detected="video/webm") from exc


def _remux(recording: Any, stream: Any, ogg: Any) -> None:
    out = ogg.add_stream_from_template(stream)
    for packet in recording.demux(stream):
        if packet.dts is None:  # the demuxer's final empty packet
            continue
        packet.stream = out
        ogg.mux(packet)


def _reencode(av: Any, recording: Any, stream: Any, ogg: Any) -> None:
    out = ogg.add_stream("libopus", rate=VOICE_RATE, layout="mono")
    out.bit_rate = VOICE_BIT_RATE
    resampler = av.AudioResampler(format="s16", layout="mono", rate=VOICE_RATE, frame_size=FRAME_SAMPLES)
    for frame in recording.decode(stream):
        for piece in resampler.resample(frame):
            for packet in out.encode(piece):
                ogg.mux(packet)
    for piece in resampler.resample(None):
        for packet in out.encode(piece):
            ogg.mux(packet)
    for packet in out.encode(None):
        ogg.mux(packet)

"""Small real media files for the tests, made on the spot with PyAV (FFmpeg's encoders and muxers,
bundled in its wheels) and the standard library: what a browser records, a camera, an office."""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib

import av


def _tone(samples: int, rate: int, channels: int) -> bytes:
    mono = [int(6000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(samples)]
    return b"".join(struct.pack("<" + "h" * channels, *([s] * channels)) for s in mono)


def audio(container: str, codec: str, *, rate: int = 48_000, layout: str = "mono", seconds: float = 0.5) -> bytes:
    """A tone encoded with `codec` in `container` (`webm`+`libopus` is what Chromium records)."""
    channels = 2 if layout == "stereo" else 1
    total = int(rate * seconds)
    pcm = _tone(total, rate, channels)
    out = io.BytesIO()
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=rate, layout=layout)
        step = 960
        for start in range(0, total, step):
            count = min(step, total - start)
            frame = av.AudioFrame(format="s16", layout=layout, samples=count)
            chunk = pcm[start * 2 * channels : (start + count) * 2 * channels]
            frame.planes[0].update(chunk.ljust(frame.planes[0].buffer_size, b"\0"))
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                muxer.mux(packet)
        for packet in stream.encode():
            muxer.mux(packet)
    return out.getvalue()


def voice_recording(*, layout: str = "mono", seconds: float = 0.5) -> bytes:
    """WebM with one Opus track, as Chromium's MediaRecorder makes it."""
    return audio("webm", "libopus", layout=layout, seconds=seconds)


def video(
    container: str = "mp4",
    codec: str = "libx264",
    *,
    frames: int = 5,
    pix: str = "yuv420p",
    width: int = 64,
    height: int = 48,
    sound: tuple[str, ...] = (),
) -> bytes:
    """`frames` frames of `codec` video in `container`, with one audio track per codec in `sound`."""
    out = io.BytesIO()
    with av.open(out, "w", format=container) as muxer:
        stream = muxer.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, pix
        tracks = [muxer.add_stream(name, rate=44_100, layout="mono") for name in sound]
        for i in range(frames):
            frame = av.VideoFrame(width, height, "rgb24")
            frame.planes[0].update(bytes([(i * 40) % 256, 100, 200]) * (frame.planes[0].buffer_size // 3))
            frame = frame.reformat(format=pix)
            frame.pts = i
            for packet in stream.encode(frame):
                muxer.mux(packet)
        for packet in stream.encode():
            muxer.mux(packet)
        for track in tracks:
            size = track.codec_context.frame_size or 1152
            pcm = _tone(size * 4, 44_100, 1)
            for n in range(4):
                sound_frame = av.AudioFrame(format="s16", layout="mono", samples=size)
                sound_frame.planes[0].update(
                    pcm[n * size * 2 : (n + 1) * size * 2].ljust(sound_frame.planes[0].buffer_size, b"\0")
                )
                sound_frame.sample_rate = 44_100
                sound_frame.pts = n * size
                for packet in track.encode(sound_frame):
                    muxer.mux(packet)
            for packet in track.encode():
                muxer.mux(packet)
    return out.getvalue()


def jpeg() -> bytes:
    return video("mjpeg", "mjpeg", frames=1, pix="yuvj420p")


def webp(*, animated: bool = False, size: int = 512, lossless: bool = False) -> bytes:
    """A sticker (WhatsApp takes 512 × 512 pixels only): lossy (a `VP8 ` chunk), lossless (`VP8L`)
    or animated (`VP8X`)."""
    if lossless:
        out = io.BytesIO()
        with av.open(out, "w", format="webp") as muxer:
            stream = muxer.add_stream("libwebp", rate=10, options={"lossless": "1"})
            stream.width, stream.height, stream.pix_fmt = size, size, "bgra"
            frame = av.VideoFrame(size, size, "rgb24").reformat(format="bgra")
            frame.pts = 0
            for packet in [*stream.encode(frame), *stream.encode()]:
                muxer.mux(packet)
        return out.getvalue()
    if animated:
        return video("webp", "libwebp_anim", frames=3, pix="yuva420p", width=size, height=size)
    return video("webp", "libwebp", frames=1, width=size, height=size)


def png(width: int = 4, height: int = 4) -> bytes:
    raw = b"".join(b"\0" + b"\xff\x00\x00" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def pdf(pages: int = 1) -> bytes:
    body = "".join(f"{n + 1} 0 obj<</Type/Page>>endobj\n" for n in range(pages))
    return f"%PDF-1.7\n{body}%%EOF\n".encode()


def docx() -> bytes:
    part, kind = "word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Override PartName="/{part}" ContentType="{kind}"/></Types>',
        )
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr(part, "<w:document/>")
    return out.getvalue()

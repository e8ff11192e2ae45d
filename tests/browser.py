"""Real headless Chromium for the browser tests (Debian's `chromium`, driven by Playwright).

Playwright never downloads a browser here: it launches /usr/bin/chromium by path. When the
binary is missing the tests fail with an install hint, unless SKIP_BROWSER_TESTS=1 asks to skip
them (`make test` installs Chromium itself where it runs as root with apt).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--mute-audio",
]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
INSTALL_HINT = (
    f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), "
    "or set SKIP_BROWSER_TESTS=1 to skip the browser tests"
)


def skip_requested() -> bool:
    return os.environ.get("SKIP_BROWSER_TESTS", "").strip().lower() in ("1", "true", "yes")


@contextmanager
def launched_chromium(extra_args: tuple[str, ...] = ()) -> Iterator[Any]:
    """Debian's Chromium, headless, for one test module (its `browser` fixture)."""
    from playwright.sync_api import sync_playwright  # imported here: only the browser tests need it

    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        args = [*CHROMIUM_ARGS, *extra_args]
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def require_chromium() -> None:
    if skip_requested():
        pytest.skip("SKIP_BROWSER_TESTS is set")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(INSTALL_HINT, pytrace=False)


def png(width: int, height: int) -> bytes:
    """A small gradient PNG made here (no file, no download): a customer's "photo"."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            rows += bytes((40 + 180 * x // width, 120 + 100 * y // height, 160 - 100 * x // width))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b"")
    )

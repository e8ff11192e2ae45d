"""Media files on the local filesystem (`MEDIA_STORAGE_PATH`, default instance/media).

Each object is written to a temporary file in the same directory, flushed to disk and renamed
into place, so a reader never sees half a file and a crash leaves at most a `.tmp` behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from app.storage.base import CHUNK_SIZE, StorageError, StoredObject, StoredObjectMissing


class LocalStorage:
    name = "filesystem"

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(part in ("", ".", "..") for part in parts) or "\\" in key or "\x00" in key:
            raise StorageError(f"unsafe storage key {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, data: BinaryIO, *, size: int, content_type: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(data, out, CHUNK_SIZE)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"could not write {key}: {exc}") from exc

    def open_range(self, key: str, start: int, stop: int) -> Iterable[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise StoredObjectMissing(key) from exc
        except OSError as exc:
            raise StorageError(f"could not read {key}: {exc}") from exc
        return FileChunks(handle, start, stop)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"could not delete {key}: {exc}") from exc

    def listing(self, prefix: str) -> Iterator[StoredObject]:
        top = self._path(prefix.rstrip("/"))
        try:
            for directory, _, files in os.walk(top):
                for name in files:
                    path = Path(directory, name)
                    modified = datetime.fromtimestamp(path.lstat().st_mtime, UTC)
                    yield StoredObject(path.relative_to(self.root).as_posix(), modified)
        except OSError as exc:
            raise StorageError(f"could not list {prefix}: {exc}") from exc


class FileChunks:
    """Bytes [start, stop) of an open file as a WSGI iterable: `close()` releases the file even
    when the body is never iterated (a HEAD request, a client gone before the first byte)."""

    def __init__(self, handle: BinaryIO, start: int, stop: int) -> None:
        self._handle = handle
        self._start = start
        self._stop = stop

    def __iter__(self) -> Iterator[bytes]:
        try:
            self._handle.seek(self._start)
            left = self._stop - self._start
            while left > 0:
                chunk = self._handle.read(min(CHUNK_SIZE, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self._handle.close()

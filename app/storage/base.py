"""The storage interface both backends implement."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

CHUNK_SIZE = 64 * 1024


class StorageError(Exception):
    """The store could not be reached or refused the operation."""


class StoredObjectMissing(StorageError):
    """No object under that key (deleted behind our back, or a wrong bucket)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    modified_at: datetime  # aware, UTC


class MediaStorage(Protocol):
    name: str

    def put(self, key: str, data: BinaryIO, *, size: int, content_type: str) -> None:
        """Store `size` bytes read from `data` under `key`, atomically (all or nothing)."""
        ...

    def open_range(self, key: str, start: int, stop: int) -> Iterable[bytes]:
        """The bytes [start, stop) of the object, in chunks; raises StoredObjectMissing."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""
        ...

    def listing(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with `prefix` (a half-written temporary file included),
        in no particular order; raises StorageError."""
        ...

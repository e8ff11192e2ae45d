"""Where our copies of media files live: the local filesystem (default) or an S3-compatible
object store (AWS S3, Cloudflare R2, Backblaze B2, MinIO…) when `MEDIA_S3_BUCKET` is set.

Both backends store immutable objects under a key and read them back whole or by byte range
(`Range` requests). `media_storage()` builds the configured one once per app.
"""

from __future__ import annotations

from flask import Flask, current_app

from app.storage.base import MediaStorage, StorageError, StoredObjectMissing
from app.storage.local import LocalStorage

__all__ = ["LocalStorage", "MediaStorage", "StorageError", "StoredObjectMissing", "media_storage"]


def build_storage(config: dict[str, object] | Flask) -> MediaStorage:
    settings = config.config if isinstance(config, Flask) else config
    bucket = settings.get("MEDIA_S3_BUCKET")
    if bucket:
        # Imported only when a bucket is configured: boto3 adds ~7 MB to every process, and
        # the service runs in 512 MB (not a dodged cycle: s3.py imports nothing of app/).
        from app.storage.s3 import S3Storage

        return S3Storage(
            bucket=str(bucket),
            prefix=str(settings.get("MEDIA_S3_PREFIX") or ""),
            endpoint_url=_str_or_none(settings.get("MEDIA_S3_ENDPOINT_URL")),
            region=_str_or_none(settings.get("MEDIA_S3_REGION")),
            access_key_id=_str_or_none(settings.get("MEDIA_S3_ACCESS_KEY_ID")),
            secret_access_key=_str_or_none(settings.get("MEDIA_S3_SECRET_ACCESS_KEY")),
        )
    return LocalStorage(str(settings["MEDIA_STORAGE_PATH"]))


def _str_or_none(value: object) -> str | None:
    return str(value) if value else None


_KEYS = (
    "MEDIA_STORAGE_PATH",
    "MEDIA_S3_BUCKET",
    "MEDIA_S3_PREFIX",
    "MEDIA_S3_ENDPOINT_URL",
    "MEDIA_S3_REGION",
    "MEDIA_S3_ACCESS_KEY_ID",
    "MEDIA_S3_SECRET_ACCESS_KEY",
)


def media_storage() -> MediaStorage:
    """The current app's storage, built again when its settings change (tests switch backends)."""
    key = tuple(current_app.config.get(name) for name in _KEYS)
    cached = current_app.extensions.get("media_storage")
    if cached is not None and cached[0] == key:
        storage: MediaStorage = cached[1]
        return storage
    storage = build_storage(current_app)
    current_app.extensions["media_storage"] = (key, storage)
    return storage

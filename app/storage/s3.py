"""Media files in an S3-compatible object store, through boto3.

`MEDIA_S3_ENDPOINT_URL` points it at R2, B2, MinIO or any S3-compatible server (unset: AWS);
keys and region come from the settings or boto3's usual chain (environment, instance role).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.storage.base import CHUNK_SIZE, StorageError, StoredObject, StoredObjectMissing

_MISSING = ("NoSuchKey", "404", "NotFound")


class S3Storage:
    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}),
        )

    def _key(self, key: str) -> str:
        return self.prefix + key

    def put(self, key: str, data: BinaryIO, *, size: int, content_type: str) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, ContentLength=size, ContentType=content_type
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not store {key} in bucket {self.bucket}: {exc}") from exc

    def open_range(self, key: str, start: int, stop: int) -> Iterable[bytes]:
        if stop <= start:
            return iter(())
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{stop - 1}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise StoredObjectMissing(key) from exc
            raise StorageError(f"could not read {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not read {key}: {exc}") from exc
        return BodyChunks(answer["Body"])

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise StorageError(f"could not look up {key}: {exc}") from exc
        return True

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not delete {key}: {exc}") from exc

    def listing(self, prefix: str) -> Iterator[StoredObject]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix))
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    yield StoredObject(item["Key"][len(self.prefix) :], item["LastModified"].astimezone(UTC))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not list {prefix} in bucket {self.bucket}: {exc}") from exc


class BodyChunks:
    """An S3 answer's body as a WSGI iterable; `close()` returns its connection to the pool even
    when the body is never iterated."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body.iter_chunks(CHUNK_SIZE)
        finally:
            self.close()

    def close(self) -> None:
        self._body.close()

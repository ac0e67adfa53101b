"""The object store (any S3 server: MinIO in production, SeaweedFS locally) through the minio SDK.

The SDK blocks, so every call runs on a dedicated thread pool; request bodies are bridged from the
event loop to the SDK part by part, never held whole in memory or written to local disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import certifi
import urllib3
from minio import Minio
from minio.error import S3Error

T = TypeVar("T")

_READ_CHUNK = 256 * 1024


class ObjectStoreUnavailable(Exception):
    """The object store did not answer or failed; the caller should try again later."""


class ObjectTooLarge(Exception):
    """A streamed body went past the size limit it was given."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body is larger than {limit} bytes")
        self.limit = limit


class ObjectNotFound(Exception):
    """No object under that key."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class _StreamReader:
    """A blocking file-like view of an async byte stream, read from a worker thread.

    Each ``read`` pulls chunks from the event loop as needed, hashes and counts them, and stops the
    upload with :class:`ObjectTooLarge` as soon as the limit is passed.
    """

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop, max_bytes: int) -> None:
        self._chunks = chunks
        self._loop = loop
        self._max = max_bytes
        self._buf = bytearray()
        self._eof = False
        self.size = 0
        self.hash = hashlib.sha256()

    async def _next(self) -> bytes | None:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return None

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buf) < n):
            chunk = asyncio.run_coroutine_threadsafe(self._next(), self._loop).result()
            if chunk is None:
                self._eof = True
                break
            self.size += len(chunk)
            if self.size > self._max:
                raise ObjectTooLarge(self._max)
            self.hash.update(chunk)
            self._buf += chunk
        if n < 0 or n >= len(self._buf):
            out = bytes(self._buf)
            self._buf.clear()
        else:
            out = bytes(self._buf[:n])
            del self._buf[:n]
        return out


def _is_unavailable(exc: BaseException) -> bool:
    return isinstance(exc, urllib3.exceptions.HTTPError | OSError) and not isinstance(exc, S3Error)


class ObjectStore:
    """The warehouse's bucket. Callers see keys and bytes, never SDK objects."""

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str = "us-east-1",
        public_endpoint: str = "",
        part_size: int = 8 * 1024 * 1024,
        max_connections: int = 64,
        threads: int = 64,
    ) -> None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3, read=60),
            maxsize=max_connections,
            cert_reqs="CERT_REQUIRED" if secure else "CERT_NONE",
            ca_certs=certifi.where(),
            # Retry a refused connection briefly; a store that stays down is reported, not waited on.
            retries=urllib3.Retry(total=2, connect=2, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
        )
        self._client = Minio(
            endpoint=endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )
        # Presigned URLs are signed locally; with the region given the SDK makes no request for them.
        self._presigner = Minio(
            endpoint=public_endpoint or endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
        )
        self.bucket = bucket
        self.part_size = part_size
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="s3")

    async def _run(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise ObjectNotFound(str(exc)) from exc
            raise
        except ObjectTooLarge:
            raise
        except Exception as exc:
            if _is_unavailable(exc):
                raise ObjectStoreUnavailable(str(exc)) from exc
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def ensure_bucket(self) -> None:
        exists = await self._run(self._client.bucket_exists, bucket_name=self.bucket)
        if not exists:
            try:
                await self._run(self._client.make_bucket, bucket_name=self.bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    async def ping(self) -> None:
        await self._run(self._client.bucket_exists, bucket_name=self.bucket)

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, content_type: str, max_bytes: int
    ) -> StoredObject:
        """Stream ``chunks`` into ``key``, hashing on the way. Nothing is kept if it fails."""
        reader = _StreamReader(chunks, asyncio.get_running_loop(), max_bytes)
        await self._run(
            self._client.put_object,
            bucket_name=self.bucket,
            object_name=key,
            data=reader,
            length=-1,
            part_size=self.part_size,
            content_type=content_type,
            # One part in flight bounds memory per upload to about two parts.
            num_parallel_uploads=1,
        )
        return StoredObject(key=key, size=reader.size, sha256=reader.hash.hexdigest())

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        await self._run(
            self._client.put_object,
            bucket_name=self.bucket,
            object_name=key,
            data=io.BytesIO(data),
            length=len(data),
            content_type=content_type,
        )

    async def size_of(self, key: str) -> int:
        stat = await self._run(self._client.stat_object, bucket_name=self.bucket, object_name=key)
        return int(stat.size)

    async def stream(self, key: str, chunk_size: int = _READ_CHUNK) -> AsyncIterator[bytes]:
        """The object's bytes, chunk by chunk."""
        response = await self._run(self._client.get_object, bucket_name=self.bucket, object_name=key)
        try:
            while True:
                chunk: bytes = await self._run(response.read, chunk_size)
                if not chunk:
                    break
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def download(self, key: str, path: Path) -> None:
        await self._run(self._client.fget_object, bucket_name=self.bucket, object_name=key, file_path=str(path))

    async def delete(self, key: str) -> None:
        await self._run(self._client.remove_object, bucket_name=self.bucket, object_name=key)

    def presigned_url(self, key: str, *, ttl_seconds: int, filename: str) -> str:
        disposition = f"attachment; filename*=UTF-8''{quote(filename)}"
        url: str = self._presigner.presigned_get_object(
            bucket_name=self.bucket,
            object_name=key,
            expires=timedelta(seconds=ttl_seconds),
            response_headers={
                "response-content-disposition": disposition,
                "response-content-type": "application/pdf",
            },
        )
        return url

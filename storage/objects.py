"""The object store (any S3 server: MinIO in production, SeaweedFS locally) through the minio SDK.

The SDK blocks, so every call runs on a dedicated thread pool; request bodies are bridged from the
event loop to the SDK part by part, never held whole in memory or written to local disk.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import time
import zlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from uuid import uuid4
from xml.etree import ElementTree

import aiohttp
import certifi
import urllib3
from minio import Minio
from minio.credentials.credentials import Credentials
from minio.datatypes import PostPolicy
from minio.error import S3Error
from minio.signer import sign_v4_s3
from minio.time import to_amz_date

log = logging.getLogger(__name__)

_GATHER = 128 * 1024
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class StorageError(Exception):
    """What the object store layer raises; each kind below says whose fault it is."""


class ObjectStoreUnavailable(StorageError):
    """The object store did not answer or failed; the caller should try again later."""


class BodyLengthMismatch(StorageError):
    """The body was shorter or longer than the Content-Length its sender announced."""


class ObjectTooLarge(StorageError):
    """A streamed body went past the size limit it was given."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body is larger than {limit} bytes")
        self.limit = limit


class ObjectNotFound(StorageError):
    """No object under that key."""


class ObjectStoreError(StorageError):
    """The object store refused a request the warehouse made (a fault of ours, not of the caller)."""


_fetcher: urllib3.PoolManager | None = None


def fetch_signed(url: str, *, read_timeout_seconds: float, max_bytes: int) -> bytes:
    """The object behind a signed GET URL (``ObjectStore.signed_get``), read whole, synchronously.

    For the worker's child processes, which read a file straight from the store so its bytes never
    pass through the worker's event loop or a local file. The body is read into one buffer of the
    announced size (a file of ``max_bytes`` costs that much memory, not twice). The connection is kept
    for the process's next file. ``read_timeout_seconds`` bounds each wait for bytes; the caller bounds
    the whole. Raises ObjectNotFound, ObjectTooLarge past ``max_bytes``, and ObjectStoreUnavailable for
    anything else.
    """
    global _fetcher
    if _fetcher is None:
        _fetcher = urllib3.PoolManager(
            maxsize=1, ca_certs=certifi.where(), retries=urllib3.Retry(total=2, connect=2, backoff_factor=0.2)
        )
    try:
        response = _fetcher.request(
            "GET", url, preload_content=False, timeout=urllib3.Timeout(connect=3, read=read_timeout_seconds)
        )
    except urllib3.exceptions.HTTPError as exc:
        raise ObjectStoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
    try:
        try:
            if response.status == 404:
                raise ObjectNotFound(url.split("?", 1)[0])
            if response.status >= 300:
                raise ObjectStoreUnavailable(f"GET answered HTTP {response.status}")
            announced = response.headers.get("Content-Length")
            if announced is None:  # an S3 GET always says its length
                raise ObjectStoreUnavailable("GET answered without a Content-Length")
            if int(announced) > max_bytes:
                raise ObjectTooLarge(max_bytes)
            data: bytes = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ObjectStoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
    except BaseException:
        response.close()  # a connection left mid-body is never handed to the next request
        raise
    response.release_conn()
    return data


async def _exactly(body: AsyncIterator[bytes], length: int) -> AsyncIterator[bytes]:
    """The body, checked to be exactly ``length`` bytes as announced."""
    sent = 0
    async for chunk in body:
        sent += len(chunk)
        if sent > length:
            raise BodyLengthMismatch(f"the body is longer than its Content-Length ({length})")
        yield chunk
    if sent != length:
        raise BodyLengthMismatch(f"the body ended after {sent} of {length} announced bytes")


def _xml_text(document: bytes, tag: str) -> str | None:
    for element in ElementTree.fromstring(document).iter():
        if element.tag == tag or element.tag.endswith("}" + tag):
            return element.text
    return None


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class Breaker:
    """Stops asking a store that keeps failing: after ``failures`` faults in a row, every call fails at
    once for ``seconds``; then calls go through again, and the next fault opens it again at once."""

    def __init__(self, failures: int = 5, seconds: float = 10.0) -> None:
        self.failures = failures
        self.seconds = seconds
        self._count = 0
        self._open_until = 0.0

    def check(self) -> None:
        wait = self._open_until - time.monotonic()
        if wait > 0:
            raise ObjectStoreUnavailable(
                f"the object store failed {self._count} times in a row; not asked again for {wait:.0f} s"
            )

    def failed(self) -> None:
        self._count += 1
        if self._count >= self.failures:
            self._open_until = time.monotonic() + self.seconds
            log.warning("object store failing (%d faults in a row): not asked for %g s", self._count, self.seconds)

    def succeeded(self) -> None:
        self._count = 0

    @property
    def open(self) -> bool:
        return self._open_until > time.monotonic()


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
        request_seconds: float = 30.0,
        breaker: Breaker | None = None,
    ) -> None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3, read=request_seconds),
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
        self._max_connections = max_connections
        self._secure = secure
        self._public_endpoint = public_endpoint or endpoint
        self._http: aiohttp.ClientSession | None = None  # made on first use, inside the event loop
        self._request_seconds = request_seconds
        self._endpoint = endpoint
        self._region = region
        self._credentials = Credentials(access_key=access_key, secret_key=secret_key)
        self._pins: bool | None = None  # whether the store checks a POST's SHA-256 (probed once)
        self._pins_lock = asyncio.Lock()
        self.breaker = breaker or Breaker()

    async def _run(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.breaker.check()
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))
        except S3Error as exc:
            self.breaker.succeeded()  # the store answered
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise ObjectNotFound(str(exc)) from exc
            raise
        except ObjectTooLarge:
            raise
        except Exception as exc:
            if _is_unavailable(exc):
                self.breaker.failed()
                raise ObjectStoreUnavailable(str(exc)) from exc
            raise
        self.breaker.succeeded()
        return result

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def ensure_bucket(self, *, object_lock: bool = False) -> bool:
        """Create the bucket when the server lacks it (with object lock, which only a new bucket can
        have). True when it was created."""
        exists = await self._run(self._client.bucket_exists, bucket_name=self.bucket)
        if exists:
            return False
        try:
            await self._run(self._client.make_bucket, bucket_name=self.bucket, object_lock=object_lock)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
            return False
        return True

    async def configure_bucket(
        self, *, versioning: bool, abort_incomplete_days: int, noncurrent_days: int
    ) -> list[str]:
        """Versioning and lifecycle rules (stale multipart uploads, old versions), as far as the server
        supports them. Returns what could not be set, as sentences; MinIO supports all of it."""
        from minio.commonconfig import ENABLED, Filter
        from minio.lifecycleconfig import (
            AbortIncompleteMultipartUpload,
            LifecycleConfig,
            NoncurrentVersionExpiration,
            Rule,
        )
        from minio.versioningconfig import VersioningConfig

        missing: list[str] = []
        if versioning:
            try:
                await self._run(
                    self._client.set_bucket_versioning, bucket_name=self.bucket, config=VersioningConfig(ENABLED)
                )
            except S3Error as exc:
                missing.append(f"versioning ({exc.code})")
        rules = []
        if abort_incomplete_days > 0:
            rules.append(
                Rule(
                    ENABLED,
                    rule_filter=Filter(prefix=""),
                    rule_id="abort-incomplete-multipart-uploads",
                    abort_incomplete_multipart_upload=AbortIncompleteMultipartUpload(
                        days_after_initiation=abort_incomplete_days
                    ),
                )
            )
        if versioning and noncurrent_days > 0:
            rules.append(
                Rule(
                    ENABLED,
                    rule_filter=Filter(prefix=""),
                    rule_id="expire-noncurrent-versions",
                    noncurrent_version_expiration=NoncurrentVersionExpiration(noncurrent_days=noncurrent_days),
                )
            )
        if rules:
            try:
                await self._run(
                    self._client.set_bucket_lifecycle, bucket_name=self.bucket, config=LifecycleConfig(rules)
                )
            except S3Error as exc:
                missing.append(f"lifecycle rules ({exc.code})")
        return missing

    async def ping(self) -> None:
        """The store answers and holds the warehouse's bucket."""
        if not await self._run(self._client.bucket_exists, bucket_name=self.bucket):
            raise ObjectStoreError(f"the bucket {self.bucket} does not exist (run `warehouse migrate`)")

    async def check_writable(self) -> None:
        """Whether the store takes writes, not only answers: the bucket is there, and one byte is
        written as a part of a multipart upload that is then aborted (a real write to the store's disks
        that leaves no object, and no object version where versioning is on)."""
        await self.ping()
        key = "health/write-probe"
        upload_id = await self.start_multipart(key, "application/octet-stream")
        try:
            await self.put_part(key, upload_id, 1, b"\0")
        finally:
            await self.abort_multipart(key, upload_id)

    # -- the data path: signed requests streamed by an async HTTP client -------------------------
    #
    # The SDK signs each request locally (UNSIGNED-PAYLOAD, so no second hash of the bytes); the body
    # streams from the client's connection to the object store's as it arrives, with one part at
    # most held in memory. Only S3 operations that MinIO and SeaweedFS both provide are used.

    def _signed(self, method: str, key: str, query: dict[str, str] | None = None) -> str:
        params: dict[str, str | list[str] | tuple[str]] | None = dict(query) if query else None
        url: str = self._client.get_presigned_url(
            method=method,
            bucket_name=self.bucket,
            object_name=key,
            expires=timedelta(minutes=15),
            extra_query_params=params,
        )
        return url

    def signed_get(self, key: str) -> str:
        """A GET URL for the object on the store's own endpoint, valid for 15 minutes (see ``fetch_signed``)."""
        return self._signed("GET", key)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=self._secure),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=3, sock_read=self._request_seconds),
                skip_auto_headers=("Content-Type",),
            )
        return self._http

    async def _request(
        self,
        method: str,
        key: str,
        *,
        query: dict[str, str] | None = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
        url: str | None = None,
    ) -> _Answer:
        self.breaker.check()
        try:
            async with self._session().request(
                method, url or self._signed(method, key, query), data=content, headers=headers
            ) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                # The store has this long to answer once the request is sent (a body that streams in
                # from a slow client is paced by the client, not timed here).
                async with asyncio.timeout(self._request_seconds):
                    answer = _Answer(response.status, headers, await response.read())
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            # The HTTP client wraps whatever the request body raised (a sender's refused body, a
            # length that does not match): that is the caller's to handle, not a store fault.
            cause = exc.__cause__
            if cause is not None and not isinstance(cause, OSError | aiohttp.ClientError):
                raise cause from None
            self.breaker.failed()
            raise ObjectStoreUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if answer.status >= 500:
            self.breaker.failed()
            raise ObjectStoreUnavailable(f"{method} {key}: HTTP {answer.status}")
        self.breaker.succeeded()
        if answer.status == 404:
            raise ObjectNotFound(key)
        if answer.status >= 300:
            raise ObjectStoreError(f"{method} {key}: HTTP {answer.status}: {answer.body[:300]!r}")
        return answer

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        max_bytes: int,
        length: int | None = None,
    ) -> StoredObject:
        """Stream ``chunks`` into ``key``, hashing on the way. Nothing is kept if it fails.

        With a known ``length`` of at most one part, the body goes out in one PUT as it arrives;
        otherwise it is cut into parts of ``part_size`` and sent as a multipart upload.
        """
        digest = hashlib.sha256()
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            # Each chunk costs the HTTP client a round of work, so small ones (a slow link's tens of
            # KiB) are gathered into blocks of at least _GATHER before going out; the server's usual
            # chunks (hundreds of KiB) go out as they are, as a copy of a few MiB costs milliseconds.
            nonlocal size
            block: list[bytes] = []
            pending = 0
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise ObjectTooLarge(max_bytes)
                digest.update(chunk)
                if not block and len(chunk) >= _GATHER:
                    yield chunk
                    continue
                block.append(chunk)
                pending += len(chunk)
                if pending >= _GATHER:
                    yield b"".join(block) if len(block) > 1 else block[0]
                    block.clear()
                    pending = 0
            if block:
                yield b"".join(block)

        headers = {"Content-Type": content_type}
        if length is not None and length <= self.part_size:
            if length > max_bytes:
                raise ObjectTooLarge(max_bytes)
            await self._request(
                "PUT", key, content=_exactly(counted(), length), headers={**headers, "Content-Length": str(length)}
            )
        else:
            await self._put_parts(key, counted(), headers)
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    async def _put_parts(self, key: str, body: AsyncIterator[bytes], headers: dict[str, str]) -> None:
        pending: list[bytes] = []  # blocks of the part being gathered, joined once when it is full
        pending_size = 0
        upload_id: str | None = None
        etags: list[str] = []
        in_flight: asyncio.Task[str] | None = None

        def take_part() -> bytes:
            """Exactly part_size bytes off the front of the pending blocks, copied once."""
            nonlocal pending, pending_size
            taken: list[bytes] = []
            need = self.part_size
            while need:
                block = pending.pop(0)
                if len(block) > need:
                    taken.append(block[:need])
                    pending.insert(0, block[need:])
                    need = 0
                else:
                    taken.append(block)
                    need -= len(block)
            pending_size -= self.part_size
            return b"".join(taken)

        try:
            async for chunk in body:
                pending.append(chunk)
                pending_size += len(chunk)
                while pending_size >= self.part_size:
                    part = take_part()
                    if upload_id is None:
                        upload_id = await self.start_multipart(key, headers["Content-Type"])
                    if in_flight is not None:  # one part uploading while the next one is read
                        etags.append(await in_flight)
                    in_flight = asyncio.ensure_future(self.put_part(key, upload_id, len(etags) + 1, part))
                    del part
            last = b"".join(pending)
            pending = []
            if upload_id is None:  # it all fit in one part after all
                await self._request("PUT", key, content=last, headers={**headers, "Content-Length": str(len(last))})
                return
            if in_flight is not None:
                etags.append(await in_flight)
                in_flight = None
            if last:
                etags.append(await self.put_part(key, upload_id, len(etags) + 1, last))
            await self.complete_multipart(key, upload_id, etags)
        except BaseException:
            if in_flight is not None:
                in_flight.cancel()
            if upload_id is not None:
                await self.abort_multipart(key, upload_id)
            raise

    async def start_multipart(self, key: str, content_type: str) -> str:
        response = await self._request("POST", key, query={"uploads": ""}, headers={"Content-Type": content_type})
        upload_id = _xml_text(response.body, "UploadId")
        if not upload_id:
            raise ObjectStoreError(f"no UploadId in the answer for {key}")
        return upload_id

    async def put_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        response = await self._request(
            "PUT", key, query={"partNumber": str(number), "uploadId": upload_id}, content=data
        )
        return str(response.headers.get("etag", "")).strip('"')

    async def put_part_stream(
        self, key: str, upload_id: str, number: int, chunks: AsyncIterator[bytes], *, length: int
    ) -> tuple[str, str]:
        """One part of exactly ``length`` bytes streamed to the store as it arrives (never held whole);
        its ETag and SHA-256. Raises BodyLengthMismatch when the body is shorter or longer."""
        digest = hashlib.sha256()

        async def hashed() -> AsyncIterator[bytes]:
            async for chunk in _exactly(chunks, length):
                digest.update(chunk)
                yield chunk

        response = await self._request(
            "PUT",
            key,
            query={"partNumber": str(number), "uploadId": upload_id},
            content=hashed(),
            headers={"Content-Length": str(length)},
        )
        return str(response.headers.get("etag", "")).strip('"'), digest.hexdigest()

    async def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> None:
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>&quot;{etag}&quot;</ETag></Part>"
            for n, etag in enumerate(etags, start=1)
        )
        body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        response = await self._request(
            "POST", key, query={"uploadId": upload_id}, content=body, headers={"Content-Type": "application/xml"}
        )
        # S3 may answer 200 and still report an error in the body.
        if b"<Error>" in response.body:
            raise ObjectStoreError(f"completing {key} failed: {response.body[:300]!r}")

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            await self._request("DELETE", key, query={"uploadId": upload_id})
        except (ObjectStoreUnavailable, ObjectStoreError, ObjectNotFound) as exc:
            log.warning("could not abort multipart upload %s of %s: %s", upload_id, key, exc)

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes, chunk by chunk. Raises ObjectNotFound before the first chunk."""
        self.breaker.check()
        try:
            async with self._session().get(self._signed("GET", key)) as response:
                if response.status == 404:
                    raise ObjectNotFound(key)
                if response.status >= 300:
                    self.breaker.failed()
                    raise ObjectStoreUnavailable(f"GET {key}: HTTP {response.status}")
                self.breaker.succeeded()
                # as the connection hands them over (cutting them to one size would copy each)
                async for chunk in response.content.iter_any():
                    yield chunk
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            self.breaker.failed()
            raise ObjectStoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def download(self, key: str, path: Path) -> None:
        """The object into a local file: one signed GET streamed to disk (the SDK's download took a HEAD,
        a GET and two thread hops per file, a fifth of an inspection's CPU)."""
        out = await asyncio.to_thread(path.open, "wb")
        try:
            async for chunk in self.stream(key):
                out.write(chunk)  # into the page cache: microseconds, not worth a thread hop
        finally:
            out.close()

    async def digest(self, key: str) -> tuple[int, str, bytes]:
        """Read an object whole: its size, SHA-256 and first kilobyte (to check what it is)."""
        digest = hashlib.sha256()
        size = 0
        head = b""
        async for chunk in self.stream(key):
            if len(head) < 1024:
                head += chunk[: 1024 - len(head)]
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest(), head

    async def older_than(self, prefix: str, before: datetime) -> list[str]:
        """Keys under ``prefix`` last written before ``before`` (for the orphan sweeper)."""

        def listing() -> list[str]:
            return [
                obj.object_name
                for obj in self._client.list_objects(bucket_name=self.bucket, prefix=prefix, recursive=True)
                if obj.object_name and obj.last_modified is not None and obj.last_modified < before
            ]

        keys: list[str] = await self._run(listing)
        return keys

    def presigned_post(
        self, key: str, *, size: int, ttl_seconds: int, sha256: str | None = None
    ) -> tuple[str, dict[str, str]]:
        """A browser-style POST upload straight to the store: exactly ``key``, exactly ``size`` bytes and,
        with ``sha256`` (hex), only bytes with that SHA-256 (the store checks them and refuses others)."""
        _, fields = self._post_policy(key, size=size, ttl_seconds=ttl_seconds, sha256=sha256)
        scheme = "https" if self._secure else "http"
        return f"{scheme}://{self._public_endpoint}/{self.bucket}", fields

    def _post_policy(self, key: str, *, size: int, ttl_seconds: int, sha256: str | None) -> tuple[str, dict[str, str]]:
        policy = PostPolicy(self.bucket, datetime.now(UTC) + timedelta(seconds=ttl_seconds))
        policy.add_equals_condition("key", key)
        policy.add_content_length_range_condition(size, size)
        pinned: dict[str, str] = {}
        if sha256 is not None:
            pinned = {
                "x-amz-checksum-algorithm": "SHA256",
                "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(sha256)).decode(),
            }
            for name, value in pinned.items():
                policy.add_equals_condition(name, value)
        # The policy's signature does not name the endpoint: the same fields serve both addresses.
        fields: dict[str, str] = self._presigner.presigned_post_policy(policy)
        scheme = "https" if self._secure else "http"
        return f"{scheme}://{self._endpoint}/{self.bucket}", {**fields, **pinned, "key": key}

    async def pins_post_checksums(self) -> bool:
        """Whether a POST policy can pin the bytes by their SHA-256 on this store: the store refuses a
        POST whose bytes do not match the ``x-amz-checksum-sha256`` field, refuses one that leaves out a
        field the policy requires or adds one it does not name (another checksum), and keeps the checked
        SHA-256 with the object. SeaweedFS does; for any other store the probe finds out, once per
        process, with four small POSTs whose object is removed. A store that cannot be reached raises,
        and is asked again next time."""
        if self._pins is None:
            async with self._pins_lock:
                if self._pins is None:
                    self._pins = await self._probe_pins()
                    log.info(
                        "object store %s: direct uploads %s",
                        "checks the SHA-256 of POSTed bytes" if self._pins else "does not check POSTed bytes",
                        "go to the file's own key, pinned to their SHA-256"
                        if self._pins
                        else "are staged and copied, then read back",
                    )
        return self._pins

    async def _probe_pins(self) -> bool:
        key = f"incoming/checksum-probe-{uuid4()}"
        data = b"%PDF-1.4\n% checksum probe " + uuid4().bytes
        other = data[:-1] + bytes([data[-1] ^ 1])
        url, fields = self._post_policy(key, size=len(data), ttl_seconds=60, sha256=hashlib.sha256(data).hexdigest())
        bare = {k: v for k, v in fields.items() if not k.startswith("x-amz-checksum-")}

        async def post(form_fields: dict[str, str], body: bytes) -> int:
            form = aiohttp.FormData()
            for name, value in form_fields.items():
                form.add_field(name, value)
            form.add_field("file", body, filename="probe.pdf", content_type="application/pdf")
            payload = form()  # the session sends no Content-Type of its own: name the form's
            try:
                async with self._session().post(
                    url, data=payload, headers={"Content-Type": payload.content_type}
                ) as response:
                    await response.read()
                    return response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ObjectStoreUnavailable(f"POST probe: {type(exc).__name__}: {exc}") from exc

        try:
            crc32 = base64.b64encode(zlib.crc32(other).to_bytes(4, "big")).decode()
            refused = (
                (bare, data),  # a field the policy requires left out
                (fields, other),  # other bytes than the SHA-256 pinned
                ({**fields, "x-amz-checksum-crc32": crc32}, other),  # a field the policy does not name
            )
            for form_fields, body in refused:
                if await post(form_fields, body) < 400:
                    return False
            if await post(fields, data) >= 300:
                return False
            try:
                size, attested = await self.attested(key)
            except (ObjectStoreError, ObjectNotFound):  # a store that cannot show what it checked
                return False
            return size == len(data) and attested == hashlib.sha256(data).hexdigest()
        finally:
            with contextlib.suppress(StorageError):
                await self.delete(key)

    async def attested(self, key: str) -> tuple[int, str | None]:
        """The object's size and the SHA-256 (hex) the store checked its bytes against when they were
        written, or None when it keeps none for the object (written without one, or in parts). One HEAD
        on the event loop, its headers signed (a presigned URL cannot carry ``x-amz-checksum-mode``)."""
        date = datetime.now(UTC)
        url = urlsplit(f"{'https' if self._secure else 'http'}://{self._endpoint}/{self.bucket}/{quote(key)}")
        headers = sign_v4_s3(
            method="HEAD",
            url=url,
            region=self._region,
            headers={
                "Host": url.netloc,
                "x-amz-checksum-mode": "ENABLED",
                "x-amz-content-sha256": _EMPTY_SHA256,
                "x-amz-date": to_amz_date(date),
            },
            credentials=self._credentials,
            content_sha256=_EMPTY_SHA256,
            date=date,
        )
        signed = {name: str(value) for name, value in headers.items()}
        answer = await self._request("HEAD", key, url=url.geturl(), headers=signed)
        value = answer.headers.get("x-amz-checksum-sha256")
        checked: str | None = None
        if value and "-" not in value:  # "...-N" is a checksum of the parts' checksums
            with contextlib.suppress(binascii.Error, ValueError):
                raw = base64.b64decode(value, validate=True)
                checked = raw.hex() if len(raw) == 32 else None
        return int(answer.headers.get("content-length", "0")), checked

    async def first_bytes(self, key: str, count: int = 1024) -> bytes:
        """The object's first ``count`` bytes (one ranged GET)."""
        answer = await self._request("GET", key, headers={"Range": f"bytes=0-{count - 1}"})
        return answer.body[:count]

    async def put_file(self, key: str, path: Path, *, content_type: str) -> None:
        """Store a file the worker made (derived objects such as the OCR'd copy)."""
        await self._run(
            self._client.fput_object,
            bucket_name=self.bucket,
            object_name=key,
            file_path=str(path),
            content_type=content_type,
        )

    async def copy(self, source: str, target: str) -> None:
        """A server-side copy of ``source`` to ``target`` in the bucket (the bytes do not pass through us)."""
        from minio.commonconfig import CopySource

        await self._run(
            self._client.copy_object,
            bucket_name=self.bucket,
            object_name=target,
            source=CopySource(bucket_name=self.bucket, object_name=source),
        )

    async def lock(self, key: str, *, mode: str, until: datetime) -> None:
        """Lock the object's current version until ``until`` (``governance`` or ``compliance``): the store
        then refuses to delete or overwrite that version, and to shorten the date."""
        from minio.commonconfig import COMPLIANCE, GOVERNANCE
        from minio.retention import Retention

        config = Retention(COMPLIANCE if mode == "compliance" else GOVERNANCE, until)
        await self._run(self._client.set_object_retention, bucket_name=self.bucket, object_name=key, config=config)

    async def retention(self, key: str) -> tuple[str, datetime] | None:
        """The object's lock: its mode and date, or None."""
        config = await self._run(self._client.get_object_retention, bucket_name=self.bucket, object_name=key)
        if config is None or config.retain_until_date is None:
            return None
        return str(config.mode).lower(), config.retain_until_date

    async def delete(self, key: str) -> None:
        """Remove the object (one signed DELETE on the event loop; gone already is fine, as in S3)."""
        with contextlib.suppress(ObjectNotFound):
            await self._request("DELETE", key)

    def presigned_url(self, key: str, *, ttl_seconds: int, filename: str, inline: bool = False) -> str:
        disposition = f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(filename)}"
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

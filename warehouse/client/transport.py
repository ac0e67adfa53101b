"""HTTP to the warehouse as a commune's link needs it: waits out 429 and 503 (honouring Retry-After),
retries dropped connections with backoff, and keeps to a bandwidth limit so one station does not fill
the commune's line."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

RETRY_STATUSES = {429, 502, 503, 504}
CHUNK = 256 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# What a request meets when the connection it was sent on was closed, or could not be opened.
LOST_ON_THE_WAY = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class RetryUnsent(httpx.AsyncBaseTransport):
    """Sends a request again, at once, when its connection failed before an answer came: the server
    had closed a kept-alive connection as the request went out on it, or a new one could not be opened.
    Only requests that are safe to send twice are sent again: an idempotent method, or any request that
    carries an Idempotency-Key (the warehouse answers a repeat with the first answer), and only when
    the body is held in memory (a streamed body cannot be replayed here)."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None, *, attempts: int = 3) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.attempts = attempts

    @staticmethod
    def safe_to_repeat(request: httpx.Request) -> bool:
        safe = request.method in SAFE_METHODS or "idempotency-key" in request.headers
        return safe and isinstance(request.stream, httpx.ByteStream)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 1
        while True:
            try:
                return await self.inner.handle_async_request(request)
            except LOST_ON_THE_WAY:
                if attempt >= self.attempts or not self.safe_to_repeat(request):
                    raise
            await asyncio.sleep(0.05 * 2**attempt)
            attempt += 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def warehouse_http(base_url: str = "", *, limits: httpx.Limits | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """An HTTP client for the warehouse that sends again what was lost on the way (RetryUnsent)."""
    inner = httpx.AsyncHTTPTransport(limits=limits or httpx.Limits(max_connections=100, max_keepalive_connections=20))
    return httpx.AsyncClient(base_url=base_url, transport=RetryUnsent(inner), **kwargs)


class Refused(Exception):
    """The warehouse said no (a 4xx other than 429): retrying will not help."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = {}
        self.code = str(body.get("code") or response.status_code)
        self.detail = str(body.get("detail") or response.text[:300])
        super().__init__(f"{self.status} {self.code}: {self.detail}")


class Unreachable(Exception):
    """The warehouse could not be reached (or kept answering 5xx) after every retry."""


def still_answering(response: httpx.Response) -> bool:
    """A 409 saying the first request with this Idempotency-Key is still being answered (or was cut off
    with the process that answered it, taken over after a minute): the same request is sent again."""
    if response.status_code != 409:
        return False
    try:
        return bool(response.json().get("code") == "idempotency_in_progress")
    except ValueError:
        return False


def retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("retry-after")
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Bandwidth:
    """A token bucket shared by every upload of the run (bytes per second; 0 = no limit)."""

    def __init__(self, bytes_per_second: float) -> None:
        self.rate = bytes_per_second
        self._allowance = bytes_per_second
        self._last = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, n: int) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            self._allowance = min(self.rate, self._allowance + (now - self._last) * self.rate)
            self._last = now
            self._allowance -= n
            if self._allowance < 0:
                await asyncio.sleep(-self._allowance / self.rate)


class StoreUnreachable(Exception):
    """The object store named by a direct upload's policy could not be reached from this station."""


class StoreRefused(Exception):
    """The object store refused a direct upload (its policy expired, or the bytes broke its conditions)."""

    def __init__(self, status: int, text: str) -> None:
        self.status = status
        super().__init__(f"the store answered {status}: {text[:300]}")


def form_body(
    fields: dict[str, str], filename: str, length: int, chunks: Callable[[], AsyncIterator[bytes]]
) -> tuple[str, int, Callable[[], AsyncIterator[bytes]]]:
    """A multipart/form-data body of the policy's fields then the file, streamed from ``chunks`` (so the
    bandwidth limit and the progress bars hold): (content type, length, body factory)."""
    boundary = f"kho-so-hoa-{random.getrandbits(64):016x}"
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    safe_name = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for chunk in chunks():
            yield chunk
        yield tail

    return f"multipart/form-data; boundary={boundary}", len(head) + length + len(tail), body


class Transport:
    def __init__(
        self,
        host: str,
        headers: dict[str, str],
        *,
        bandwidth: Bandwidth,
        patience: float = 3600.0,
        max_wait: float = 300.0,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.http = warehouse_http(host.rstrip("/"), headers=headers, timeout=httpx.Timeout(60.0, write=600.0))
        self.bandwidth = bandwidth
        self.patience = patience
        self.max_wait = max_wait
        self._last_told: tuple[str, float] = ("", 0.0)
        self.on_wait = on_wait or (lambda _: None)
        self.reached = False  # a wrong address fails at once; a link that dropped later is waited out
        self._store: httpx.AsyncClient | None = None  # direct uploads' client: no warehouse credentials
        self.store_reached = False
        self.store_connect_seconds = 5.0

    async def aclose(self) -> None:
        await self.http.aclose()
        if self._store is not None:
            await self._store.aclose()

    async def post_to_store(
        self, url: str, fields: dict[str, str], filename: str, length: int, chunks: Callable[[], AsyncIterator[bytes]]
    ) -> None:
        """Send a file with a direct upload's presigned POST, straight to the object store. A store that
        cannot be reached at all raises StoreUnreachable at once (the caller sends through the warehouse
        instead); a link that drops on the way is retried like the warehouse's; a refusal raises
        StoreRefused. The warehouse's credentials never go to the store."""
        if self._store is None:
            self._store = httpx.AsyncClient(
                timeout=httpx.Timeout(60.0, connect=self.store_connect_seconds, write=600.0)
            )
        content_type, size, body = form_body(fields, filename, length, chunks)
        delay = 1.0
        give_up = time.monotonic() + self.patience
        while True:
            try:
                response = await self._store.post(
                    url, content=body(), headers={"Content-Type": content_type, "Content-Length": str(size)}
                )
            except httpx.TransportError as exc:
                if not self.store_reached:
                    raise StoreUnreachable(f"{httpx.URL(url).host}: {exc or type(exc).__name__}") from exc
                if time.monotonic() + delay > give_up:
                    raise Unreachable(f"the object store: {exc}") from exc
                self._tell(f"connection to the store lost ({type(exc).__name__}); waiting {delay:.0f}s")
            else:
                self.store_reached = True
                if response.status_code < 300:
                    return
                if response.status_code not in RETRY_STATUSES or time.monotonic() + delay > give_up:
                    raise StoreRefused(response.status_code, response.text)
                self._tell(f"the store answered {response.status_code}; waiting {delay:.0f}s")
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(60.0, delay * 2)

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Callable[[], AsyncIterator[bytes]] | None = None,
        ok: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """Send, and send again while the answer says "later" (429, 503: after its Retry-After) or the
        link drops (backoff up to a minute), for up to ``patience`` seconds. ``body`` makes a fresh
        stream of the bytes for each attempt. A 4xx (but 429) raises Refused, unless listed in ``ok``."""
        delay = 1.0
        give_up = time.monotonic() + self.patience
        while True:
            try:
                content = body() if body is not None else None
                response = await self.http.request(method, path, content=content, **kwargs)
            except httpx.TransportError as exc:
                if not self.reached:
                    raise Unreachable(
                        f"{self.http.base_url}: {exc or type(exc).__name__}. Kiểm tra địa chỉ kho và đường truyền / "
                        "Check the warehouse's address and the link"
                    ) from exc
                wait = delay
                why = f"connection lost ({type(exc).__name__})"
                if time.monotonic() + wait > give_up:
                    raise Unreachable(f"{method} {path}: {exc}") from exc
            else:
                self.reached = True
                if response.status_code in RETRY_STATUSES or still_answering(response):
                    wait = min(self.max_wait, retry_after(response, delay))
                    why = f"the warehouse answered {response.status_code}"
                    if time.monotonic() + wait > give_up:
                        raise Unreachable(f"{method} {path}: still {response.status_code} after {self.patience:g}s")
                elif response.status_code >= 400 and response.status_code not in ok:
                    raise Refused(response)
                else:
                    return response
            self._tell(f"{why}; waiting {wait:.0f}s / chờ {wait:.0f} giây")
            await asyncio.sleep(wait * (0.8 + 0.4 * random.random()))
            delay = min(60.0, delay * 2)

    def _tell(self, text: str) -> None:
        """Say why the client waits: each new reason at once, the same one at most every 30 seconds."""
        now = time.monotonic()
        if text.split(";")[0] != self._last_told[0] or now - self._last_told[1] > 30:
            self._last_told = (text.split(";")[0], now)
            self.on_wait(text)

    def file_body(
        self, path: Path, offset: int, length: int, on_sent: Callable[[int], None] | None = None
    ) -> Callable[[], AsyncIterator[bytes]]:
        """A body factory: ``length`` bytes of the file from ``offset``, read afresh for each attempt and
        sent within the bandwidth limit. ``on_sent`` hears of each chunk as it goes (a repeated attempt
        reports only what goes beyond the furthest point an earlier one reached)."""
        furthest = 0

        async def chunks() -> AsyncIterator[bytes]:
            nonlocal furthest
            position = 0
            with path.open("rb") as f:
                f.seek(offset)
                left = length
                while left > 0:
                    data = f.read(min(CHUNK, left))
                    if not data:
                        break
                    await self.bandwidth.take(len(data))
                    left -= len(data)
                    yield data
                    position += len(data)
                    if on_sent is not None and position > furthest:
                        on_sent(position - furthest)
                        furthest = position

        return chunks

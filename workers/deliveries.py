"""Push deliveries: the feed's changes sent to each subscription's receiver, signed, in order per record.

Each worker runs one ``Dispatcher`` beside its jobs. A round gives positions to newly committed
changes (``Feed.sequence``), turns each active subscription's new changes into deliveries, and sends
the ones due. Deliveries follow the Standard Webhooks scheme: headers ``webhook-id`` (the delivery's
id, the same on every try and replay), ``webhook-timestamp`` and ``webhook-signature`` (HMAC-SHA256
with the subscription's secret; during a rotation, the old secret's too).

What a receiver answers decides what happens next:
- 2xx: delivered; if the receiver had been failing, what waited for it goes at once;
- 410 Gone: the subscription is paused and says why; nothing is lost, it resumes when an
  administrator says so;
- no answer, a refused connection, a redirect (not followed), 401/403/404/408/429 or 5xx: the
  receiver is failing; it is tried again after an exponential backoff with jitter (or its
  Retry-After), and deliveries older than ``webhook_retry_hours`` are parked as dead;
- any other 4xx: this delivery alone is refused; it is retried on its own backoff, then parked.
A receiver gets at most ``webhook_in_flight`` deliveries at once, so a slow one never holds the
slots another receiver's deliveries need.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import msgspec
from standardwebhooks.webhooks import Webhook

from storage import Database, Files, ObjectStore, Settings, Units
from storage.feed import Change, Delivery, Feed, Subscription, Subscriptions, item
from storage.netguard import ReceiverRefused, check_url, resolve_receiver
from workers import metrics

log = logging.getLogger(__name__)

FAN_OUT_BATCH = 1000
USER_AGENT = "kho-so-hoa-webhooks/1"
_RECEIVER_STATUSES = {401, 403, 404, 408, 429}


def backoff(n: int, cap: float) -> float:
    """Seconds before the n-th retry: doubling from one second up to ``cap``, half of it random."""
    delay = min(cap, 2.0 ** max(0, n - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def portal_record(change: Change, *, today: date, file_url: str | None, url_expires: datetime | None) -> dict[str, Any]:
    """The national portal's result-store shape: one record per digitized result."""
    d = change.fields()
    valid_until = date.fromisoformat(d["valid_until"]) if d.get("valid_until") else None
    if change.kind == "result.withdrawn":
        state, state_name = 3, "withdrawn"
    elif valid_until is not None and valid_until < today:
        state, state_name = 2, "expired"
    else:
        state, state_name = 1, "valid"
    return {
        "resultCode": d["code"],
        "dossierCode": d["dossier_code"],
        "procedureCode": d["procedure_code"],
        "holderId": d.get("holder_id") or "",
        "holderName": d.get("holder_name") or "",
        "issuerCode": d["issuer_code"],
        "issuerName": d["issuer_name"],
        "documentName": d["document_name"],
        "resultType": d.get("result_type"),
        "issuedOn": str(d["issued_at"])[:10],
        "validUntil": d.get("valid_until"),
        "state": state,
        "stateName": state_name,
        "withdrawnReason": d.get("withdrawn_reason"),
        "sha256": d.get("sha256"),
        "fileUrl": file_url,
        "fileUrlExpiresAt": url_expires.isoformat() if url_expires else None,
        "version": change.pos,
    }


class Outcome:
    """What one try came to: ``ok``, ``gone`` (410), or a failure of the receiver or of this delivery."""

    def __init__(self, kind: str, status: int | None, error: str, retry_after: float | None = None) -> None:
        self.kind = kind
        self.status = status
        self.error = error
        self.retry_after = retry_after


class Dispatcher:
    def __init__(self, db: Database, settings: Settings, objects: ObjectStore) -> None:
        self.settings = settings
        self.objects = objects
        self.feed = Feed(db.pool)
        self.subscriptions = Subscriptions(db.pool)
        self.units = Units(db.pool)
        self.files = Files(db.pool)
        timeout = settings.webhook_timeout_seconds
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would bypass the address check
            limits=httpx.Limits(max_connections=settings.webhook_concurrency, max_keepalive_connections=16),
            headers={"User-Agent": USER_AGENT},
        )
        self.slots = asyncio.Semaphore(settings.webhook_concurrency)
        self.in_flight: dict[UUID, int] = defaultdict(int)
        self.tasks: set[asyncio.Task[None]] = set()
        self._scopes: dict[int, tuple[float, list[int]]] = {}
        self._pruned = 0.0

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.client.aclose()

    async def run(self) -> None:
        """Rounds every ``feed_poll_ms`` until cancelled; a database that is away is waited for."""
        while True:
            try:
                await self.round()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("delivery round interrupted: %s", exc)
                await asyncio.sleep(1)
            await asyncio.sleep(self.settings.feed_poll_ms / 1000)

    async def round(self) -> int:
        """One pass: sequence, fan out, start sending what is due. Returns how many lanes it started."""
        await self.feed.sequence()
        head = await self.feed.head()
        started = 0
        now = datetime.now(UTC)
        for sub in await self.subscriptions.active():
            if sub.cursor < head:
                units = await self._units(sub)
                for _ in range(5):  # at most 5,000 a round, so one backlog does not hold up the others
                    if (
                        await self.subscriptions.fan_out(
                            sub, units=units, window=self.settings.feed_scan_window, limit=FAN_OUT_BATCH
                        )
                        < FAN_OUT_BATCH
                    ):
                        break
            if sub.retry_at is not None and sub.retry_at > now:
                continue
            for _ in range(self.settings.webhook_in_flight - self.in_flight[sub.id]):
                self.in_flight[sub.id] += 1
                task = asyncio.create_task(self._lane(sub))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                started += 1
        if time.monotonic() - self._pruned > 3600:
            self._pruned = time.monotonic()
            await self.subscriptions.prune_delivered(self.settings.webhook_keep_delivered_days * 86400)
        return started

    async def idle(self) -> None:
        """Wait until every send started so far has ended (tests, and a worker stopping)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def _units(self, sub: Subscription) -> list[int] | None:
        """The units a subscription covers: its roots and everything below or merged into them."""
        if sub.unit_ids is None:
            return None
        units: set[int] = set()
        for root in sub.unit_ids:
            hit = self._scopes.get(root)
            if hit is None or time.monotonic() - hit[0] > 30:
                hit = (time.monotonic(), await self.units.subtree_ids(root))
                self._scopes[root] = hit
            units.update(hit[1])
        return sorted(units)

    async def _lane(self, sub: Subscription) -> None:
        """One of a receiver's ``webhook_in_flight`` lanes: sends its due deliveries one after another
        until none is due or the receiver fails (then the next round decides)."""
        fresh = time.monotonic()
        try:
            while True:
                if time.monotonic() - fresh > 1.0:  # an address or secret changed meanwhile is used
                    fresh = time.monotonic()
                    reread = await self.subscriptions.get(sub.id)
                    if reread is None:
                        return
                    sub = reread
                claimed = await self.subscriptions.claim(
                    sub.id, limit=1, lease_seconds=self.settings.webhook_timeout_seconds + 60
                )
                if not claimed:
                    return
                async with self.slots:
                    outcome = await self.attempt(sub, claimed[0])
                await self._record(sub, claimed[0], outcome)
                if outcome.kind != "ok":
                    return
        except Exception:  # a bug or a lost database must not stop the dispatcher; leases bring them back
            log.exception("deliveries to subscription %s stopped unexpectedly", sub.id)
        finally:
            self.in_flight[sub.id] -= 1

    async def body(self, sub: Subscription, change: Change) -> bytes:
        if sub.profile == "portal":
            file_url = expires = None
            if change.kind == "result.issued":
                f = await self.files.get_unscoped(UUID(change.fields()["file_id"]))
                if f is not None and f.state == "ready":
                    ttl = self.settings.webhook_link_ttl_seconds
                    file_url = self.objects.presigned_url(f.object_key, ttl_seconds=ttl, filename=f.name)
                    expires = datetime.now(UTC) + timedelta(seconds=ttl)
            data = portal_record(change, today=date.today(), file_url=file_url, url_expires=expires)
        else:
            data = item(change, self.settings.public_base_url)
        payload = {"type": change.kind, "timestamp": change.at, "data": data}
        return msgspec.json.encode(payload)

    def signature(self, sub: Subscription, delivery_id: UUID, at: datetime, body: str) -> str:
        secrets = [sub.secret]
        if sub.previous_secret and sub.previous_until and sub.previous_until > at:
            secrets.append(sub.previous_secret)
        return " ".join(Webhook(s).sign(msg_id=str(delivery_id), timestamp=at, data=body) for s in secrets)

    async def attempt(self, sub: Subscription, delivery: Delivery) -> Outcome:
        settings = self.settings
        try:
            _scheme, host, port = check_url(sub.url, require_https=settings.webhook_require_https)
            address = await resolve_receiver(host, port, allow_private=settings.webhook_allow_private)
        except ReceiverRefused as exc:
            return Outcome("receiver", None, str(exc))
        body = await self.body(sub, delivery.change)
        at = datetime.now(UTC)
        url = httpx.URL(sub.url)
        headers = {
            "content-type": "application/json",
            "webhook-id": str(delivery.id),
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": self.signature(sub, delivery.id, at, body.decode()),
            "host": url.netloc.decode("ascii"),
        }
        request = self.client.build_request(
            "POST",
            url.copy_with(host=address),
            content=body,
            headers=headers,
            extensions={"sni_hostname": host},
        )
        excerpt = b""
        try:
            # the whole exchange, not each read: a receiver that trickles its answer is cut off too
            async with asyncio.timeout(settings.webhook_timeout_seconds):
                response = await self.client.send(request, stream=True)
                try:
                    if not 200 <= response.status_code < 300:
                        async for chunk in response.aiter_raw():
                            excerpt += chunk
                            if len(excerpt) >= 300:
                                break
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            return Outcome("receiver", None, f"no full answer within {settings.webhook_timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return Outcome("receiver", None, f"could not reach the receiver: {exc or type(exc).__name__}")
        status = response.status_code
        said = excerpt[:300].decode("utf-8", "replace").strip()
        if 200 <= status < 300:
            return Outcome("ok", status, "")
        if status == 410:
            return Outcome("gone", status, f"the receiver answered 410 Gone: {said}" if said else "")
        if 300 <= status < 400:
            where = response.headers.get("location", "?")
            return Outcome(
                "receiver",
                status,
                f"the receiver redirected to {where[:200]}; redirects are not followed, register the final address",
            )
        retry_after = None
        if status in (429, 503):
            with contextlib.suppress(ValueError):
                retry_after = min(float(response.headers.get("retry-after", "")), settings.webhook_backoff_max_seconds)
        kind = "receiver" if status >= 500 or status in _RECEIVER_STATUSES else "delivery"
        return Outcome(kind, status, f"the receiver answered {status}" + (f": {said}" if said else ""), retry_after)

    async def _record(self, sub: Subscription, delivery: Delivery, outcome: Outcome) -> None:
        settings = self.settings
        metrics.DELIVERIES.labels(outcome.kind).inc()
        if outcome.kind == "ok":
            metrics.DELIVERY_LAG.observe(max(0.0, (datetime.now(UTC) - delivery.change.at).total_seconds()))
            await self.subscriptions.delivered(delivery.id, sub.id, outcome.status or 200)
            return
        if outcome.kind == "gone":
            when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
            reason = f"The receiver answered 410 Gone at {when}: it takes no more deliveries. " + (
                "Resume the subscription once it does; nothing was lost."
            )
            await self.subscriptions.pause(sub.id, reason)
            await self.subscriptions.release(delivery.id)
            return
        receiver = outcome.kind == "receiver"
        n = sub.failures + 1 if receiver else delivery.attempts
        wait = (
            outcome.retry_after if outcome.retry_after is not None else backoff(n, settings.webhook_backoff_max_seconds)
        )
        await self.subscriptions.failed(
            delivery.id,
            sub.id,
            status=outcome.status,
            error=outcome.error[:500],
            retry_in=wait,
            give_up_after=settings.webhook_retry_hours * 3600,
            receiver=receiver,
        )


async def run_dispatcher(db: Database, settings: Settings, objects: ObjectStore) -> None:
    dispatcher = Dispatcher(db, settings, objects)
    try:
        await dispatcher.run()
    finally:
        await dispatcher.close()

"""The change feed (migration 0012): every change of a dossier, a file or a result code, in the order
it was committed, and the push subscriptions that deliver it to other systems.

Triggers write a change in the transaction that makes it; ``Feed.sequence`` gives committed changes
their positions, one sequencer at a time, so positions become visible in order and a reader that
remembers the last one it saw never skips a change that committed late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec

KINDS = (
    "dossier.created",
    "dossier.changed",
    "dossier.deleted",
    "dossier.restored",
    "dossier.purged",
    "file.accepted",
    "file.rejected",
    "file.deleted",
    "result.issued",
    "result.withdrawn",
)


@dataclass(frozen=True, slots=True)
class Change:
    pos: int
    kind: str
    record: str
    dossier_id: UUID
    unit_id: int
    unit_code: str
    at: datetime
    data: str  # the record after the change, as JSON text (passed on as it is: read, never decoded)

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> Change:
        return cls(r["pos"], r["kind"], r["record"], r["dossier_id"], r["unit_id"], r["unit_code"], r["at"], r["data"])

    def fields(self) -> dict[str, Any]:
        """The record after the change, decoded."""
        decoded: dict[str, Any] = msgspec.json.decode(self.data)
        return decoded


@dataclass(frozen=True, slots=True)
class Page:
    changes: list[Change]
    next: int  # the position to read after next time (past every change examined)
    head: int  # the newest position when the page was read


def link(change: Change) -> str:
    """Where the API shows the changed record now."""
    if change.kind.startswith("dossier."):
        return f"/api/v1/dossiers/{change.record}"
    if change.kind.startswith("file."):
        return f"/api/v1/files/{change.record}"
    return f"/api/v1/result-codes/{change.record}"


def item(change: Change, base_url: str) -> dict[str, Any]:
    """A change as the feed and the warehouse's own deliveries show it. ``version`` is the change's feed
    position: it grows with every change of a record, so a consumer keeps the highest it has seen."""
    return {
        "kind": change.kind,
        "id": change.record,
        "version": change.pos,
        "at": change.at,
        "unit": change.unit_code,
        "dossier_id": str(change.dossier_id),
        "link": base_url.rstrip("/") + link(change),
        "record": msgspec.Raw(change.data.encode()),
    }


_CHANGE = "c.pos, c.kind, c.record, c.dossier_id, c.unit_id, u.code AS unit_code, c.at, c.data::text AS data"
_MATCH = "($2::bigint[] IS NULL OR c.unit_id = ANY($2)) AND ($3::text[] IS NULL OR c.kind = ANY($3))"


class Feed:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._instance: UUID | None = None

    async def instance(self) -> UUID:
        """This warehouse's identity (written by the migration; a cursor names it)."""
        if self._instance is None:
            self._instance = await self._pool.fetchval("SELECT instance FROM feed_head")
        assert self._instance is not None
        return self._instance

    async def head(self) -> int:
        pos: int = await self._pool.fetchval("SELECT pos FROM feed_head")
        return pos

    async def sequence(self, *, max_rows: int = 10_000) -> int:
        """Give positions to committed changes waiting for one; returns how many. Never waits for another
        sequencer (it returns 0 while one runs), and writes nothing when there is nothing to do."""
        total = 0
        while await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM changes WHERE pos IS NULL)"):
            n: int = await self._pool.fetchval("SELECT feed_sequence($1)", max_rows)
            total += n
            if n < max_rows:
                break
        return total

    async def read(
        self, after: int, *, units: list[int] | None, kinds: list[str] | None, limit: int, window: int
    ) -> Page:
        """Changes after position ``after`` in these units and of these kinds (None: all), at most
        ``limit``, looking at no more than ``window`` positions: a page may be short, or empty, with a
        ``next`` further on when few changes match."""
        rows = await self._pool.fetch(
            f"""
            WITH h AS (SELECT pos FROM feed_head)
            SELECT {_CHANGE}, h.pos AS head
            FROM h LEFT JOIN LATERAL (
                SELECT c.* FROM changes c
                WHERE c.pos > $1 AND c.pos <= $1 + $5 AND {_MATCH}
                ORDER BY c.pos LIMIT $4
            ) c ON true
            LEFT JOIN units u ON u.id = c.unit_id
            ORDER BY c.pos
            """,
            after,
            units,
            kinds,
            limit,
            window,
        )
        head: int = rows[0]["head"]
        changes = [Change(*r[:8]) for r in rows if r[0] is not None]
        nxt = changes[-1].pos if len(changes) == limit else max(after, min(after + window, head))
        return Page(changes, nxt, head)


# -- push subscriptions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscription:
    id: UUID
    name: str
    url: str
    profile: str
    kinds: list[str]
    unit_ids: list[int] | None
    secret: str
    previous_secret: str | None
    previous_until: datetime | None
    state: str
    paused_reason: str | None
    paused_at: datetime | None
    cursor: int
    failures: int
    retry_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    last_status: int | None
    last_delivered_at: datetime | None
    created_by: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> Subscription:
        return cls(**{k: r[k] for k in cls.__slots__})


@dataclass(frozen=True, slots=True)
class SubscriptionStats:
    pending: int
    dead: int
    oldest_pending_at: datetime | None
    head: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery claimed for sending, with the change it carries."""

    id: UUID
    subscription_id: UUID
    attempts: int
    created_at: datetime
    change: Change


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: UUID
    version: int  # the change's feed position
    kind: str
    record: str
    attempts: int
    last_status: int | None
    last_error: str | None
    last_tried_at: datetime | None
    created_at: datetime


_SUB = ", ".join(Subscription.__slots__)
_SUB_S = ", ".join("s." + k for k in Subscription.__slots__)


class Subscriptions:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(
        self,
        *,
        name: str,
        url: str,
        profile: str,
        kinds: list[str],
        unit_ids: list[int] | None,
        secret: str,
        from_beginning: bool,
        created_by: int,
    ) -> Subscription:
        r = await self._pool.fetchrow(
            f"""
            INSERT INTO subscriptions (id, name, url, profile, kinds, unit_ids, secret, cursor, created_by)
            SELECT $1, $2, $3, $4, $5, $6, $7, CASE WHEN $8 THEN 0 ELSE pos END, $9 FROM feed_head
            RETURNING {_SUB}
            """,
            uuid4(),
            name,
            url,
            profile,
            kinds,
            unit_ids,
            secret,
            from_beginning,
            created_by,
        )
        assert r is not None
        return Subscription.from_record(r)

    async def get(self, sub_id: UUID) -> Subscription | None:
        r = await self._pool.fetchrow(f"SELECT {_SUB} FROM subscriptions WHERE id = $1 AND state <> 'deleted'", sub_id)
        return Subscription.from_record(r) if r else None

    async def all(self) -> list[Subscription]:
        rows = await self._pool.fetch(
            f"SELECT {_SUB} FROM subscriptions WHERE state <> 'deleted' ORDER BY created_at, id"
        )
        return [Subscription.from_record(r) for r in rows]

    async def count_for_unit(self, unit_id: int) -> int:
        """Subscriptions made by the unit's accounts."""
        n: int = await self._pool.fetchval(
            "SELECT count(*) FROM subscriptions s JOIN accounts a ON a.id = s.created_by "
            "WHERE s.state <> 'deleted' AND a.unit_id = $1",
            unit_id,
        )
        return n

    async def active(self) -> list[Subscription]:
        """Subscriptions to deliver to: active, and made by an account that is still active."""
        rows = await self._pool.fetch(
            f"""
            SELECT {_SUB_S}
            FROM subscriptions s JOIN accounts a ON a.id = s.created_by
            WHERE s.state = 'active' AND a.state = 'active'
            """
        )
        return [Subscription.from_record(r) for r in rows]

    async def update(self, sub_id: UUID, **fields: Any) -> Subscription | None:
        names = list(fields)
        sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(names))
        r = await self._pool.fetchrow(
            f"UPDATE subscriptions SET {sets}, updated_at = now() WHERE id = $1 AND state <> 'deleted' "
            f"RETURNING {_SUB}",
            sub_id,
            *fields.values(),
        )
        return Subscription.from_record(r) if r else None

    async def rotate_secret(self, sub_id: UUID, secret: str, overlap_seconds: float) -> Subscription | None:
        r = await self._pool.fetchrow(
            f"""
            UPDATE subscriptions SET previous_secret = secret, secret = $2,
                previous_until = now() + make_interval(secs => $3), updated_at = now()
            WHERE id = $1 AND state <> 'deleted' RETURNING {_SUB}
            """,
            sub_id,
            secret,
            overlap_seconds,
        )
        return Subscription.from_record(r) if r else None

    async def pause(self, sub_id: UUID, reason: str) -> None:
        await self._pool.execute(
            "UPDATE subscriptions SET state = 'paused', paused_reason = $2, paused_at = now(), updated_at = now() "
            "WHERE id = $1 AND state = 'active'",
            sub_id,
            reason,
        )

    async def resume(self, sub_id: UUID, *, by: int) -> Subscription | None:
        """Active again, acting for ``by`` from now on; its waiting deliveries go at once, their time to
        retry counted afresh."""
        async with self._pool.acquire() as conn, conn.transaction():
            r = await conn.fetchrow(
                f"""
                UPDATE subscriptions SET state = 'active', paused_reason = NULL, paused_at = NULL, failures = 0,
                    retry_at = NULL, created_by = $2, updated_at = now()
                WHERE id = $1 AND state <> 'deleted' RETURNING {_SUB}
                """,
                sub_id,
                by,
            )
            if r is None:
                return None
            await conn.execute(
                "UPDATE deliveries SET next_at = clock_timestamp(), created_at = clock_timestamp() "
                "WHERE subscription_id = $1 AND state = 'pending'",
                sub_id,
            )
        return Subscription.from_record(r)

    async def delete(self, sub_id: UUID) -> bool:
        status: str = await self._pool.execute(
            "UPDATE subscriptions SET state = 'deleted', updated_at = now() WHERE id = $1 AND state <> 'deleted'",
            sub_id,
        )
        return status.endswith(" 1")

    async def stats(self, sub_id: UUID) -> SubscriptionStats:
        r = await self._pool.fetchrow(
            """
            SELECT (SELECT count(*) FROM deliveries WHERE subscription_id = $1 AND state = 'pending') AS pending,
                   (SELECT count(*) FROM deliveries WHERE subscription_id = $1 AND state = 'dead') AS dead,
                   (SELECT c.at FROM deliveries d JOIN changes c ON c.pos = d.pos
                    WHERE d.subscription_id = $1 AND d.state = 'pending' ORDER BY d.pos LIMIT 1) AS oldest,
                   (SELECT pos FROM feed_head) AS head
            """,
            sub_id,
        )
        assert r is not None
        return SubscriptionStats(r["pending"], r["dead"], r["oldest"], r["head"])

    # -- the dispatcher's side ---------------------------------------------------------------------

    async def fan_out(self, sub: Subscription, *, units: list[int] | None, window: int, limit: int) -> int:
        """Turn the feed's changes after the subscription's cursor into deliveries (at most ``limit``,
        looking at ``window`` positions); returns how many. The cursor moves in the same transaction,
        so a change becomes exactly one delivery."""
        async with self._pool.acquire() as conn, conn.transaction():
            cursor = await conn.fetchval(
                "SELECT cursor FROM subscriptions WHERE id = $1 AND state = 'active' FOR UPDATE SKIP LOCKED", sub.id
            )
            if cursor is None:
                return 0
            rows = await conn.fetch(
                f"""
                WITH h AS (SELECT pos FROM feed_head),
                picked AS (
                    SELECT c.pos, c.record FROM changes c
                    WHERE c.pos > $1 AND c.pos <= $1 + $5 AND {_MATCH}
                    ORDER BY c.pos LIMIT $4
                ),
                added AS (
                    INSERT INTO deliveries (id, subscription_id, pos, record)
                    SELECT gen_random_uuid(), $6, pos, record FROM picked
                    ON CONFLICT (subscription_id, pos) DO NOTHING
                )
                SELECT (SELECT pos FROM h) AS head, (SELECT count(*) FROM picked) AS n,
                       (SELECT max(pos) FROM picked) AS last
                """,
                cursor,
                units,
                sub.kinds,
                limit,
                window,
                sub.id,
            )
            n, head, last = rows[0]["n"], rows[0]["head"], rows[0]["last"]
            nxt = last if n == limit else max(cursor, min(cursor + window, head))
            if nxt != cursor:
                await conn.execute("UPDATE subscriptions SET cursor = $2 WHERE id = $1", sub.id, nxt)
            return int(n)

    async def claim(self, sub_id: UUID, *, limit: int, lease_seconds: float) -> list[Delivery]:
        """Deliveries due now, oldest first, none of a record with an earlier delivery still waiting
        (each record's changes arrive in order); each is leased for ``lease_seconds`` (a process that
        dies while sending leaves it to be tried again after that)."""
        if limit <= 0:
            return []
        rows = await self._pool.fetch(
            f"""
            WITH due AS (
                SELECT d.id FROM deliveries d
                WHERE d.subscription_id = $1 AND d.state = 'pending' AND d.next_at <= clock_timestamp()
                  AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = $1 AND s.state = 'active'
                              AND (s.retry_at IS NULL OR s.retry_at <= clock_timestamp()))
                  AND NOT EXISTS (SELECT 1 FROM deliveries e
                                  WHERE e.subscription_id = d.subscription_id AND e.record = d.record
                                    AND e.state = 'pending' AND e.pos < d.pos)
                ORDER BY d.pos LIMIT $2 FOR UPDATE SKIP LOCKED
            ),
            leased AS (
                UPDATE deliveries d SET next_at = clock_timestamp() + make_interval(secs => $3),
                    sending = true, attempts = d.attempts + 1,
                    first_tried_at = coalesce(d.first_tried_at, clock_timestamp()), last_tried_at = clock_timestamp()
                FROM due WHERE d.id = due.id
                RETURNING d.id, d.subscription_id, d.attempts, d.created_at, d.pos
            )
            SELECT l.id AS delivery_id, l.subscription_id, l.attempts, l.created_at AS delivery_created, {_CHANGE}
            FROM leased l JOIN changes c ON c.pos = l.pos JOIN units u ON u.id = c.unit_id
            ORDER BY c.pos
            """,
            sub_id,
            limit,
            lease_seconds,
        )
        return [
            Delivery(
                r["delivery_id"], r["subscription_id"], r["attempts"], r["delivery_created"], Change.from_record(r)
            )
            for r in rows
        ]

    async def delivered(self, delivery_id: UUID, sub_id: UUID, status: int) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE deliveries SET state = 'delivered', delivered_at = clock_timestamp(), last_status = $2, "
                "sending = false "
                "WHERE id = $1 AND state = 'pending'",
                delivery_id,
                status,
            )
            failures = await conn.fetchval("SELECT failures FROM subscriptions WHERE id = $1 FOR UPDATE", sub_id)
            await conn.execute(
                "UPDATE subscriptions SET failures = 0, retry_at = NULL, last_delivered_at = clock_timestamp(), "
                "last_status = $2 WHERE id = $1",
                sub_id,
                status,
            )
            if failures:  # the receiver is back: what waited for it goes now
                await conn.execute(
                    "UPDATE deliveries SET next_at = clock_timestamp() WHERE subscription_id = $1 "
                    "AND state = 'pending' AND next_at > clock_timestamp() AND NOT sending",
                    sub_id,
                )

    async def failed(
        self,
        delivery_id: UUID,
        sub_id: UUID,
        *,
        status: int | None,
        error: str,
        retry_in: float,
        give_up_after: float,
        receiver: bool,
    ) -> None:
        """A try that failed: the delivery waits ``retry_in`` seconds, or is parked as dead once it is
        older than ``give_up_after``. ``receiver``: the receiver itself failed (unreachable, 5xx,
        timeout), so all its deliveries wait, and those past ``give_up_after`` are parked."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                UPDATE deliveries SET last_status = $2, last_error = $3, sending = false,
                    state = CASE WHEN created_at < clock_timestamp() - make_interval(secs => $5)
                                 THEN 'dead' ELSE 'pending' END,
                    next_at = clock_timestamp() + make_interval(secs => $4)
                WHERE id = $1 AND state = 'pending'
                """,
                delivery_id,
                status,
                error,
                retry_in,
                give_up_after,
            )
            await conn.execute(
                """
                UPDATE subscriptions SET last_error = $2, last_error_at = clock_timestamp(), last_status = $3,
                    failures = CASE WHEN $4 THEN failures + 1 ELSE failures END,
                    retry_at = CASE WHEN $4 THEN clock_timestamp() + make_interval(secs => $5) ELSE retry_at END
                WHERE id = $1
                """,
                sub_id,
                error,
                status,
                receiver,
                retry_in,
            )
            if receiver:
                await conn.execute(
                    """
                    UPDATE deliveries SET state = 'dead', last_error = coalesce(last_error, $2),
                        last_status = coalesce(last_status, $3)
                    WHERE subscription_id = $1 AND state = 'pending'
                      AND created_at < clock_timestamp() - make_interval(secs => $4)
                    """,
                    sub_id,
                    error,
                    status,
                    give_up_after,
                )

    async def release(self, delivery_id: UUID) -> None:
        """Give a claimed delivery back untried (the receiver was paused meanwhile)."""
        await self._pool.execute(
            "UPDATE deliveries SET next_at = clock_timestamp(), attempts = greatest(attempts - 1, 0), sending = false "
            "WHERE id = $1 AND state = 'pending'",
            delivery_id,
        )

    async def dead_letters(self, sub_id: UUID, *, after: int, limit: int) -> list[DeadLetter]:
        rows = await self._pool.fetch(
            """
            SELECT d.id, d.pos AS version, c.kind, d.record, d.attempts, d.last_status, d.last_error, d.last_tried_at,
                   d.created_at
            FROM deliveries d JOIN changes c ON c.pos = d.pos
            WHERE d.subscription_id = $1 AND d.state = 'dead' AND d.pos > $2 ORDER BY d.pos LIMIT $3
            """,
            sub_id,
            after,
            limit,
        )
        return [DeadLetter(**dict(r)) for r in rows]

    async def replay(self, sub_id: UUID, ids: list[UUID] | None) -> int:
        """Dead deliveries (these, or all) back to waiting, under the same delivery ids."""
        status: str = await self._pool.execute(
            """
            UPDATE deliveries SET state = 'pending', attempts = 0, first_tried_at = NULL, sending = false,
                next_at = clock_timestamp(), created_at = clock_timestamp()
            WHERE subscription_id = $1 AND state = 'dead' AND ($2::uuid[] IS NULL OR id = ANY($2))
            """,
            sub_id,
            ids,
        )
        return int(status.split()[-1])

    async def prune_delivered(self, older_than_seconds: float, *, limit: int = 10_000) -> int:
        status: str = await self._pool.execute(
            """
            DELETE FROM deliveries WHERE id IN (
                SELECT id FROM deliveries WHERE state = 'delivered'
                  AND delivered_at < clock_timestamp() - make_interval(secs => $1) LIMIT $2)
            """,
            older_than_seconds,
            limit,
        )
        return int(status.split()[-1])

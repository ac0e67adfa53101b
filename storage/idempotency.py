"""First answers to POSTs that carried an Idempotency-Key, kept to be replayed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class Remembered:
    endpoint: str
    request_sha256: str
    status: int | None  # None while the first request is still being answered
    headers: dict[str, str] | None
    body: bytes | None


class IdempotencyKeys:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(
        self, account_id: int, key: str, endpoint: str, request_sha256: str, *, abandoned_after: float = 60
    ) -> Remembered | None:
        """Take the key for this request; None if it was free, else what was recorded under it.

        A claim still unanswered after ``abandoned_after`` seconds was left by a process that died while
        answering (a request is over long before): the same request takes it over, so the client's retry
        is answered instead of being told to wait for ever."""
        r = await self._pool.fetchrow(
            """
            WITH taken AS (
                INSERT INTO idempotency_keys (account_id, key, endpoint, request_sha256)
                VALUES ($1, $2, $3, $4)
                ON CONFLICT (account_id, key) DO UPDATE SET created_at = clock_timestamp()
                WHERE idempotency_keys.status IS NULL
                  AND idempotency_keys.endpoint = EXCLUDED.endpoint
                  AND idempotency_keys.request_sha256 = EXCLUDED.request_sha256
                  AND idempotency_keys.created_at < clock_timestamp() - make_interval(secs => $5)
                RETURNING true AS mine
            )
            SELECT NULL AS endpoint, NULL AS request_sha256, NULL::int AS status, NULL::jsonb AS headers,
                   NULL::bytea AS body, true AS mine FROM taken
            UNION ALL
            SELECT endpoint, request_sha256, status, headers, body, false FROM idempotency_keys
            WHERE account_id = $1 AND key = $2
            LIMIT 1
            """,
            account_id,
            key,
            endpoint,
            request_sha256,
            float(abandoned_after),
        )
        if r is None or r["mine"]:
            return None
        return Remembered(r["endpoint"], r["request_sha256"], r["status"], r["headers"], r["body"])

    async def remember(self, account_id: int, key: str, status: int, headers: dict[str, Any], body: bytes) -> None:
        await self._pool.execute(
            "UPDATE idempotency_keys SET status = $3, headers = $4, body = $5 WHERE account_id = $1 AND key = $2",
            account_id,
            key,
            status,
            headers,
            body,
        )

    async def release(self, account_id: int, key: str) -> None:
        """Forget a key whose request failed on our side, so the client's retry runs again."""
        await self._pool.execute("DELETE FROM idempotency_keys WHERE account_id = $1 AND key = $2", account_id, key)

    async def forget_older_than(self, seconds: int) -> int:
        status: str = await self._pool.execute(
            "DELETE FROM idempotency_keys WHERE created_at < clock_timestamp() - make_interval(secs => $1)", seconds
        )
        return int(status.split()[-1])

"""API keys for scanner software: stored as SHA-256 hashes, shown once, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

KEY_PREFIX = "kho_"


def new_key() -> str:
    """A fresh key: 256 random bits, so a fast hash is enough to store it."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    account_id: int
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    unit_ids: list[int] | None = None


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """Whom a live key acts for, and the units it is bound to (None: the account's whole reach)."""

    account_id: int
    unit_ids: list[int] | None


class ApiKeys:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, account_id: int, label: str, unit_ids: list[int] | None = None) -> tuple[ApiKey, str]:
        key = new_key()
        r = await self._pool.fetchrow(
            """
            INSERT INTO api_keys (account_id, label, key_hash, unit_ids) VALUES ($1, $2, $3, $4)
            RETURNING id, account_id, label, created_at, last_used_at, revoked_at, unit_ids
            """,
            account_id,
            label,
            key_hash(key),
            unit_ids,
        )
        assert r is not None
        return ApiKey(**dict(r)), key

    async def account_for(self, key: str) -> KeyHolder | None:
        """The account a live key acts for, and its units; marks the key used (at most once a minute)."""
        r = await self._pool.fetchrow(
            """
            UPDATE api_keys SET last_used_at = CASE
                WHEN last_used_at IS NULL OR last_used_at < now() - interval '1 minute' THEN now()
                ELSE last_used_at END
            WHERE key_hash = $1 AND revoked_at IS NULL
            RETURNING account_id, unit_ids
            """,
            key_hash(key),
        )
        return KeyHolder(r["account_id"], list(r["unit_ids"]) if r["unit_ids"] is not None else None) if r else None

    async def revoke_all(self, account_id: int) -> int:
        """Revoke every live key of the account (after a password reset); how many there were."""
        revoked = await self._pool.fetch(
            "UPDATE api_keys SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL RETURNING id",
            account_id,
        )
        return len(revoked)

    async def list(self, account_id: int) -> list[ApiKey]:
        rows = await self._pool.fetch(
            """
            SELECT id, account_id, label, created_at, last_used_at, revoked_at, unit_ids FROM api_keys
            WHERE account_id = $1 ORDER BY id
            """,
            account_id,
        )
        return [ApiKey(**dict(r)) for r in rows]

    async def get(self, key_id: int) -> ApiKey | None:
        r = await self._pool.fetchrow(
            "SELECT id, account_id, label, created_at, last_used_at, revoked_at, unit_ids FROM api_keys WHERE id = $1",
            key_id,
        )
        return ApiKey(**dict(r)) if r else None

    async def revoke(self, key_id: int) -> None:
        await self._pool.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", key_id)

"""Content-addressed blobs: one stored object per distinct content, with its fixity record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class Blob:
    sha256: str
    size: int
    object_key: str
    created_at: datetime
    verified_at: datetime | None
    fixity_failed_at: datetime | None
    fixity_detail: str | None

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> Blob:
        return cls(**{f.name: r[f.name] for f in fields(cls)})


class Blobs:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, sha256: str) -> Blob | None:
        r = await self._pool.fetchrow("SELECT * FROM blobs WHERE sha256 = $1", sha256)
        return Blob.from_record(r) if r else None

    async def due_for_fixity(self, *, budget_bytes: int, limit: int = 10_000) -> list[Blob]:
        """The blobs verified longest ago (never verified first), up to ``budget_bytes`` in all."""
        rows = await self._pool.fetch(
            """
            SELECT * FROM (
                SELECT b.*, sum(size) OVER (ORDER BY coalesce(verified_at, created_at), sha256) AS running
                FROM blobs b ORDER BY coalesce(verified_at, created_at), sha256 LIMIT $2
            ) due WHERE running - size < $1
            """,
            budget_bytes,
            limit,
        )
        return [Blob.from_record(r) for r in rows]

    async def record_fixity(self, sha256: str, *, ok: bool, detail: str | None = None) -> None:
        await self._pool.execute(
            """
            UPDATE blobs SET verified_at = clock_timestamp(),
                fixity_failed_at = CASE WHEN $2 THEN fixity_failed_at ELSE clock_timestamp() END,
                fixity_detail = CASE WHEN $2 THEN fixity_detail ELSE $3 END
            WHERE sha256 = $1
            """,
            sha256,
            ok,
            detail,
        )

    async def known_keys(self, keys: list[str]) -> set[str]:
        """Which of these object keys belong to a blob, a file or a live upload session."""
        rows = await self._pool.fetch(
            """
            SELECT object_key FROM blobs WHERE object_key = ANY($1)
            UNION SELECT object_key FROM files WHERE object_key = ANY($1)
            UNION SELECT ocr_object_key FROM files WHERE ocr_object_key = ANY($1)
            UNION SELECT object_key FROM upload_sessions WHERE object_key = ANY($1) AND state = 'open'
            """,
            keys,
        )
        return {r["object_key"] for r in rows}

    async def stored(self, *, page: int = 1000) -> AsyncIterator[tuple[str, str]]:
        """Every object the records say is stored, with the SHA-256 it must have: each original (its
        blob, unless purged) and each signed copy. In pages, for a warehouse of any size."""
        for query in (
            "SELECT object_key, sha256 FROM blobs WHERE purged_at IS NULL AND object_key > $1 "
            "ORDER BY object_key LIMIT $2",
            "SELECT c.object_key, c.sha256 FROM signed_copies c JOIN files f ON f.id = c.file_id "
            "WHERE f.state <> 'purged' AND c.object_key > $1 ORDER BY c.object_key LIMIT $2",
        ):
            after = ""
            while True:
                rows = await self._pool.fetch(query, after, page)
                for r in rows:
                    yield r["object_key"], r["sha256"]
                if len(rows) < page:
                    break
                after = rows[-1]["object_key"]

    async def to_lock(self, *, limit: int = 500) -> list[tuple[str, str]]:
        """(sha256, object key) of stored bytes a record accepted that carry no store lock yet."""
        rows = await self._pool.fetch(
            """
            SELECT b.sha256, b.object_key FROM blobs b
            WHERE b.locked_until IS NULL AND b.purged_at IS NULL
              AND EXISTS (SELECT 1 FROM files f WHERE f.sha256 = b.sha256 AND f.state = 'ready')
            LIMIT $1
            """,
            limit,
        )
        return [(r["sha256"], r["object_key"]) for r in rows]

    async def record_lock(self, sha256: str, until: datetime) -> None:
        await self._pool.execute("UPDATE blobs SET locked_until = $2 WHERE sha256 = $1", sha256, until)

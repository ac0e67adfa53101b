"""Resumable upload sessions: a file sent in numbered parts, each part an S3 multipart part."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


@dataclass(frozen=True, slots=True)
class UploadSession:
    id: UUID
    account_id: int
    dossier_id: UUID
    filename: str
    kind: str
    size: int
    sha256: str
    part_size: int
    parts: int
    mode: str
    object_key: str
    s3_upload_id: str | None
    state: str
    file_id: UUID | None
    failure: str | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    part_code: str | None = None

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> UploadSession:
        return cls(**{f.name: r[f.name] for f in fields(cls)})

    def part_length(self, n: int) -> int:
        """The exact size part ``n`` must have: every part is ``part_size`` but the last."""
        return self.part_size if n < self.parts else self.size - self.part_size * (self.parts - 1)


@dataclass(frozen=True, slots=True)
class Part:
    n: int
    size: int
    sha256: str
    etag: str


class UploadSessions:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, values: dict[str, Any]) -> UploadSession:
        columns = ", ".join(values)
        placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        r = await self._pool.fetchrow(
            f"INSERT INTO upload_sessions ({columns}) VALUES ({placeholders}) RETURNING *", *values.values()
        )
        assert r is not None
        return UploadSession.from_record(r)

    async def get(self, session_id: UUID, account_id: int) -> UploadSession | None:
        """A session is its account's alone."""
        r = await self._pool.fetchrow(
            "SELECT * FROM upload_sessions WHERE id = $1 AND account_id = $2", session_id, account_id
        )
        return UploadSession.from_record(r) if r else None

    async def open_for(self, account_id: int, dossier_id: UUID, sha256: str) -> UploadSession | None:
        """The account's open session for these bytes in this dossier, if there is one (a repeated push)."""
        r = await self._pool.fetchrow(
            """
            SELECT * FROM upload_sessions
            WHERE account_id = $1 AND dossier_id = $2 AND sha256 = $3 AND state = 'open'
              AND expires_at > clock_timestamp()
            ORDER BY created_at DESC LIMIT 1
            """,
            account_id,
            dossier_id,
            sha256,
        )
        return UploadSession.from_record(r) if r else None

    async def parts_of(self, session_id: UUID) -> list[Part]:
        rows = await self._pool.fetch(
            "SELECT n, size, sha256, etag FROM upload_parts WHERE session_id = $1 ORDER BY n", session_id
        )
        return [Part(r["n"], r["size"], r["sha256"], r["etag"]) for r in rows]

    async def record_part(self, session: UploadSession, part: Part, *, ttl_seconds: int) -> bool:
        """Keep a received part (a part sent again replaces it) and push the session's expiry on."""
        async with self._pool.acquire() as conn, conn.transaction():
            still_open = await conn.fetchval(
                """
                UPDATE upload_sessions SET updated_at = clock_timestamp(),
                    expires_at = clock_timestamp() + make_interval(secs => $2)
                WHERE id = $1 AND state = 'open' RETURNING true
                """,
                session.id,
                ttl_seconds,
            )
            if not still_open:
                return False
            await conn.execute(
                """
                INSERT INTO upload_parts (session_id, n, size, sha256, etag) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (session_id, n) DO UPDATE
                SET size = excluded.size, sha256 = excluded.sha256, etag = excluded.etag,
                    received_at = clock_timestamp()
                """,
                session.id,
                part.n,
                part.size,
                part.sha256,
                part.etag,
            )
        return True

    async def forget_part(self, session_id: UUID, n: int) -> None:
        """A part whose newest copy arrived damaged is missing again (the store holds that copy now)."""
        await self._pool.execute("DELETE FROM upload_parts WHERE session_id = $1 AND n = $2", session_id, n)

    async def finish(
        self, session_id: UUID, state: str, *, file_id: UUID | None = None, failure: str | None = None
    ) -> None:
        await self._pool.execute(
            """
            UPDATE upload_sessions SET state = $2, file_id = $3, failure = $4, updated_at = clock_timestamp()
            WHERE id = $1
            """,
            session_id,
            state,
            file_id,
            failure,
        )

    async def expired(self, limit: int = 500) -> list[UploadSession]:
        rows = await self._pool.fetch(
            "SELECT * FROM upload_sessions WHERE state = 'open' AND expires_at < clock_timestamp() "
            "ORDER BY expires_at LIMIT $1",
            limit,
        )
        return [UploadSession.from_record(r) for r in rows]

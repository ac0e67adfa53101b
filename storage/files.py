"""Files of a dossier: the scanned components and results, with what inspection found in them."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from storage.text import fold


@dataclass(frozen=True, slots=True)
class File:
    id: UUID
    dossier_id: UUID
    kind: str
    name: str
    size: int
    sha256: str
    media_type: str
    object_key: str
    state: str
    reason_code: str | None
    reason: str | None
    pages: int | None
    inspection: dict[str, Any]
    created_by: int
    created_at: datetime
    updated_at: datetime
    inspected_at: datetime | None

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> File:
        return cls(**{f.name: r[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class NewFile:
    id: UUID
    dossier_id: UUID
    kind: str
    name: str
    size: int
    sha256: str
    media_type: str
    object_key: str
    created_by: int
    created_at: datetime
    idempotency_key: str | None


@dataclass(frozen=True, slots=True)
class Inspection:
    """What the worker concluded about a file."""

    state: str  # ready | rejected
    pages: int | None
    details: dict[str, Any]
    text: str
    reason_code: str | None = None
    reason: str | None = None


_COLUMNS = """
f.id, f.dossier_id, f.kind, f.name, f.size, f.sha256, f.media_type, f.object_key, f.state,
f.reason_code, f.reason, f.pages, f.inspection, f.created_by, f.created_at, f.updated_at, f.inspected_at
"""


_RETURNING = _COLUMNS.replace("f.", "")


class Files:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(self, new: NewFile) -> File | None:
        """Record an uploaded file; None when the account already used that idempotency key."""
        r = await self._pool.fetchrow(
            f"""
            INSERT INTO files (id, dossier_id, kind, name, size, sha256, media_type, object_key,
                               created_by, created_at, updated_at, idempotency_key, search_text)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12)
            ON CONFLICT (created_by, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
            RETURNING {_RETURNING}
            """,
            new.id,
            new.dossier_id,
            new.kind,
            new.name,
            new.size,
            new.sha256,
            new.media_type,
            new.object_key,
            new.created_by,
            new.created_at,
            new.idempotency_key,
            fold(new.name),
        )
        return File.from_record(r) if r else None

    async def get(self, file_id: UUID, *, scope: list[int] | None) -> File | None:
        r = await self._pool.fetchrow(
            f"""
            SELECT {_COLUMNS} FROM files f JOIN dossiers d ON d.id = f.dossier_id
            WHERE f.id = $1 AND f.state <> 'deleted' AND d.state <> 'deleted'
              AND ($2::bigint[] IS NULL OR d.unit_id = ANY($2))
            """,
            file_id,
            scope,
        )
        return File.from_record(r) if r else None

    async def for_dossier(self, dossier_id: UUID) -> list[File]:
        rows = await self._pool.fetch(
            f"""
            SELECT {_COLUMNS} FROM files f
            WHERE f.dossier_id = $1 AND f.state <> 'deleted' ORDER BY f.created_at, f.id
            """,
            dossier_id,
        )
        return [File.from_record(r) for r in rows]

    async def by_idempotency_key(self, account_id: int, key: str) -> File | None:
        r = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM files f WHERE f.created_by = $1 AND f.idempotency_key = $2",
            account_id,
            key,
        )
        return File.from_record(r) if r else None

    async def get_unscoped(self, file_id: UUID) -> File | None:
        r = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM files f WHERE f.id = $1", file_id)
        return File.from_record(r) if r else None

    async def record_inspection(self, file: File, result: Inspection) -> bool:
        """Store the outcome; False when the file is no longer waiting for one (deleted, or done)."""
        updated = await self._pool.fetchval(
            """
            UPDATE files SET state = $2, pages = $3, inspection = $4, text_content = $5,
                search_text = $6, reason_code = $7, reason = $8,
                inspected_at = clock_timestamp(), updated_at = clock_timestamp()
            WHERE id = $1 AND state = 'processing'
            RETURNING true
            """,
            file.id,
            result.state,
            result.pages,
            result.details,
            result.text or None,
            fold(file.name + " " + result.text),
            result.reason_code,
            result.reason,
        )
        return bool(updated)

    async def mark_deleted(self, file_id: UUID) -> None:
        await self._pool.execute(
            "UPDATE files SET state = 'deleted', updated_at = clock_timestamp() WHERE id = $1", file_id
        )

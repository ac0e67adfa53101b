"""Files of a dossier: the scanned components and results, with what inspection found in them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from storage.db import Transaction
from storage.inspection import Finding, InspectionRecord
from storage.legal import NewResultCode
from storage.retention import raise_if_held
from storage.text import fold, storable


@dataclass(frozen=True, slots=True)
class PageText:
    """A page's text, and where it came from (the file's own text layer, or OCR)."""

    page: int
    source: str
    text: str


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
    stage: str
    stage_times: dict[str, Any]
    attempts: int
    last_error: str | None
    ocr_object_key: str | None
    part_code: str | None = None  # the component or result type it digitizes

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
    part_code: str | None = None


@dataclass(frozen=True, slots=True)
class Inspection:
    """What the worker concluded about a file."""

    state: str  # ready | rejected
    pages: int | None
    details: InspectionRecord
    text: str
    reason_code: str | None = None
    reason: str | None = None
    page_texts: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A verdict to record: the file, what inspection concluded, the pages left for OCR, and the result
    code an accepted result is given."""

    file: File
    result: Inspection
    ocr_pages: list[int]
    code: NewResultCode | None = None


_COLUMNS = """
f.id, f.dossier_id, f.kind, f.name, f.size, f.sha256, f.media_type, f.object_key, f.state,
f.reason_code, f.reason, f.pages, f.inspection, f.created_by, f.created_at, f.updated_at, f.inspected_at,
f.stage, f.stage_times, f.attempts, f.last_error, f.ocr_object_key, f.part_code
"""


_RETURNING = _COLUMNS.replace("f.", "")


async def _keep_pages(conn: Transaction, file_id: UUID, source: str, texts: dict[int, str]) -> None:
    """The text of these pages, from the text layer or from OCR (a page read again replaces it)."""
    await conn.execute(
        """
        INSERT INTO file_pages (file_id, page, source, text)
        SELECT $1, n, $2, t FROM unnest($3::int[], $4::text[]) AS p(n, t)
        ON CONFLICT (file_id, page) DO UPDATE SET source = excluded.source, text = excluded.text
        """,
        file_id,
        source,
        list(texts),
        storable(list(texts.values())),
    )


class Files:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(self, new: NewFile) -> File | None:
        """Record an uploaded file; None when the account already used that idempotency key.

        The bytes are content-addressed: the first file with a given SHA-256 makes its object the blob
        of that content; later files with the same bytes point at that blob, and the caller removes
        the object it wrote (compare the returned ``object_key`` with the one it uploaded to).
        """
        for attempt in range(2):
            try:
                r = await self._pool.fetchrow(
                    f"""
                    WITH blob AS (
                        INSERT INTO blobs (sha256, size, object_key) VALUES ($6, $5, $8)
                        ON CONFLICT (sha256) DO NOTHING RETURNING object_key
                    ), chosen AS (
                        SELECT object_key FROM blob
                        UNION ALL SELECT object_key FROM blobs WHERE sha256 = $6
                        LIMIT 1
                    )
                    INSERT INTO files (id, dossier_id, kind, name, size, sha256, media_type, object_key,
                                       created_by, created_at, updated_at, idempotency_key, search_text,
                                       part_code)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT object_key FROM chosen), $9, $10, $10, $11, $12,
                            $13)
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
                    new.part_code,
                )
            except asyncpg.NotNullViolationError:
                # Another upload of the same bytes committed the blob while this statement ran: its
                # snapshot could not see it. The next statement will.
                if attempt:
                    raise
                continue
            return File.from_record(r) if r else None
        return None

    async def holding(self, sha256: str, *, scope: list[int] | None) -> list[File]:
        """Files with these bytes in the units of ``scope`` (never beyond it)."""
        rows = await self._pool.fetch(
            f"""
            SELECT {_COLUMNS} FROM files f JOIN dossiers d ON d.id = f.dossier_id
            WHERE f.sha256 = $1 AND f.state <> 'deleted' AND d.state <> 'deleted'
              AND ($2::bigint[] IS NULL OR d.unit_id = ANY($2))
            ORDER BY f.created_at LIMIT 50
            """,
            sha256,
            scope,
        )
        return [File.from_record(r) for r in rows]

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
        return (await self.for_dossiers([dossier_id])).get(dossier_id, [])

    async def for_dossiers(self, dossier_ids: list[UUID]) -> dict[UUID, list[File]]:
        """The files of each of these dossiers (one query for a whole page of them), oldest first."""
        rows = await self._pool.fetch(
            f"""
            SELECT {_COLUMNS} FROM files f
            WHERE f.dossier_id = ANY($1::uuid[]) AND f.state <> 'deleted' ORDER BY f.created_at, f.id
            """,
            dossier_ids,
        )
        out: dict[UUID, list[File]] = {}
        for r in rows:
            f = File.from_record(r)
            out.setdefault(f.dossier_id, []).append(f)
        return out

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

    async def start_inspections(self, file_ids: Sequence[UUID]) -> dict[UUID, File]:
        """Mark the files as being inspected (one more attempt each), in one statement; those that
        waited for inspection, by id (a file already inspected, deleted or parked is left out)."""
        rows = await self._pool.fetch(
            f"""
            UPDATE files f SET stage = 'inspecting', attempts = attempts + 1,
                stage_times = stage_times || jsonb_build_object('inspecting', clock_timestamp())
            WHERE id = ANY($1::uuid[]) AND state = 'processing' AND stage IN ('queued', 'inspecting')
            RETURNING {_COLUMNS}
            """,
            list(file_ids),
        )
        return {r["id"]: File.from_record(r) for r in rows}

    async def record_inspections(self, verdicts: Sequence[Verdict]) -> list[bool]:
        """Store the verdicts and each file's text layer per page, in one statement (atomic: all of them
        or, when Postgres refuses one, none); for each, whether the file still waited for its verdict.

        A ready file with pages for OCR moves on to the ``ocr`` stage (its state is already ``ready``:
        it can be used while OCR runs); otherwise the stage is the verdict. An accepted result gets its
        digitization result code in the same statement (a file has one code at most).
        """
        if len({v.file.id for v in verdicts}) != len(verdicts):
            raise ValueError("a file appears twice in one batch of verdicts")
        rows: list[tuple[Any, ...]] = []
        pages: list[tuple[UUID, int, str]] = []
        codes: list[tuple[Any, ...]] = []
        for v in verdicts:
            result = v.result
            stage = "ocr" if result.state == "ready" and v.ocr_pages else result.state
            details = storable(
                {**result.details.stored(), "ocr_pages": v.ocr_pages, "result_code": v.code.code if v.code else None}
            )
            page_texts: list[str] = storable(result.page_texts)
            text: str = storable(result.text)
            rows.append(
                (
                    v.file.id,
                    result.state,
                    result.pages,
                    details,
                    text or None,
                    fold(v.file.name + " " + text),
                    result.reason_code,
                    result.reason,
                    stage,
                )
            )
            pages += [(v.file.id, n, t) for n, t in enumerate(page_texts, start=1) if t.strip()]
            if v.code is not None and result.state == "ready":
                c = v.code
                codes.append((v.file.id, c.code, c.seq, c.result_type, c.holder, c.document_name, c.valid_until))
        columns = list(zip(*rows, strict=True))
        page_columns = list(zip(*pages, strict=True)) or [(), (), ()]
        code_columns = list(zip(*codes, strict=True)) or [()] * 7
        # One statement (so one round trip, and atomic): the verdicts, and the text layer per page and
        # the result codes of the files whose verdict was taken.
        updated = await self._pool.fetchval(
            """
            WITH v AS (
                SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::jsonb[], $5::text[], $6::text[],
                                     $7::text[], $8::text[], $9::text[])
                    AS v(id, state, pages, inspection, text_content, search_text, reason_code, reason, stage)
            ), updated AS (
                UPDATE files f SET state = v.state, pages = v.pages, inspection = v.inspection,
                    text_content = v.text_content, search_text = v.search_text, reason_code = v.reason_code,
                    reason = v.reason, stage = v.stage, last_error = NULL,
                    stage_times = f.stage_times || jsonb_build_object(v.stage, clock_timestamp()),
                    inspected_at = clock_timestamp(), updated_at = clock_timestamp()
                FROM v WHERE f.id = v.id AND f.state = 'processing'
                RETURNING f.id, f.dossier_id
            ), kept AS (
                INSERT INTO file_pages (file_id, page, source, text)
                SELECT u.id, p.n, 'layer', p.t
                FROM updated u JOIN unnest($10::uuid[], $11::int[], $12::text[]) AS p(f, n, t) ON p.f = u.id
                ON CONFLICT (file_id, page) DO UPDATE SET source = excluded.source, text = excluded.text
            ), coded AS (
                INSERT INTO result_codes (code, seq, file_id, dossier_id, unit_id, result_type, holder,
                                          document_name, valid_until)
                SELECT c.code, c.seq, u.id, u.dossier_id, d.unit_id, c.result_type, c.holder, c.document_name,
                       c.valid_until
                FROM updated u
                JOIN unnest($13::uuid[], $14::text[], $15::bigint[], $16::text[], $17::text[], $18::text[],
                            $19::date[]) AS c(f, code, seq, result_type, holder, document_name, valid_until)
                    ON c.f = u.id
                JOIN dossiers d ON d.id = u.dossier_id
                ON CONFLICT (file_id) DO NOTHING
            )
            SELECT coalesce(array_agg(id), '{}') FROM updated
            """,
            *(list(c) for c in columns),
            *(list(c) for c in page_columns),
            *(list(c) for c in code_columns),
        )
        taken = set(updated)
        return [v.file.id in taken for v in verdicts]

    async def record_error(self, file_id: UUID, error: str, *, give_up: bool) -> None:
        """A transient fault (object store down); ``give_up`` parks the file in the dead-letter list."""
        await self._pool.execute(
            """
            UPDATE files SET last_error = $2, updated_at = clock_timestamp(),
                stage = CASE WHEN $3 THEN 'failed' ELSE stage END,
                stage_times = CASE WHEN $3 THEN stage_times || jsonb_build_object('failed', clock_timestamp())
                                   ELSE stage_times END
            WHERE id = $1 AND state <> 'deleted'
            """,
            file_id,
            error[:500],
            give_up,
        )

    async def record_ocr(
        self,
        file: File,
        page_texts: dict[int, str],
        outcome: dict[str, Any],
        object_key: str | None,
        *,
        findings: list[Finding] | None = None,
    ) -> bool:
        """Keep the recognised text per page, make it searchable and end the pipeline at ``ready``.

        ``findings`` (warnings only: the file is already ready) join the verdict's, e.g. blank pages,
        which are found in this stage.
        """
        page_texts, outcome = storable(page_texts), storable(outcome)
        added = storable([msgspec.to_builtins(f) for f in findings or []])
        numbers = sorted(n for n, text in page_texts.items() if text.strip())
        async with self._pool.acquire() as conn, conn.transaction():
            updated = await conn.fetchval(
                """
                UPDATE files SET stage = 'ready', ocr_object_key = coalesce($3, ocr_object_key),
                    inspection = inspection || jsonb_build_object('ocr', $2::jsonb) || CASE
                        WHEN jsonb_array_length($4::jsonb) = 0 THEN '{}'::jsonb
                        ELSE jsonb_build_object(
                            'findings', coalesce(inspection -> 'findings', '[]'::jsonb) || $4::jsonb,
                            'verdict', CASE WHEN inspection ->> 'verdict' = 'ready' THEN 'ready_with_warnings'
                                            ELSE inspection ->> 'verdict' END)
                        END,
                    stage_times = stage_times || jsonb_build_object('ready', clock_timestamp()),
                    last_error = NULL, updated_at = clock_timestamp()
                WHERE id = $1 AND stage = 'ocr' AND state = 'ready'
                RETURNING true
                """,
                file.id,
                outcome,
                object_key,
                added,
            )
            if not updated:
                return False
            if numbers:
                await _keep_pages(conn, file.id, "ocr", {n: page_texts[n] for n in numbers})
                text = await conn.fetchval(
                    "SELECT string_agg(text, E'\\n\\f' ORDER BY page) FROM file_pages WHERE file_id = $1", file.id
                )
                await conn.execute(
                    "UPDATE files SET text_content = $2, search_text = $3 WHERE id = $1",
                    file.id,
                    text,
                    fold(file.name + " " + (text or "")),
                )
        return True

    async def reprocess(self, file_id: UUID) -> File | None:
        """Send a file back through the whole pipeline (after a fault, or a change of the standard)."""
        async with self._pool.acquire() as conn, conn.transaction():
            r = await conn.fetchrow(
                f"""
                UPDATE files f SET state = 'processing', stage = 'queued', queued_at = NULL, ocr_queued_at = NULL,
                    attempts = 0, last_error = NULL, reason_code = NULL, reason = NULL,
                    stage_times = jsonb_build_object('queued', clock_timestamp()), updated_at = clock_timestamp()
                WHERE id = $1 AND state <> 'deleted'
                RETURNING {_COLUMNS}
                """,
                file_id,
            )
            if r is not None:
                await conn.execute("DELETE FROM file_pages WHERE file_id = $1", file_id)
        return File.from_record(r) if r else None

    async def failed(self, *, limit: int, scope: list[int] | None) -> list[File]:
        """The dead-letter list: files whose inspection gave up after transient faults, newest first."""
        rows = await self._pool.fetch(
            f"""
            SELECT {_COLUMNS} FROM files f JOIN dossiers d ON d.id = f.dossier_id
            WHERE f.stage = 'failed' AND f.state = 'processing'
              AND ($2::bigint[] IS NULL OR d.unit_id = ANY($2))
            ORDER BY f.updated_at DESC, f.id LIMIT $1
            """,
            limit,
            scope,
        )
        return [File.from_record(r) for r in rows]

    async def count_all(self) -> int:
        """Every file recorded, whatever its state."""
        n: int = await self._pool.fetchval("SELECT count(*) FROM files")
        return n

    async def stage_counts(self) -> dict[str, int]:
        rows = await self._pool.fetch(
            "SELECT stage, count(*) AS n FROM files WHERE state <> 'deleted' AND stage NOT IN ('ready', 'rejected') "
            "GROUP BY stage"
        )
        return {r["stage"]: r["n"] for r in rows}

    async def pages(self, file_id: UUID) -> list[PageText]:
        rows = await self._pool.fetch(
            "SELECT page, source, text FROM file_pages WHERE file_id = $1 ORDER BY page", file_id
        )
        return [PageText(r["page"], r["source"], r["text"]) for r in rows]

    async def mark_deleted(self, file_id: UUID) -> None:
        """Raises HeldError when a legal hold covers the file's dossier."""
        try:
            await self._mark_deleted(file_id)
        except asyncpg.PostgresError as exc:
            raise_if_held(exc)
            raise

    async def _mark_deleted(self, file_id: UUID) -> None:
        await self._pool.execute(
            "UPDATE files SET state = 'deleted', deleted_at = clock_timestamp(), updated_at = clock_timestamp() "
            "WHERE id = $1",
            file_id,
        )

"""Dossiers (hồ sơ): what was received, from whom, and the result issued for it."""

from __future__ import annotations

import base64
import binascii
import builtins
import re
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from storage.db import Transaction
from storage.retention import raise_if_held
from storage.text import fold, nfc


@dataclass(frozen=True, slots=True)
class Dossier:
    id: UUID
    code: str
    unit_id: int
    unit_code: str
    procedure_code: str
    title: str | None
    subject_name: str
    subject_id_kind: str
    subject_id_number: str
    received_on: date
    result_number: str | None
    result_issued_on: date | None
    result_issuer: str | None
    result_valid_until: date | None
    result_kind_code: str | None
    state: str
    created_by: int
    created_at: datetime
    updated_at: datetime
    catalogued: bool = False
    parts_required: list[str] = field(default_factory=list)
    parts_present: list[str] = field(default_factory=list)
    result_ready: bool = False
    complete_at: datetime | None = None
    returned_on: date | None = None
    owed_since: datetime | None = None
    source_account_id: int | None = None
    rank: float | None = None  # relevance to the search (``q``), with its highlighted snippet
    snippet: str | None = None
    fuzzy: bool | None = None  # found only by a fuzzy match (nothing matched the words themselves)

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> Dossier:
        values: dict[str, Any] = {f.name: r.get(f.name) for f in fields(cls) if f.name in r}
        return cls(**values)

    @property
    def parts_done(self) -> list[str]:
        """The parts present: part codes of accepted files, and the result type once a result file is."""
        done = set(self.parts_present)
        if self.result_ready and self.result_kind_code:
            done.add(self.result_kind_code)
        return sorted(done)

    @property
    def parts_missing(self) -> list[str]:
        done = set(self.parts_done)
        return [p for p in dict.fromkeys(self.parts_required) if p not in done]


# Fields a client may set; the rest are the warehouse's own.
EDITABLE = (
    "procedure_code",
    "title",
    "subject_name",
    "subject_id_kind",
    "subject_id_number",
    "received_on",
    "result_number",
    "result_issued_on",
    "result_issuer",
    "result_valid_until",
    "result_kind_code",
)

_SELECT = """
SELECT d.id, d.code, d.unit_id, u.code AS unit_code, d.procedure_code, d.title, d.subject_name,
       d.subject_id_kind, d.subject_id_number, d.received_on, d.result_number, d.result_issued_on,
       d.result_issuer, d.result_valid_until, d.result_kind_code, d.state, d.created_by,
       d.created_at, d.updated_at, d.catalogued, d.parts_required, d.parts_present, d.result_ready,
       d.complete_at, d.returned_on, d.owed_since, d.source_account_id
FROM dossiers d JOIN units u ON u.id = d.unit_id
"""

_SEARCH_SOURCES = ("code", "procedure_code", "title", "subject_name", "subject_id_number", "result_number")


def _within(scope: list[int] | None, unit_ids: list[int] | None) -> list[int] | None:
    """The units both the caller's scope and the filter allow (None: no limit)."""
    if scope is None:
        return unit_ids
    if unit_ids is None:
        return scope
    allowed = set(scope)
    return [u for u in unit_ids if u in allowed]


def search_text(values: dict[str, Any]) -> str:
    return fold(" ".join(str(values[k]) for k in _SEARCH_SOURCES if values.get(k)))


@dataclass(frozen=True, slots=True)
class DossierFilter:
    q: str | None = None
    unit_ids: list[int] | None = None
    procedure_code: str | None = None
    subject_id_number: str | None = None
    valid: bool | None = None
    received_from: date | None = None
    received_to: date | None = None
    state: str = "active"
    code: str | None = None
    complete: bool | None = None


# A returned dossier's columns, in the order of insert_returns' statement.
INTAKE_COLUMNS = ["id", "code", "unit_id", *EDITABLE, "returned_on", "search_text"]
BULK_COLUMNS = [
    "id",
    "code",
    "unit_id",
    *EDITABLE,
    "created_by",
    "created_at",
    "digitized_at",
    "search_text",
    "parts_present",
    "result_ready",
    "complete_at",
    "returned_on",
]


class InvalidCursor(ValueError):
    pass


Cursor = tuple[datetime, UUID, float | None, bool]
# Lists within at most this many units walk each unit's index (a commune, a district's communes).
PER_UNIT_SCAN_MAX = 64
# A query with a digit or a code's punctuation also matches as a substring (partial codes and numbers).
_PARTIAL = re.compile(r"[0-9./-]")
_CODE = re.compile(r"[0-9A-Za-z.]{1,20}-\d{6}-\d{4}")


def encode_cursor(created_at: datetime, dossier_id: UUID, rank: float | None = None, fuzzy: bool = False) -> str:
    """Where the next page starts: after this dossier (and, in a search, after its relevance)."""
    raw = f"{created_at.isoformat()}|{dossier_id}" + (f"|{rank!r}|{int(fuzzy)}" if rank is not None else "")
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, ident, *rest = raw.split("|")
        rank = float(rest[0]) if rest else None
        return datetime.fromisoformat(stamp), UUID(ident), rank, bool(int(rest[1])) if len(rest) > 1 else False
    except (ValueError, IndexError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor(cursor) from exc


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Dossiers:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def any(self) -> bool:
        """Whether the warehouse holds any dossier at all."""
        return bool(await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM dossiers)"))

    async def code_counters(self) -> dict[tuple[int, date], int]:
        """The last daily sequence number used, per (unit, day): where new codes of that day start."""
        rows = await self._pool.fetch("SELECT unit_id, day, last FROM dossier_code_counters")
        return {(r["unit_id"], r["day"]): r["last"] for r in rows}

    async def bulk_load(self, records: list[tuple[Any, ...]]) -> int:
        """COPY many dossiers at once (``BULK_COLUMNS`` order); call ``after_bulk_load`` when done."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Synthetic sample data: counted afterwards, and never in the change feed (it is not shared).
            await conn.execute("ALTER TABLE dossiers DISABLE TRIGGER dossiers_progress_insert")
            await conn.execute("ALTER TABLE dossiers DISABLE TRIGGER dossiers_feed")
            await conn.copy_records_to_table("dossiers", records=records, columns=BULK_COLUMNS)
            await conn.execute("ALTER TABLE dossiers ENABLE TRIGGER dossiers_feed")
            await conn.execute("ALTER TABLE dossiers ENABLE TRIGGER dossiers_progress_insert")
        return len(records)

    async def after_bulk_load(self) -> None:
        """Bring the code counters and the progress counts up to date after ``bulk_load``."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO dossier_code_counters (unit_id, day, last)
                SELECT unit_id, received_on, max(right(code, 4)::int) FROM dossiers
                WHERE code ~ '-[0-9]{6}-[0-9]{4}$' GROUP BY unit_id, received_on
                ON CONFLICT (unit_id, day) DO UPDATE
                SET last = greatest(dossier_code_counters.last, excluded.last)
                """
            )
            await conn.execute("SELECT progress_rebuild()")
            await conn.execute("ANALYZE dossiers")

    async def next_sequence(self, conn: Transaction, unit_id: int, day: date) -> int:
        """The next number of the unit's dossiers received that day (1, 2, ...)."""
        n: int = await conn.fetchval(
            """
            INSERT INTO dossier_code_counters (unit_id, day, last) VALUES ($1, $2, 1)
            ON CONFLICT (unit_id, day) DO UPDATE SET last = dossier_code_counters.last + 1
            RETURNING last
            """,
            unit_id,
            day,
        )
        return n

    async def insert(
        self, conn: Transaction, *, dossier_id: UUID, unit_id: int, created_by: int, values: dict[str, Any]
    ) -> bool:
        """Insert a dossier; False when its code is already taken."""
        row = {k: values.get(k) for k in EDITABLE}
        row["code"] = values["code"]
        inserted = await conn.fetchval(
            """
            INSERT INTO dossiers (id, code, unit_id, procedure_code, title, subject_name, subject_id_kind,
                subject_id_number, received_on, result_number, result_issued_on, result_issuer,
                result_valid_until, result_kind_code, created_by, search_text)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
            ON CONFLICT (code) DO NOTHING
            RETURNING true
            """,
            dossier_id,
            row["code"],
            unit_id,
            row["procedure_code"],
            row["title"],
            row["subject_name"],
            row["subject_id_kind"],
            row["subject_id_number"],
            row["received_on"],
            row["result_number"],
            row["result_issued_on"],
            row["result_issuer"],
            row["result_valid_until"],
            row["result_kind_code"],
            created_by,
            search_text(row),
        )
        return bool(inserted)

    async def get(self, dossier_id: UUID, *, scope: list[int] | None, include_deleted: bool = False) -> Dossier | None:
        r = await self._pool.fetchrow(
            _SELECT
            + """
            WHERE d.id = $1 AND ($2::bigint[] IS NULL OR d.unit_id = ANY($2))
              AND ($3 OR d.state <> 'deleted')
            """,
            dossier_id,
            scope,
            include_deleted,
        )
        return Dossier.from_record(r) if r else None

    async def list(
        self,
        flt: DossierFilter,
        *,
        scope: list[int] | None,
        limit: int,
        after: Cursor | None,
        fuzzy: bool | None = None,
    ) -> list[Dossier]:
        """Newest first; with ``q``, most relevant first: words as written (diacritics included) above
        words matched without diacritics, then fuzzy matches of names and codes, then the text of files.
        Each found dossier carries a highlighted snippet of what matched."""
        text = nfc(flt.q).strip() if flt.q else ""
        folded = fold(text) if text else ""
        searching = bool(folded)
        like = _like_pattern(folded) if searching else None
        after_rank = after[2] if after is not None else None
        if searching and after is not None and after_rank is None:
            raise InvalidCursor("a cursor of a search must come from that search")
        if searching and after is None and _CODE.fullmatch(text):
            # A whole dossier code: the unique index answers at once (a partial code searches below).
            exact = await self.list(replace(flt, q=None, code=text.upper()), scope=scope, limit=limit, after=None)
            if exact:
                return exact
        if searching and fuzzy is None:
            # Fuzzy matches (a mistyped name) only when the words themselves match nothing.
            fuzzy = after[3] if after is not None else False
            if not fuzzy:
                precise = await self.list(flt, scope=scope, limit=limit, after=after, fuzzy=False)
                if precise or after is not None:
                    return precise
                fuzzy = True
        args: list[Any] = [
            scope,
            flt.unit_ids,
            flt.state,
            flt.procedure_code,
            flt.subject_id_number,
            flt.received_from,
            flt.received_to,
            flt.valid,
            after[0] if after else None,
            after[1] if after else None,
            limit,
            flt.code,
            flt.complete,
        ]
        filters = """
            WHERE ($1::bigint[] IS NULL OR d.unit_id = ANY($1))
              AND ($2::bigint[] IS NULL OR d.unit_id = ANY($2))
              AND d.state = $3
              AND ($4::text IS NULL OR d.procedure_code = $4)
              AND ($5::text IS NULL OR d.subject_id_number = $5)
              AND ($6::date IS NULL OR d.received_on >= $6)
              AND ($7::date IS NULL OR d.received_on <= $7)
              AND ($8::boolean IS NULL
                   OR ($8 AND d.result_number IS NOT NULL
                       AND (d.result_valid_until IS NULL OR d.result_valid_until >= current_date))
                   OR (NOT $8 AND (d.result_number IS NULL OR d.result_valid_until < current_date)))
              AND ($12::text IS NULL OR d.code = $12)
              AND ($13::boolean IS NULL OR (d.complete_at IS NOT NULL) = $13)
        """
        units = _within(scope, flt.unit_ids)
        few_units = units is not None and len(units) <= PER_UNIT_SCAN_MAX
        if not searching:
            page = (
                "AND (d.created_at, d.id) < ($9, $10::uuid)"
                if after
                else "AND $9::timestamptz IS NULL AND $10::uuid IS NULL"
            )
            if few_units:
                # Newest first within a few units: walk each unit's (unit, created_at) index for one page
                # and merge, instead of collecting and sorting a whole commune (12,500 dossiers at ten
                # million, 100 ms).
                rows = await self._pool.fetch(
                    "SELECT x.* FROM unnest($1::bigint[]) AS un(id) CROSS JOIN LATERAL ("
                    + _SELECT
                    + filters.replace("d.unit_id = ANY($1)", "d.unit_id = un.id")
                    + page
                    + """
                        ORDER BY d.created_at DESC, d.id DESC LIMIT $11) x
                    ORDER BY x.created_at DESC, x.id DESC
                    LIMIT $11
                    """,
                    units,
                    *args[1:],
                )
            else:
                rows = await self._pool.fetch(
                    _SELECT + filters + page + " ORDER BY d.created_at DESC, d.id DESC LIMIT $11", *args
                )
            return [Dossier.from_record(r) for r in rows]
        args += [text, folded, like, after_rank, bool(fuzzy)]
        # Substrings (LIKE over the trigram index) find partial codes and numbers; words are the full-text
        # index's job, and a LIKE of common words costs a quarter of a second at ten million dossiers.
        substrings = bool(_PARTIAL.search(text))
        in_units = ""
        if few_units:
            args.append(units)
            in_units = f"AND d.unit_id = ANY(${len(args)}::bigint[])"
        sql = (
            """
            WITH q AS (
                SELECT websearch_to_tsquery('simple', lower($14)) AS exact,
                       websearch_to_tsquery('vn_unaccent', $14) AS loose
            ), candidates AS (
                -- each branch is served by its own index; filters and ranking apply to the few found
                SELECT d.id FROM dossiers d, q WHERE d.search_vector @@ q.loose {in_units}
                UNION SELECT d.id FROM dossiers d WHERE {substrings} AND d.search_text LIKE $16 {in_units}
                UNION SELECT f.dossier_id FROM files f, q
                      WHERE f.state <> 'deleted'
                        AND (f.text_vector @@ q.loose OR ({substrings} AND f.search_text LIKE $16))
                UNION (SELECT d.id FROM dossiers d WHERE $18 AND $15 <% d.search_text {in_units} LIMIT 500)
            ), found AS (
                SELECT d.id, d.created_at, m.file_id,
                       round((
                           2 * ts_rank(d.search_vector, q.exact)
                           + ts_rank(d.search_vector, q.loose)
                           + 0.5 * word_similarity($15, d.search_text)
                           + CASE WHEN d.search_text LIKE $16 THEN 0.2 ELSE 0 END
                           + CASE WHEN m.file_id IS NOT NULL THEN 0.1 ELSE 0 END
                       )::numeric, 6)::float8 AS rank
                FROM candidates c JOIN dossiers d ON d.id = c.id CROSS JOIN q
                LEFT JOIN LATERAL (
                    SELECT f.id AS file_id FROM files f
                    WHERE f.dossier_id = d.id AND f.state <> 'deleted'
                      AND (f.text_vector @@ q.loose OR f.search_text LIKE $16)
                    ORDER BY f.created_at LIMIT 1
                ) m ON true
            """
            + filters
            + """
            ), page AS (
                SELECT * FROM found
                WHERE $17::float8 IS NULL OR (rank, created_at, id) < ($17, $9::timestamptz, $10::uuid)
                ORDER BY rank DESC, created_at DESC, id DESC
                LIMIT $11
            )
            SELECT s.*, p.rank, $18 AS fuzzy,
                   ts_headline('vn_unaccent',
                               coalesce(fi.text_content, concat_ws(' — ', s.title, s.subject_name, s.code)),
                               q.loose,
                               'MaxFragments=1, MaxWords=18, MinWords=6, StartSel=<b>, StopSel=</b>') AS snippet
            FROM page p CROSS JOIN q
            JOIN LATERAL ("""
            + _SELECT
            + """ WHERE d.id = p.id) s ON true
            LEFT JOIN files fi ON fi.id = p.file_id
            ORDER BY p.rank DESC, p.created_at DESC, p.id DESC
            """
        )
        sql = sql.replace("{in_units}", in_units).replace("{substrings}", "true" if substrings else "false")
        rows = await self._pool.fetch(sql, *args)
        return [Dossier.from_record(r) for r in rows]

    async def update(self, conn: Transaction, dossier_id: UUID, changes: dict[str, Any]) -> None:
        """Apply changes to editable fields and refresh the search text."""
        current = await conn.fetchrow(
            "SELECT code, " + ", ".join(EDITABLE) + " FROM dossiers WHERE id = $1 FOR UPDATE", dossier_id
        )
        assert current is not None, dossier_id  # dossiers are never removed, only marked deleted
        merged = dict(current)
        merged.update({k: v for k, v in changes.items() if k in EDITABLE})
        await conn.execute(
            """
            UPDATE dossiers SET procedure_code = $2, title = $3, subject_name = $4, subject_id_kind = $5,
                subject_id_number = $6, received_on = $7, result_number = $8, result_issued_on = $9,
                result_issuer = $10, result_valid_until = $11, result_kind_code = $12,
                search_text = $13, updated_at = clock_timestamp()
            WHERE id = $1
            """,
            dossier_id,
            *(merged[k] for k in EDITABLE),
            search_text(merged),
        )

    async def by_codes(self, conn: Transaction, codes: builtins.list[str]) -> dict[str, Dossier]:
        """The dossiers with these codes (deleted ones too), locked until the transaction ends, in the
        order of their codes (two transactions locking overlapping sets never wait on each other in a ring)."""
        rows = await conn.fetch(_SELECT + " WHERE d.code = ANY($1) ORDER BY d.code FOR UPDATE OF d", codes)
        return {r["code"]: Dossier.from_record(r) for r in rows}

    async def insert_returns(
        self, conn: Transaction, rows: builtins.list[dict[str, Any]], source_account_id: int
    ) -> set[str]:
        """Insert returned dossiers in one statement (``INTAKE_COLUMNS`` each); the codes inserted (a code
        another transaction took meanwhile is left out)."""
        if not rows:
            return set()
        rows = sorted(rows, key=lambda r: str(r["code"]))  # the unique index is waited on in code order too
        columns = {k: [r[k] for r in rows] for k in INTAKE_COLUMNS}
        inserted = await conn.fetch(
            """
            INSERT INTO dossiers (id, code, unit_id, procedure_code, title, subject_name, subject_id_kind,
                subject_id_number, received_on, result_number, result_issued_on, result_issuer,
                result_valid_until, result_kind_code, returned_on, created_by, source_account_id, search_text)
            SELECT id, code, unit_id, procedure_code, title, subject_name, subject_id_kind, subject_id_number,
                   received_on, result_number, result_issued_on, result_issuer, result_valid_until,
                   result_kind_code, returned_on, $17, $17, search_text
            FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
                        $8::text[], $9::date[], $10::text[], $11::date[], $12::text[], $13::date[], $14::text[],
                        $15::date[], $16::text[])
                 AS r(id, code, unit_id, procedure_code, title, subject_name, subject_id_kind, subject_id_number,
                      received_on, result_number, result_issued_on, result_issuer, result_valid_until,
                      result_kind_code, returned_on, search_text)
            ON CONFLICT (code) DO NOTHING
            RETURNING code
            """,
            *[columns[k] for k in INTAKE_COLUMNS],
            source_account_id,
        )
        await conn.execute(
            """
            INSERT INTO dossier_code_counters (unit_id, day, last)
            SELECT unit_id, received_on, max(right(code, 4)::int) FROM dossiers
            WHERE code = ANY($1) AND code ~ '-[0-9]{6}-[0-9]{4}$' GROUP BY unit_id, received_on
            ON CONFLICT (unit_id, day) DO UPDATE SET last = greatest(dossier_code_counters.last, excluded.last)
            """,
            [r["code"] for r in inserted],
        )
        return {r["code"] for r in inserted}

    async def update_return(
        self, conn: Transaction, dossier_id: UUID, values: dict[str, Any], source_account_id: int
    ) -> None:
        """Apply a return pushed again with changed fields (or to a dossier entered by hand)."""
        await self.update(conn, dossier_id, values)
        await conn.execute(
            "UPDATE dossiers SET returned_on = $2, source_account_id = $3 WHERE id = $1",
            dossier_id,
            values["returned_on"],
            source_account_id,
        )

    async def owed(
        self, unit_ids: builtins.list[int] | None, *, limit: int, after: tuple[date, UUID] | None
    ) -> builtins.list[Dossier]:
        """Dossiers of these units (None: every unit) whose returned result is still owed, the longest
        waiting first."""
        rows = await self._pool.fetch(
            _SELECT
            + """
            WHERE ($1::bigint[] IS NULL OR d.unit_id = ANY($1)) AND d.owed_since IS NOT NULL
              AND d.state = 'active'
              AND ($2::date IS NULL OR (d.returned_on, d.id) > ($2, $3::uuid))
            ORDER BY d.returned_on, d.id
            LIMIT $4
            """,
            unit_ids,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [Dossier.from_record(r) for r in rows]

    async def owed_among(self, ids: builtins.list[UUID]) -> set[UUID]:
        """Which of these dossiers have their returned result owed."""
        rows = await self._pool.fetch(
            "SELECT id FROM dossiers WHERE id = ANY($1::uuid[]) AND owed_since IS NOT NULL", ids
        )
        return {r["id"] for r in rows}

    async def mark_deleted(self, dossier_id: UUID) -> None:
        """Raises HeldError when a legal hold covers the dossier."""
        try:
            await self._mark_deleted(dossier_id)
        except asyncpg.PostgresError as exc:
            raise_if_held(exc)
            raise

    async def _mark_deleted(self, dossier_id: UUID) -> None:
        await self._pool.execute(
            """
            UPDATE dossiers SET state = 'deleted', deleted_at = clock_timestamp(),
                updated_at = clock_timestamp()
            WHERE id = $1
            """,
            dossier_id,
        )

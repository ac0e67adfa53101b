"""Keeping records (migration 0013): retention classes, legal holds, undoing a delete, and purges.

A class is ``permanent`` or a number of years (``10y``) from the day a dossier was received. What
applies to a dossier is the longest of its catalogue's result types, the nearest unit above it that
sets one, and its own; with none set anywhere, the warehouse's default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from storage.db import Transaction

CLASS = re.compile(r"^(permanent|[1-9][0-9]{0,2}y)$")


def years(cls: str) -> int | None:
    """Years a class keeps a record (None: for ever)."""
    return None if cls == "permanent" else int(cls[:-1])


def longer(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    ya, yb = years(a), years(b)
    if ya is None or (yb is not None and ya >= yb):
        return a
    return b


class HeldError(Exception):
    """The database refused to delete or purge a record under a legal hold."""


def raise_if_held(exc: asyncpg.PostgresError) -> None:
    if getattr(exc, "sqlstate", None) == "WH001":
        raise HeldError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class RetentionOf:
    """What applies to a dossier, and why."""

    applied: str  # the class that applies
    floor: str  # what the catalogue, the units and the default say (the dossier may only lengthen it)
    own: str | None  # the dossier's own, if set
    retain_until: date | None  # None: permanent
    held: bool


@dataclass(frozen=True, slots=True)
class Hold:
    id: UUID
    dossier_id: UUID | None
    unit_id: int | None
    reason: str
    placed_by: int
    placed_at: datetime
    released_by: int | None
    released_at: datetime | None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A dossier whose retention has passed, held by nothing, with no result still valid."""

    id: UUID
    code: str
    unit_id: int
    state: str
    received_on: date
    retention: str
    retain_until: date


@dataclass(frozen=True, slots=True)
class Purge:
    id: UUID
    state: str
    reason: str
    dossier_ids: list[UUID]
    unit_ids: list[int]
    proposed_by: int
    proposed_at: datetime
    approved_by: int | None
    approved_at: datetime | None
    done_by: int | None
    done_at: datetime | None
    outcome: dict[str, Any] | None

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> Purge:
        return cls(**{k: r[k] for k in cls.__slots__})


@dataclass(frozen=True, slots=True)
class Removal:
    """What a purge removes of one dossier: the objects no other record needs, and the files."""

    object_keys: list[str]
    file_ids: list[UUID]
    blob_shas: list[str]


_APPLIED = """
    longer_retention(coalesce(retention_floor(d.unit_id, d.procedure_code, d.received_on), $DEFAULT), d.retention)
"""
# A dossier may be purged once its retention has passed, no hold covers it, and it has no result still
# valid (a result with no end date is valid for ever).
_PURGEABLE = """
    d.state <> 'purged'
    AND retention_years(a.applied) <> 2147483647
    AND (d.received_on + make_interval(years => retention_years(a.applied)))::date < current_date
    AND NOT (d.result_number IS NOT NULL AND (d.result_valid_until IS NULL OR d.result_valid_until >= current_date))
    AND NOT EXISTS (SELECT 1 FROM result_codes r WHERE r.dossier_id = d.id AND r.withdrawn_at IS NULL
                    AND (r.valid_until IS NULL OR r.valid_until >= current_date))
    AND NOT dossier_held(d.id)
"""


def _applied(default: str) -> str:
    return _APPLIED.replace("$DEFAULT", f"'{default}'")


class Retention:
    def __init__(self, pool: asyncpg.Pool, default: str) -> None:
        assert CLASS.match(default), default
        self._pool = pool
        self._default = default

    async def of(self, dossier_id: UUID) -> RetentionOf | None:
        r = await self._pool.fetchrow(
            f"""
            SELECT d.received_on, d.retention AS own,
                   coalesce(retention_floor(d.unit_id, d.procedure_code, d.received_on), '{self._default}') AS floor,
                   {_applied(self._default)} AS applied, dossier_held(d.id) AS held
            FROM dossiers d WHERE d.id = $1
            """,
            dossier_id,
        )
        if r is None:
            return None
        kept = years(r["applied"])
        until = None if kept is None else _add_years(r["received_on"], kept)
        return RetentionOf(r["applied"], r["floor"], r["own"], until, r["held"])

    async def set_own(self, dossier_id: UUID, cls: str | None) -> None:
        await self._pool.execute(
            "UPDATE dossiers SET retention = $2, updated_at = clock_timestamp() WHERE id = $1", dossier_id, cls
        )

    async def unit_class(self, unit_id: int) -> tuple[str | None, str | None]:
        """The unit's own class, and the nearest one set above it."""
        r = await self._pool.fetchrow(
            """
            SELECT u.retention AS own,
                   (SELECT x.retention FROM units_above($1) a JOIN units x ON x.id = a.id
                    WHERE x.retention IS NOT NULL AND a.depth > 0 ORDER BY a.depth LIMIT 1) AS above
            FROM units u WHERE u.id = $1
            """,
            unit_id,
        )
        assert r is not None
        return r["own"], r["above"]

    async def set_unit_class(self, unit_id: int, cls: str | None) -> None:
        await self._pool.execute("UPDATE units SET retention = $2 WHERE id = $1", unit_id, cls)

    # -- legal holds ------------------------------------------------------------------------------

    async def place_hold(self, *, dossier_id: UUID | None, unit_id: int | None, reason: str, by: int) -> Hold | None:
        """A new hold, or None when one is already in place on that dossier or unit."""
        r = await self._pool.fetchrow(
            """
            INSERT INTO legal_holds (id, dossier_id, unit_id, reason, placed_by) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT DO NOTHING RETURNING *
            """,
            uuid4(),
            dossier_id,
            unit_id,
            reason,
            by,
        )
        return Hold(**dict(r)) if r else None

    async def active_hold(self, *, dossier_id: UUID | None = None, unit_id: int | None = None) -> Hold | None:
        r = await self._pool.fetchrow(
            "SELECT * FROM legal_holds WHERE released_at IS NULL AND (dossier_id = $1 OR unit_id = $2)",
            dossier_id,
            unit_id,
        )
        return Hold(**dict(r)) if r else None

    async def release_hold(self, hold_id: UUID, by: int) -> None:
        await self._pool.execute(
            "UPDATE legal_holds SET released_at = clock_timestamp(), released_by = $2 "
            "WHERE id = $1 AND released_at IS NULL",
            hold_id,
            by,
        )

    async def held(self, dossier_id: UUID) -> bool:
        held: bool = await self._pool.fetchval("SELECT dossier_held($1)", dossier_id)
        return held

    # -- undoing a delete ---------------------------------------------------------------------------

    async def undelete(self, dossier_id: UUID, *, within_seconds: float) -> bool:
        """Bring a deleted dossier back if it was deleted less than ``within_seconds`` ago."""
        status: str = await self._pool.execute(
            """
            UPDATE dossiers SET state = 'active', deleted_at = NULL, updated_at = clock_timestamp()
            WHERE id = $1 AND state = 'deleted' AND deleted_at > clock_timestamp() - make_interval(secs => $2)
            """,
            dossier_id,
            within_seconds,
        )
        return status.endswith(" 1")

    async def file_owner(self, file_id: UUID) -> tuple[int, str] | None:
        """The unit of a file's dossier and the file's state, deleted files included."""
        r = await self._pool.fetchrow(
            "SELECT d.unit_id, f.state FROM files f JOIN dossiers d ON d.id = f.dossier_id WHERE f.id = $1", file_id
        )
        return (r["unit_id"], r["state"]) if r else None

    async def undelete_file(self, file_id: UUID, *, within_seconds: float) -> bool:
        status: str = await self._pool.execute(
            """
            UPDATE files SET state = CASE WHEN stage = 'rejected' THEN 'rejected'
                                          WHEN stage IN ('ready', 'ocr') THEN 'ready' ELSE 'processing' END,
                deleted_at = NULL, updated_at = clock_timestamp()
            WHERE id = $1 AND state = 'deleted' AND deleted_at > clock_timestamp() - make_interval(secs => $2)
            """,
            file_id,
            within_seconds,
        )
        return status.endswith(" 1")

    # -- purges -----------------------------------------------------------------------------------

    async def candidates(self, *, units: list[int] | None, limit: int, after: UUID | None = None) -> list[Candidate]:
        rows = await self._pool.fetch(
            f"""
            SELECT d.id, d.code, d.unit_id, d.state, d.received_on, a.applied AS retention,
                   (d.received_on + make_interval(years => retention_years(a.applied)))::date AS retain_until
            FROM dossiers d, LATERAL (SELECT {_applied(self._default)} AS applied) a
            WHERE ($1::bigint[] IS NULL OR d.unit_id = ANY($1)) AND ($3::uuid IS NULL OR d.id > $3)
              AND {_PURGEABLE}
            ORDER BY d.id LIMIT $2
            """,
            units,
            limit,
            after,
        )
        return [Candidate(**dict(r)) for r in rows]

    async def purgeable(self, conn: Transaction | asyncpg.Pool, ids: list[UUID]) -> set[UUID]:
        """Of these dossiers, those that may be purged now."""
        rows = await conn.fetch(
            f"""
            SELECT d.id FROM dossiers d, LATERAL (SELECT {_applied(self._default)} AS applied) a
            WHERE d.id = ANY($1) AND {_PURGEABLE}
            """,
            ids,
        )
        return {r["id"] for r in rows}

    async def propose(self, *, reason: str, dossier_ids: list[UUID], unit_ids: list[int], by: int) -> Purge:
        r = await self._pool.fetchrow(
            """
            INSERT INTO purges (id, reason, dossier_ids, unit_ids, proposed_by) VALUES ($1, $2, $3, $4, $5)
            RETURNING *
            """,
            uuid4(),
            reason,
            dossier_ids,
            unit_ids,
            by,
        )
        assert r is not None
        return Purge.from_record(r)

    async def purge(self, purge_id: UUID) -> Purge | None:
        r = await self._pool.fetchrow("SELECT * FROM purges WHERE id = $1", purge_id)
        return Purge.from_record(r) if r else None

    async def purges(self, *, units: list[int] | None, limit: int) -> list[Purge]:
        rows = await self._pool.fetch(
            "SELECT * FROM purges WHERE $1::bigint[] IS NULL OR unit_ids <@ $1 ORDER BY proposed_at DESC LIMIT $2",
            units,
            limit,
        )
        return [Purge.from_record(r) for r in rows]

    async def approve(self, purge_id: UUID, by: int) -> bool:
        status: str = await self._pool.execute(
            "UPDATE purges SET state = 'approved', approved_by = $2, approved_at = clock_timestamp() "
            "WHERE id = $1 AND state = 'proposed' AND proposed_by <> $2",
            purge_id,
            by,
        )
        return status.endswith(" 1")

    async def cancel(self, purge_id: UUID) -> bool:
        status: str = await self._pool.execute(
            "UPDATE purges SET state = 'cancelled' WHERE id = $1 AND state IN ('proposed', 'approved')", purge_id
        )
        return status.endswith(" 1")

    async def removal(self, conn: Transaction, dossier_id: UUID) -> Removal:
        """Lock the dossier and its files; what its purge removes. An object another record still needs
        (the same bytes in a dossier that is kept) stays."""
        await conn.execute("SELECT 1 FROM dossiers WHERE id = $1 FOR UPDATE", dossier_id)
        files = await conn.fetch(
            "SELECT id, sha256, ocr_object_key FROM files WHERE dossier_id = $1 AND state <> 'purged' FOR UPDATE",
            dossier_id,
        )
        shas = sorted({f["sha256"] for f in files})
        kept = {
            r["sha256"]
            for r in await conn.fetch(
                "SELECT DISTINCT sha256 FROM files WHERE sha256 = ANY($1) AND dossier_id <> $2 AND state <> 'purged'",
                shas,
                dossier_id,
            )
        }
        gone = [s for s in shas if s not in kept]
        keys = [
            r["object_key"]
            for r in await conn.fetch("SELECT object_key FROM blobs WHERE sha256 = ANY($1) AND purged_at IS NULL", gone)
        ]
        keys += [f["ocr_object_key"] for f in files if f["ocr_object_key"]]
        keys += [
            r["object_key"]
            for r in await conn.fetch(
                "SELECT object_key FROM signed_copies WHERE file_id = ANY($1)", [f["id"] for f in files]
            )
        ]
        return Removal(keys, [f["id"] for f in files], gone)

    async def mark_purged(self, conn: Transaction, dossier_id: UUID, removal: Removal) -> None:
        await conn.execute(
            "UPDATE result_codes SET withdrawn_at = clock_timestamp(), withdrawn_reason = 'purged' "
            "WHERE dossier_id = $1 AND withdrawn_at IS NULL",
            dossier_id,
        )
        await conn.execute(
            "UPDATE files SET state = 'purged', text_content = NULL, updated_at = clock_timestamp() WHERE id = ANY($1)",
            removal.file_ids,
        )
        await conn.execute("UPDATE blobs SET purged_at = clock_timestamp() WHERE sha256 = ANY($1)", removal.blob_shas)
        await conn.execute(
            "UPDATE dossiers SET state = 'purged', purged_at = clock_timestamp(), updated_at = clock_timestamp() "
            "WHERE id = $1",
            dossier_id,
        )

    async def finish(self, purge_id: UUID, by: int, outcome: dict[str, Any]) -> None:
        await self._pool.execute(
            "UPDATE purges SET state = 'done', done_by = $2, done_at = clock_timestamp(), outcome = $3 WHERE id = $1",
            purge_id,
            by,
            outcome,
        )


def _add_years(day: date, n: int) -> date:
    try:
        return day.replace(year=day.year + n)
    except ValueError:  # 29 February
        return day.replace(year=day.year + n, day=28)

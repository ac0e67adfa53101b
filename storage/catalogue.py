"""The procedure catalogue: each procedure (mã TTHC) in versions by effective date, with the components
that must be digitized and the result types it issues (migration 0010)."""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from storage.db import Transaction

# jsonb columns come and go as Python values (the pool's codec, storage/db.py).


@dataclass(frozen=True, slots=True)
class Component:
    """A dossier component (thành phần hồ sơ): its code within the procedure, and whether it must be
    digitized for the dossier to count as complete."""

    code: str
    name: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class ResultType:
    """A result the procedure issues, and how long it stays valid: ``none`` (no end), ``months`` (that
    many months from issue) or ``until`` (a fixed date)."""

    code: str
    name: str
    validity: str = "none"
    months: int | None = None
    until: date | None = None
    retention: str | None = None  # how long its dossiers are kept ('permanent', '10y'); None: not said


@dataclass(frozen=True, slots=True)
class ProcedureVersion:
    procedure_code: str
    effective_from: date
    name: str
    field: str | None
    levels: list[str]
    components: list[Component]
    result_types: list[ResultType]
    recorded_at: datetime | None = None

    @property
    def required_parts(self) -> list[str]:
        return [c.code for c in self.components if c.required]

    def component(self, code: str) -> Component | None:
        return next((c for c in self.components if c.code == code), None)

    def result_type(self, code: str) -> ResultType | None:
        return next((r for r in self.result_types if r.code == code), None)

    def part_name(self, code: str) -> str | None:
        part = self.component(code) or self.result_type(code)
        return part.name if part else None

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> ProcedureVersion:
        results = []
        for x in r["result_types"]:
            until = x.get("until")
            results.append(
                ResultType(
                    code=x["code"],
                    name=x["name"],
                    validity=x.get("validity", "none"),
                    months=x.get("months"),
                    until=date.fromisoformat(until) if until else None,
                    retention=x.get("retention"),
                )
            )
        return cls(
            procedure_code=r["procedure_code"],
            effective_from=r["effective_from"],
            name=r["name"],
            field=r["field"],
            levels=list(r["levels"]),
            components=[Component(**x) for x in r["components"]],
            result_types=results,
            recorded_at=r["recorded_at"],
        )


def add_months(day: date, months: int) -> date | None:
    """The same day ``months`` later (the month's last day when it is shorter); None past year 9999."""
    total = day.month - 1 + months
    year, month = day.year + total // 12, total % 12 + 1
    if year > 9999:
        return None
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def valid_until(kind: ResultType, issued_on: date | None) -> date | None:
    """When a result of this type issued on that day stops being valid (None: no end, or unknown)."""
    if kind.validity == "until":
        return kind.until
    if kind.validity == "months" and kind.months and issued_on is not None:
        return add_months(issued_on, kind.months)
    return None


def in_force(versions: list[ProcedureVersion], on: date) -> ProcedureVersion | None:
    """Of one procedure's versions (oldest first), the one in force on that day."""
    found = None
    for v in versions:
        if v.effective_from <= on:
            found = v
    return found


_COLUMNS = "procedure_code, effective_from, name, field, levels, components, result_types, recorded_at"


class Catalogue:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def versions(self, codes: list[str]) -> dict[str, list[ProcedureVersion]]:
        """Every version of these procedures, oldest first, by procedure code (absent: not catalogued)."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM procedure_versions WHERE procedure_code = ANY($1) "
            "ORDER BY procedure_code, effective_from",
            codes,
        )
        out: dict[str, list[ProcedureVersion]] = {}
        for r in rows:
            out.setdefault(r["procedure_code"], []).append(ProcedureVersion.from_record(r))
        return out

    async def latest(self, *, q: str | None, limit: int, after: str | None) -> list[ProcedureVersion]:
        """The newest version of each procedure, by code; ``q`` matches the code or the name."""
        rows = await self._pool.fetch(
            f"""
            SELECT DISTINCT ON (procedure_code) {_COLUMNS} FROM procedure_versions
            WHERE ($1::text IS NULL OR procedure_code ILIKE '%' || $1 || '%' OR name ILIKE '%' || $1 || '%')
              AND ($2::text IS NULL OR procedure_code > $2)
            ORDER BY procedure_code, effective_from DESC
            LIMIT $3
            """,
            q,
            after,
            limit,
        )
        return [ProcedureVersion.from_record(r) for r in rows]

    async def all(self) -> list[ProcedureVersion]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM procedure_versions ORDER BY procedure_code, effective_from"
        )
        return [ProcedureVersion.from_record(r) for r in rows]

    async def count(self) -> int:
        n: int = await self._pool.fetchval("SELECT count(*) FROM procedure_versions")
        return n

    async def put(self, conn: Transaction, versions: list[ProcedureVersion], recorded_by: int | None) -> int:
        """Record these versions (a version with the same procedure and date is replaced) and judge the
        dossiers they apply to again; how many dossiers that was."""
        await conn.execute(
            "INSERT INTO procedures (code) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            sorted({v.procedure_code for v in versions}),
        )
        await conn.executemany(
            """
            INSERT INTO procedure_versions (procedure_code, effective_from, name, field, levels, components,
                                            result_types, required_parts, recorded_by)
            VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9)
            ON CONFLICT (procedure_code, effective_from) DO UPDATE
            SET name = excluded.name, field = excluded.field, levels = excluded.levels,
                components = excluded.components, result_types = excluded.result_types,
                required_parts = excluded.required_parts, recorded_by = excluded.recorded_by,
                recorded_at = clock_timestamp()
            """,
            [
                (
                    v.procedure_code,
                    v.effective_from,
                    v.name,
                    v.field,
                    v.levels,
                    [{"code": c.code, "name": c.name, "required": c.required} for c in v.components],
                    [
                        {
                            "code": t.code,
                            "name": t.name,
                            "validity": t.validity,
                            "months": t.months,
                            "until": t.until.isoformat() if t.until else None,
                            "retention": t.retention,
                        }
                        for t in v.result_types
                    ],
                    v.required_parts,
                    recorded_by,
                )
                for v in versions
            ],
        )
        earliest: dict[str, date] = {}
        for v in versions:
            earliest[v.procedure_code] = min(v.effective_from, earliest.get(v.procedure_code, v.effective_from))
        # Setting a column to itself runs the completeness trigger: the dossiers are judged anew.
        status = await conn.execute(
            """
            UPDATE dossiers d SET procedure_code = d.procedure_code
            FROM unnest($1::text[], $2::date[]) AS c(code, since)
            WHERE d.procedure_code = c.code AND d.received_on >= c.since
            """,
            list(earliest),
            list(earliest.values()),
        )
        return int(status.rsplit(" ", 1)[-1])

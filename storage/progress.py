"""Targets per unit and year, and the digitized counts kept by triggers (migration 0007)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import asyncpg


@dataclass(frozen=True, slots=True)
class UnitProgress:
    """One unit's year: its declared total and target rate (when set); dossiers digitized (complete),
    started (a file accepted) and owed (returned with a result not yet digitized)."""

    unit_id: int
    code: str
    name: str
    level: str
    declared_total: int | None
    target_rate: float | None
    digitized: int
    started: int = 0
    owed: int = 0


@dataclass(frozen=True, slots=True)
class WeekProgress:
    unit_id: int
    week: date  # the week's Monday
    digitized: int


class Progress:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def set_target(self, unit_id: int, year: int, declared_total: int, target_rate: float | None) -> None:
        await self._pool.execute(
            """
            INSERT INTO unit_targets (unit_id, year, declared_total, target_rate) VALUES ($1, $2, $3, $4)
            ON CONFLICT (unit_id, year) DO UPDATE
            SET declared_total = excluded.declared_total, target_rate = excluded.target_rate,
                updated_at = clock_timestamp()
            """,
            unit_id,
            year,
            declared_total,
            Decimal(str(target_rate)) if target_rate is not None else None,
        )

    async def rows(self, year: int, unit_ids: list[int]) -> list[UnitProgress]:
        """Per unit: declared total and target rate (if set) and dossiers of that year digitized."""
        records = await self._pool.fetch(
            """
            SELECT u.id, u.code, u.name, u.level, t.declared_total, t.target_rate,
                   coalesce(p.complete, 0)::bigint AS digitized, coalesce(p.started, 0)::bigint AS started,
                   coalesce(o.owed, 0)::bigint AS owed
            FROM units u
            LEFT JOIN unit_targets t ON t.unit_id = u.id AND t.year = $1
            LEFT JOIN (SELECT unit_id, sum(complete) AS complete, sum(digitized) AS started FROM unit_progress
                       WHERE year = $1 AND unit_id = ANY($2) GROUP BY unit_id) p ON p.unit_id = u.id
            LEFT JOIN unit_owed o ON o.unit_id = u.id AND o.year = $1
            WHERE u.id = ANY($2)
            ORDER BY u.code
            """,
            year,
            unit_ids,
        )
        return [
            UnitProgress(
                unit_id=r["id"],
                code=r["code"],
                name=r["name"],
                level=r["level"],
                declared_total=r["declared_total"],
                target_rate=float(r["target_rate"]) if r["target_rate"] is not None else None,
                digitized=int(r["digitized"]),
                started=int(r["started"]),
                owed=int(r["owed"]),
            )
            for r in records
        ]

    async def weekly(self, year: int, unit_ids: list[int], since: date) -> list[WeekProgress]:
        records = await self._pool.fetch(
            """
            SELECT unit_id, week, sum(complete)::bigint AS digitized FROM unit_progress
            WHERE year = $1 AND unit_id = ANY($2) AND week >= $3
            GROUP BY unit_id, week ORDER BY week
            """,
            year,
            unit_ids,
            since,
        )
        return [WeekProgress(r["unit_id"], r["week"], int(r["digitized"])) for r in records]

"""Targets per unit and year, and the digitized counts kept by triggers (migration 0007)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import asyncpg


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

    async def rows(self, year: int, unit_ids: list[int]) -> list[asyncpg.Record]:
        """Per unit: declared total and target rate (if set) and dossiers of that year digitized."""
        return await self._pool.fetch(
            """
            SELECT u.id, u.code, u.name, u.level, t.declared_total, t.target_rate,
                   coalesce(p.digitized, 0)::bigint AS digitized
            FROM units u
            LEFT JOIN unit_targets t ON t.unit_id = u.id AND t.year = $1
            LEFT JOIN (SELECT unit_id, sum(digitized) AS digitized FROM unit_progress
                       WHERE year = $1 AND unit_id = ANY($2) GROUP BY unit_id) p ON p.unit_id = u.id
            WHERE u.id = ANY($2)
            ORDER BY u.code
            """,
            year,
            unit_ids,
        )

    async def weekly(self, year: int, unit_ids: list[int], since: date) -> list[asyncpg.Record]:
        return await self._pool.fetch(
            """
            SELECT unit_id, week, sum(digitized)::bigint AS digitized FROM unit_progress
            WHERE year = $1 AND unit_id = ANY($2) AND week >= $3
            GROUP BY unit_id, week ORDER BY week
            """,
            year,
            unit_ids,
            since,
        )

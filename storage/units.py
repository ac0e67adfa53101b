"""The unit tree: province, departments, districts, communes. The tree is the permission boundary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

LEVELS = ("province", "department", "district", "commune")


@dataclass(frozen=True, slots=True)
class Unit:
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    parent_code: str | None
    placeholder: bool

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> Unit:
        return cls(
            id=r["id"],
            code=r["code"],
            name=r["name"],
            level=r["level"],
            parent_id=r["parent_id"],
            parent_code=r["parent_code"],
            placeholder=r["placeholder"],
        )


_SELECT = """
SELECT u.id, u.code, u.name, u.level, u.parent_id, p.code AS parent_code, u.placeholder
FROM units u LEFT JOIN units p ON p.id = u.parent_id
"""


class Units:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get_by_code(self, code: str) -> Unit | None:
        r = await self._pool.fetchrow(_SELECT + " WHERE u.code = $1", code)
        return Unit.from_record(r) if r else None

    async def get(self, unit_id: int) -> Unit | None:
        r = await self._pool.fetchrow(_SELECT + " WHERE u.id = $1", unit_id)
        return Unit.from_record(r) if r else None

    async def subtree_ids(self, unit_id: int) -> list[int]:
        """The unit and every unit below it."""
        rows = await self._pool.fetch(
            """
            WITH RECURSIVE sub AS (
                SELECT id FROM units WHERE id = $1
                UNION ALL
                SELECT u.id FROM units u JOIN sub ON u.parent_id = sub.id
            )
            SELECT id FROM sub
            """,
            unit_id,
        )
        return [r["id"] for r in rows]

    async def list(self, *, level: str | None, parent_id: int | None, scope: list[int] | None) -> list[Unit]:
        rows = await self._pool.fetch(
            _SELECT
            + """
            WHERE ($1::text IS NULL OR u.level = $1)
              AND ($2::bigint IS NULL OR u.parent_id = $2)
              AND ($3::bigint[] IS NULL OR u.id = ANY($3))
            ORDER BY u.level = 'province' DESC, u.parent_id NULLS FIRST, u.code
            """,
            level,
            parent_id,
            scope,
        )
        return [Unit.from_record(r) for r in rows]

    async def upsert(
        self,
        conn: Any,
        *,
        code: str,
        name: str,
        level: str,
        parent_id: int | None,
        placeholder: bool = False,
    ) -> int:
        """Create a unit, or leave an existing one with that code as it is. Returns its id."""
        unit_id: int | None = await conn.fetchval(
            """
            INSERT INTO units (code, name, level, parent_id, placeholder)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (code) DO NOTHING
            RETURNING id
            """,
            code,
            name,
            level,
            parent_id,
            placeholder,
        )
        if unit_id is None:
            unit_id = await conn.fetchval("SELECT id FROM units WHERE code = $1", code)
        assert unit_id is not None
        return unit_id

    async def count_by_level(self) -> dict[str, int]:
        rows = await self._pool.fetch("SELECT level, count(*) AS n FROM units GROUP BY level")
        return {r["level"]: r["n"] for r in rows}

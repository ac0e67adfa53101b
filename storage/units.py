"""The unit tree: province, departments, districts, communes. The tree is the permission boundary."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

import asyncpg

from storage.db import Transaction

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
    valid_from: date
    valid_to: date | None
    successor_code: str | None

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> Unit:
        return cls(**{f.name: r[f.name] for f in fields(cls)})

    @property
    def retired(self) -> bool:
        return self.valid_to is not None


_SELECT = """
SELECT u.id, u.code, u.name, u.level, u.parent_id, p.code AS parent_code, u.placeholder,
       u.valid_from, u.valid_to, s.code AS successor_code
FROM units u LEFT JOIN units p ON p.id = u.parent_id LEFT JOIN units s ON s.id = u.successor_id
"""


class Units:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get_by_code(self, code: str) -> Unit | None:
        r = await self._pool.fetchrow(_SELECT + " WHERE u.code = $1", code)
        return Unit.from_record(r) if r else None

    async def by_codes(self, codes: list[str]) -> dict[str, Unit]:
        """The units with these codes, in one query (absent codes are left out)."""
        rows = await self._pool.fetch(_SELECT + " WHERE u.code = ANY($1)", codes)
        return {r["code"]: Unit.from_record(r) for r in rows}

    async def get(self, unit_id: int) -> Unit | None:
        r = await self._pool.fetchrow(_SELECT + " WHERE u.id = $1", unit_id)
        return Unit.from_record(r) if r else None

    async def subtree_ids(self, unit_id: int) -> list[int]:
        """The unit, every unit below it, and every unit merged into one of those (with its records)."""
        rows = await self._pool.fetch(
            """
            WITH RECURSIVE sub AS (
                SELECT id FROM units WHERE id = $1
                UNION
                SELECT u.id FROM units u JOIN sub ON u.parent_id = sub.id OR u.successor_id = sub.id
            )
            SELECT id FROM sub
            """,
            unit_id,
        )
        return [r["id"] for r in rows]

    async def with_predecessors(self, unit_id: int) -> list[int]:
        """The unit and every unit merged into it, directly or through earlier merges."""
        rows = await self._pool.fetch(
            """
            WITH RECURSIVE sub AS (
                SELECT id FROM units WHERE id = $1
                UNION
                SELECT u.id FROM units u JOIN sub ON u.successor_id = sub.id
            )
            SELECT id FROM sub
            """,
            unit_id,
        )
        return [r["id"] for r in rows]

    async def find(
        self,
        *,
        level: str | None,
        parent_id: int | None,
        scope: list[int] | None,
        include_retired: bool = False,
    ) -> list[Unit]:
        rows = await self._pool.fetch(
            _SELECT
            + """
            WHERE ($1::text IS NULL OR u.level = $1)
              AND ($2::bigint IS NULL OR u.parent_id = $2)
              AND ($3::bigint[] IS NULL OR u.id = ANY($3))
              AND ($4 OR u.valid_to IS NULL)
            ORDER BY u.level = 'province' DESC, u.parent_id NULLS FIRST, u.code
            """,
            level,
            parent_id,
            scope,
            include_retired,
        )
        return [Unit.from_record(r) for r in rows]

    async def tree_on(self, day: date, *, scope: list[int] | None) -> list[Unit]:
        """The units that existed on ``day``, each under the parent it had then."""
        rows = await self._pool.fetch(
            """
            WITH as_of AS (
                SELECT u.*, coalesce(
                    (SELECT c.old_parent_id FROM unit_changes c
                     WHERE c.unit_id = u.id AND c.kind = 'move' AND c.effective_on > $1
                     ORDER BY c.effective_on, c.id LIMIT 1),
                    u.parent_id) AS parent_then
                FROM units u
                WHERE u.valid_from <= $1 AND (u.valid_to IS NULL OR u.valid_to > $1)
            )
            SELECT t.id, t.code, t.name, t.level, t.parent_then AS parent_id, p.code AS parent_code,
                   t.placeholder, t.valid_from, t.valid_to, s.code AS successor_code
            FROM as_of t LEFT JOIN units p ON p.id = t.parent_then LEFT JOIN units s ON s.id = t.successor_id
            WHERE ($2::bigint[] IS NULL OR t.id = ANY($2))
            ORDER BY t.level = 'province' DESC, t.parent_then NULLS FIRST, t.code
            """,
            day,
            scope,
        )
        return [Unit.from_record(r) for r in rows]

    async def id_of(self, conn: Transaction, code: str) -> int | None:
        """The id of the unit with this code, inside the caller's transaction (None: there is none)."""
        found: int | None = await conn.fetchval("SELECT id FROM units WHERE code = $1", code)
        return found

    async def create_or_update(
        self, conn: Transaction, *, code: str, name: str, level: str, parent_id: int | None
    ) -> tuple[int, bool]:
        """Create a unit, or give an existing one (a placeholder, say) this name, level and parent.

        Returns (id, created).
        """
        r = await conn.fetchrow(
            """
            INSERT INTO units (code, name, level, parent_id, placeholder) VALUES ($1, $2, $3, $4, false)
            ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,
                parent_id = EXCLUDED.parent_id, placeholder = false
            RETURNING id, (xmax = 0) AS created
            """,
            code,
            name,
            level,
            parent_id,
        )
        assert r is not None  # INSERT ... RETURNING answers a row
        return r["id"], r["created"]

    async def record_change(
        self,
        conn: Transaction,
        *,
        unit_id: int,
        kind: str,
        effective_on: date,
        by: int,
        old_parent_id: int | None = None,
        new_parent_id: int | None = None,
        successor_id: int | None = None,
    ) -> None:
        await conn.execute(
            """
            INSERT INTO unit_changes (unit_id, kind, effective_on, old_parent_id, new_parent_id, successor_id,
                                      recorded_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """,
            unit_id,
            kind,
            effective_on,
            old_parent_id,
            new_parent_id,
            successor_id,
            by,
        )

    async def set_parent(self, conn: Transaction, unit_id: int, parent_id: int) -> None:
        await conn.execute("UPDATE units SET parent_id = $2 WHERE id = $1", unit_id, parent_id)

    async def retire(self, conn: Transaction, unit_id: int, *, successor_id: int, effective_on: date) -> None:
        await conn.execute(
            "UPDATE units SET valid_to = $3, successor_id = $2 WHERE id = $1", unit_id, successor_id, effective_on
        )

    async def children(self, conn: Transaction, unit_id: int) -> list[int]:
        rows = await conn.fetch("SELECT id FROM units WHERE parent_id = $1 AND valid_to IS NULL", unit_id)
        return [r["id"] for r in rows]

    async def upsert(
        self,
        conn: Transaction,
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

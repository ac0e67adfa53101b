"""Migrations apply once, in order, even when several processes start at the same moment."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage import drop_database, migrate
from storage.db import migration_files

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_concurrent_migrations_apply_each_file_once(prepared: object) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/warehouse_migrations_test"
    await drop_database(url)
    try:
        results = await asyncio.gather(*(migrate(url) for _ in range(4)))
        names = [name for name, _ in migration_files()]
        assert sorted(n for r in results for n in r) == sorted(names), "every migration applied by exactly one process"
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch("SELECT name FROM schema_migrations ORDER BY name")
            assert [r["name"] for r in rows] == names
        finally:
            await conn.close()
        assert await migrate(url) == []
    finally:
        await drop_database(url)

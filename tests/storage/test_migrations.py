"""Migrations apply once, in order, even when several processes start at the same moment."""

from __future__ import annotations

import asyncio
from datetime import datetime

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


async def test_the_catalogue_migration_keeps_every_digitized_dossier_counted(prepared: object) -> None:
    """A warehouse from before migration 0010: its digitized dossiers are complete, counted as before."""
    from storage import ensure_database

    url = "postgresql://postgres@127.0.0.1:5432/warehouse_upgrade_test"
    await drop_database(url)
    await ensure_database(url)
    earlier = [(n, sql) for n, sql in migration_files() if n < "0010"]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for name, sql in earlier:
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
        unit = await conn.fetchval(
            "INSERT INTO units (code, name, level) VALUES ('000.00.00.HXX', 'Tỉnh', 'province') RETURNING id"
        )
        account = await conn.fetchval(
            "INSERT INTO accounts (login, unit_id, role, password_hash) VALUES ('cu', $1, 'province_admin', 'x') "
            "RETURNING id",
            unit,
        )
        for code, digitized in (("A-1", "2024-03-05 10:00+07"), ("A-2", None)):
            await conn.execute(
                "INSERT INTO dossiers (id, code, unit_id, procedure_code, subject_name, subject_id_kind, "
                "subject_id_number, received_on, created_by, digitized_at) "
                "VALUES (gen_random_uuid(), $1, $2, '1.001612', 'Người cũ', 'other', 'x', '2024-03-01', $3, $4)",
                code,
                unit,
                account,
                None if digitized is None else datetime.fromisoformat(digitized),
            )
        before = await conn.fetchval("SELECT sum(digitized) FROM unit_progress")
    finally:
        await conn.close()
    assert (await migrate(url))[0] == "0010_catalogue_intake.sql"  # and those after it
    conn = await asyncpg.connect(url)
    try:
        rows = {r["code"]: r for r in await conn.fetch("SELECT code, digitized_at, complete_at FROM dossiers")}
        assert rows["A-1"]["complete_at"] == rows["A-1"]["digitized_at"] and rows["A-2"]["complete_at"] is None
        counts = await conn.fetchrow("SELECT sum(digitized) AS started, sum(complete) AS complete FROM unit_progress")
        assert (counts["started"], counts["complete"]) == (before, 1) == (1, 1)
    finally:
        await conn.close()
        await drop_database(url)

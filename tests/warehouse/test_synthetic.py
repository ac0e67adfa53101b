"""warehouse seed --synthetic N: realistic dossiers, loaded fast, consistent with counters and codes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from storage import Database, DossierFilter, Dossiers, Settings, drop_database, migrate
from warehouse.security import Passwords
from warehouse.seed import seed
from warehouse.synthetic import load_synthetic

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def own_db(settings: Settings) -> AsyncIterator[Database]:
    """A database of its own: thousands of synthetic dossiers must not show up in other tests' lists."""
    url = settings.database_url + "_synthetic"
    await drop_database(url)
    await migrate(url)
    db = await Database.connect(url, min_size=1, max_size=2)
    await seed(db, suffix="HXX", admin_password="p" * 16, passwords=Passwords.from_settings(settings))
    yield db
    await db.close()
    await drop_database(url)


async def test_synthetic_dossiers_are_valid_searchable_and_counted(own_db: Database) -> None:
    pool = own_db.pool
    admin_id = await pool.fetchval("SELECT id FROM accounts WHERE login = 'admin'")
    assert await load_synthetic(own_db, 3000, created_by=admin_id, seed=7) == 3000
    assert await pool.fetchval("SELECT count(*) FROM dossiers") == 3000
    codes = [r["code"] for r in await pool.fetch("SELECT code FROM dossiers")]
    assert all(re.fullmatch(r"[0-9A-Z.]+-\d{6}-\d{4}", c) for c in codes)
    by_level = dict(
        await pool.fetch("SELECT u.level, count(*) FROM dossiers d JOIN units u ON u.id = d.unit_id GROUP BY 1")
    )
    assert set(by_level) == {"department", "district", "commune"}
    counted = await pool.fetchval("SELECT coalesce(sum(digitized), 0) FROM unit_progress")
    digitized = await pool.fetchval("SELECT count(*) FROM dossiers WHERE digitized_at IS NOT NULL")
    assert counted == digitized > 0, "the progress counters agree with the dossiers"

    # Found by name without diacritics.
    found = await Dossiers(pool).list(DossierFilter(q="hoang thi"), scope=None, limit=5, after=None)
    assert found and all("Hoàng Thị" in d.subject_name for d in found)

    # A new dossier of a unit-day the load used gets the next number, not a taken one.
    busy = await pool.fetchrow("SELECT unit_id, received_on, max(code) AS code FROM dossiers GROUP BY 1, 2 LIMIT 1")
    async with own_db.transaction() as conn:
        n = await Dossiers(pool).next_sequence(conn, busy["unit_id"], busy["received_on"])
    assert n == int(busy["code"][-4:]) + 1

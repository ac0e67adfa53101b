"""The seeded province: its unit tree as in the 2023 report, and an idempotent seed."""

from __future__ import annotations

import pytest

from storage import Database
from tests.factories import ADMIN_PASSWORD, Api, auth
from warehouse.security import Passwords
from warehouse.seed import DISTRICTS, seed

pytestmark = pytest.mark.asyncio(loop_scope="session")


def is_seeded(unit: dict[str, object]) -> bool:
    """Not one of the districts other tests make for themselves (tests/factories.py: Subtree)."""
    return str(unit["code"]).endswith(".HXX")


async def test_units_by_level_and_communes_per_district(api: Api) -> None:
    token = await api.admin()
    seeded = [u for u in (await api.client.get("/api/v1/units", headers=auth(token))).json() if is_seeded(u)]
    by_level: dict[str, int] = {}
    for u in seeded:
        by_level[u["level"]] = by_level.get(u["level"], 0) + 1
    assert by_level == {"province": 1, "department": 20, "district": 11, "commune": 200}
    districts = (await api.client.get("/api/v1/units", params={"level": "district"}, headers=auth(token))).json()
    districts = [d for d in districts if is_seeded(d)]
    counts = {}
    for d in districts:
        communes = await api.client.get("/api/v1/units", params={"parent": d["code"]}, headers=auth(token))
        counts[d["name"]] = len(communes.json())
        assert all(c["placeholder"] and "chưa có tên thật" in c["name"] for c in communes.json())
    assert counts == dict(DISTRICTS)
    assert counts["UBND huyện Hữu Lũng"] == 24


async def test_seed_twice_changes_nothing(api: Api, db: Database) -> None:
    before = await db.pool.fetchval("SELECT count(*) FROM units")
    report = await seed(
        db,
        suffix=api.settings.province_org_suffix,
        admin_password="another-password",
        passwords=Passwords.from_settings(api.settings),
    )
    assert report.admin_created is False
    assert await db.pool.fetchval("SELECT count(*) FROM units") == before
    assert await api.login("admin", ADMIN_PASSWORD)

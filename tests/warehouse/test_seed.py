"""The seeded province: its unit tree as in the 2023 report, and an idempotent seed."""

from __future__ import annotations

import pytest

from storage import Database
from tests.factories import ADMIN_PASSWORD, Api, auth
from warehouse.security import Passwords
from warehouse.seed import DEPARTMENTS, DISTRICTS, FIRST_DISTRICT_NUMBER, org_code, seed

pytestmark = pytest.mark.asyncio(loop_scope="session")


SEEDED = {
    org_code("HXX"),
    *(org_code("HXX", second=n) for n in range(1, len(DEPARTMENTS) + 1)),
    *(
        org_code("HXX", third=c, second=d)
        for d, (_, communes) in enumerate(DISTRICTS, start=FIRST_DISTRICT_NUMBER)
        for c in range(communes + 1)
    ),
}


def is_seeded(unit: dict[str, object]) -> bool:
    """A unit the seed made, not one another test made for itself (a subtree, a merger's new unit)."""
    return unit["code"] in SEEDED


async def test_units_by_level_and_communes_per_district(api: Api) -> None:
    token = await api.admin()
    listed = await api.client.get("/api/v1/units", params={"include_retired": "true"}, headers=auth(token))
    seeded = [u for u in listed.json() if is_seeded(u)]
    by_level: dict[str, int] = {}
    for u in seeded:
        by_level[u["level"]] = by_level.get(u["level"], 0) + 1
    assert by_level == {"province": 1, "department": 20, "district": 11, "commune": 200}
    districts = (await api.client.get("/api/v1/units", params={"level": "district"}, headers=auth(token))).json()
    districts = [d for d in districts if is_seeded(d)]
    counts = {}
    for d in districts:
        communes = await api.client.get("/api/v1/units", params={"parent": d["code"]}, headers=auth(token))
        own = [c for c in communes.json() if is_seeded(c)]
        counts[d["name"]] = len(own)
        assert all(c["placeholder"] and "chưa có tên thật" in c["name"] for c in own)
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

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


async def test_the_sample_catalogue_goes_only_into_a_warehouse_without_records(api: Api) -> None:
    """A new warehouse gets the sample catalogue; an upgraded one that holds dossiers does not (they would
    be judged against sample data)."""
    from storage import drop_database, migrate

    url = api.settings.database_url.rsplit("/", 1)[0] + "/warehouse_test_seed_upgrade"
    passwords = Passwords.from_settings(api.settings)
    await drop_database(url)
    await migrate(url)
    db = await Database.connect(url, min_size=1, max_size=2)
    try:
        from warehouse.seed import seed_units

        await seed_units(db, "HXX")
        account = await db.pool.fetchval(
            "INSERT INTO accounts (login, unit_id, role, password_hash) "
            "SELECT 'cu', id, 'province_admin', 'x' FROM units WHERE level = 'province' RETURNING id"
        )
        await db.pool.execute(
            "INSERT INTO dossiers (id, code, unit_id, procedure_code, subject_name, subject_id_kind, "
            "subject_id_number, received_on, created_by, digitized_at) "
            "SELECT gen_random_uuid(), 'CU-1', id, '1.001612', 'Người cũ', 'other', 'x', '2022-01-01', $1, now() "
            "FROM units WHERE level = 'province'",
            account,
        )
        report = await seed(db, suffix="HXX", admin_password=ADMIN_PASSWORD, passwords=passwords)
        assert (report.starter_loaded, report.catalogue_versions) == (False, 0)
        assert await db.pool.fetchval("SELECT complete_at IS NOT NULL FROM dossiers WHERE code = 'CU-1'")
    finally:
        await db.close()
        await drop_database(url)
    fresh = await Database.connect(api.settings.database_url, min_size=1, max_size=1)
    try:
        assert await fresh.pool.fetchval("SELECT count(*) FROM procedure_versions WHERE procedure_code = '1.001612'")
    finally:
        await fresh.close()

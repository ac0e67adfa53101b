"""Every account sees exactly what it may: a matrix over two districts with two communes each."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import Api, auth, commune, district
from tests.pdfs import text_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Bắc Sơn (26) and Hữu Lũng (27), communes 10 and 11 of each.
D1, D2 = 26, 27


@dataclass
class World:
    tokens: dict[str, str]
    dossiers: dict[str, dict[str, object]]
    files: dict[str, str]


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    tokens = {}
    for name, role, unit in [
        ("op_d1c1", "operator", commune(D1, 10)),
        ("op_d1c2", "operator", commune(D1, 11)),
        ("op_d2c1", "operator", commune(D2, 10)),
        ("viewer_d1", "viewer", district(D1)),
        ("admin_d1", "unit_admin", district(D1)),
        ("viewer_d2", "viewer", district(D2)),
    ]:
        _, tokens[name] = await api.account(role, unit)
    dossiers, files = {}, {}
    for owner in ("op_d1c1", "op_d1c2", "op_d2c1"):
        d = await api.dossier(
            tokens[owner],
            subject={"name": f"Người dân {owner}", "id_kind": "cccd", "id_number": "020188000777"},
            title=f"Hồ sơ ma trận {owner}",
        )
        dossiers[owner] = d
        files[owner] = (await api.upload(tokens[owner], str(d["id"]), text_pdf())).json()["id"]
    return World(tokens, dossiers, files)


# Who may read the records of whom.
READS = {
    "op_d1c1": {"op_d1c1"},
    "op_d1c2": {"op_d1c2"},
    "op_d2c1": {"op_d2c1"},
    "viewer_d1": {"op_d1c1", "op_d1c2"},
    "admin_d1": {"op_d1c1", "op_d1c2"},
    "viewer_d2": {"op_d2c1"},
}
# Who may change the records of whom (viewers read only).
WRITES = {
    "op_d1c1": {"op_d1c1"},
    "op_d1c2": {"op_d1c2"},
    "op_d2c1": {"op_d2c1"},
    "viewer_d1": set(),
    "admin_d1": {"op_d1c1", "op_d1c2"},
    "viewer_d2": set(),
}
OWNERS = ("op_d1c1", "op_d1c2", "op_d2c1")


@pytest.mark.parametrize("caller", sorted(READS))
async def test_reads(api: Api, world: World, caller: str) -> None:
    h = auth(world.tokens[caller])
    for owner in OWNERS:
        d, f = world.dossiers[owner], world.files[owner]
        expected = 200 if owner in READS[caller] else 404
        assert (await api.client.get(f"/api/v1/dossiers/{d['id']}", headers=h)).status_code == expected
        assert (await api.client.get(f"/api/v1/files/{f}", headers=h)).status_code == expected
        assert (await api.client.get(f"/api/v1/files/{f}/content", headers=h)).status_code == expected
    # Lists and search show exactly the readable ones, and nothing counts the others.
    listed = await api.client.get("/api/v1/dossiers", params={"subject_id": "020188000777"}, headers=h)
    assert {x["id"] for x in listed.json()["items"]} == {world.dossiers[o]["id"] for o in READS[caller]}
    searched = await api.client.get("/api/v1/dossiers", params={"q": "ho so ma tran"}, headers=h)
    assert {x["id"] for x in searched.json()["items"]} == {world.dossiers[o]["id"] for o in READS[caller]}
    units = {u["code"] for u in (await api.client.get("/api/v1/units", headers=h)).json()}
    assert (commune(D2, 10) in units) == (caller in ("op_d2c1", "viewer_d2"))
    assert commune(D1, 11) not in units or caller in ("op_d1c2", "viewer_d1", "admin_d1")


@pytest.mark.parametrize("caller", sorted(WRITES))
async def test_writes(api: Api, world: World, caller: str) -> None:
    h = auth(world.tokens[caller])
    for owner in OWNERS:
        d = world.dossiers[owner]
        r = await api.client.patch(f"/api/v1/dossiers/{d['id']}", json={"title": f"sửa bởi {caller}"}, headers=h)
        if owner in WRITES[caller]:
            assert r.status_code == 200
        else:
            assert r.status_code == (403 if owner in READS[caller] else 404), (owner, r.text)
        up = await api.upload(world.tokens[caller], str(d["id"]), text_pdf())
        assert up.status_code == (201 if owner in WRITES[caller] else 403 if owner in READS[caller] else 404)


async def test_admin_endpoints_refuse_other_roles(api: Api, world: World) -> None:
    for caller in ("op_d1c1", "viewer_d1"):
        h = auth(world.tokens[caller])
        assert (await api.client.get("/api/v1/accounts", headers=h)).status_code == 403
        assert (await api.client.get("/api/v1/audit", headers=h)).status_code == 403
        r = await api.client.post(
            "/api/v1/units",
            json={"code": "000.99.26.HXX", "name": "X", "level": "commune", "parent_code": district(D1)},
            headers=h,
        )
        assert r.status_code == 403
    accounts = await api.client.get("/api/v1/accounts", headers=auth(world.tokens["admin_d1"]))
    assert accounts.status_code == 200
    assert {a["unit_code"] for a in accounts.json()} <= {commune(D1, n) for n in range(1, 19)} | {district(D1)}

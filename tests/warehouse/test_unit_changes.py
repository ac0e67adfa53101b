"""Units change (merges in 2019-2020 and 2024, districts abolished in 2025): nothing is lost."""

from __future__ import annotations

import pytest

from tests.factories import Api, Subtree, auth, district, new_subtree, province
from warehouse.dossier_rules import today_local

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_merge_keeps_records_and_the_successor_sees_them(api: Api, tree: Subtree) -> None:
    admin = await api.admin()
    old, new = tree.commune(1), tree.commune(2)  # two communes of one district
    _, old_operator = await api.account("operator", old)
    _, new_operator = await api.account("operator", new)
    kept = await api.dossier(old_operator, received_on="2023-05-04")
    assert (await api.client.get(f"/api/v1/dossiers/{kept['id']}", headers=auth(new_operator))).status_code == 404

    r = await api.client.post(
        f"/api/v1/units/{old}/merge", json={"into": new, "effective_on": "2024-01-01"}, headers=auth(admin)
    )
    assert r.status_code == 200, r.text
    assert r.json()["valid_to"] == "2024-01-01" and r.json()["successor_code"] == new

    got = await api.client.get(f"/api/v1/dossiers/{kept['id']}", headers=auth(new_operator))
    assert got.status_code == 200 and got.json()["code"] == kept["code"]
    listed = await api.client.get("/api/v1/dossiers", params={"unit": new}, headers=auth(new_operator))
    assert kept["id"] in {d["id"] for d in listed.json()["items"]}
    # The merged commune takes no new dossiers, and is gone from the current tree but not from history.
    r = await api.client.post(
        "/api/v1/dossiers",
        json={
            "procedure_code": "1.002891",
            "unit_code": old,
            "subject": {"name": "A", "id_kind": "other", "id_number": "a"},
        },
        headers=auth(admin),
    )
    assert (r.status_code, r.json()["code"]) == (409, "unit_retired")
    now = {
        u["code"]
        for u in (await api.client.get("/api/v1/units", params={"parent": tree.district}, headers=auth(admin))).json()
    }
    then = await api.client.get(
        "/api/v1/units", params={"parent": tree.district, "on": "2023-12-31"}, headers=auth(admin)
    )
    assert old not in now and old in {u["code"] for u in then.json()}


async def test_districts_abolished_communes_move_under_the_province(api: Api, tree: Subtree) -> None:
    admin = await api.admin()
    moving = tree.commune(1)
    _, district_viewer = await api.account("viewer", tree.district)
    _, operator = await api.account("operator", moving)
    d = await api.dossier(operator)
    assert (await api.client.get(f"/api/v1/dossiers/{d['id']}", headers=auth(district_viewer))).status_code == 200
    today = today_local().isoformat()
    r = await api.client.post(
        f"/api/v1/units/{moving}/move", json={"parent": province(), "effective_on": today}, headers=auth(admin)
    )
    assert r.status_code == 200 and r.json()["parent_code"] == province()
    assert (await api.client.get(f"/api/v1/dossiers/{d['id']}", headers=auth(operator))).status_code == 200
    yesterday = await api.client.get(
        "/api/v1/units", params={"on": "2020-01-01", "level": "commune"}, headers=auth(admin)
    )
    assert {u["code"]: u["parent_code"] for u in yesterday.json()}[moving] == tree.district
    r = await api.client.post(
        f"/api/v1/units/{moving}/move", json={"parent": province(), "effective_on": "2999-01-01"}, headers=auth(admin)
    )
    assert (r.status_code, r.json()["code"]) == (422, "effective_in_future")


async def test_import_names_the_placeholder_communes_or_refuses_the_whole_file(api: Api) -> None:
    admin = await api.admin()
    own = await new_subtree(api.db, placeholder=True)  # placeholders as the seed makes them, of this test alone
    added = own.commune(1).replace(".01.", ".09.", 1)
    good = (
        "code,name,level,parent_code\n"
        f"{own.commune(1)},Phường Vĩnh Trại,commune,{own.district}\n"
        f"{added},Phường Mới,commune,{own.district}\n"
    )
    r = await api.client.post(
        "/api/v1/units/import", content=good.encode(), headers={**auth(admin), "Content-Type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 1, "updated": 1}
    unit = (await api.client.get(f"/api/v1/units/{own.commune(1)}", headers=auth(admin))).json()
    assert unit["name"] == "Phường Vĩnh Trại" and unit["placeholder"] is False
    bad = "code,name,level,parent_code\nbad code,X,commune,NOWHERE\n000.10.21.HXX,,hamlet,000.00.21.HXX\n"
    r = await api.client.post(
        "/api/v1/units/import", content=bad.encode(), headers={**auth(admin), "Content-Type": "text/csv"}
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid_rows")
    assert len(r.json()["errors"]) >= 4
    assert (await api.client.get("/api/v1/units/000.10.21.HXX", headers=auth(admin))).status_code == 404


async def test_province_admin_adds_a_unit_where_its_level_fits(api: Api) -> None:
    admin = await api.admin()
    r = await api.client.post(
        "/api/v1/units",
        json={"code": "000.25.24.HXX", "name": "Xã Hữu Liên", "level": "commune", "parent_code": district(24)},
        headers=auth(admin),
    )
    assert r.status_code == 201, r.text
    assert r.json()["parent_code"] == district(24) and r.json()["placeholder"] is False
    again = await api.client.post(
        "/api/v1/units",
        json={"code": "000.25.24.HXX", "name": "Xã Hữu Liên", "level": "commune", "parent_code": district(24)},
        headers=auth(admin),
    )
    assert (again.status_code, again.json()["code"]) == (409, "unit_code_taken")
    wrong = await api.client.post(
        "/api/v1/units",
        json={"code": "000.26.24.HXX", "name": "Sai cấp", "level": "district", "parent_code": district(24)},
        headers=auth(admin),
    )
    assert (wrong.status_code, wrong.json()["code"]) == (422, "invalid_parent")

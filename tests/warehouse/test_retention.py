"""Keeping records through the API: retention classes that only lengthen, legal holds that stop every
deletion, undoing a delete, and a purge that needs two administrators and spares what must be kept."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from uuid import UUID

import pytest

from storage import ObjectNotFound, Settings, object_store
from tests.factories import Api, Subtree, auth
from tests.pdfs import _one_text_page, build_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")

OLD = "2010-03-01"  # received long ago: past a 5-year class


def a_pdf(text: str) -> bytes:
    # more than a page's worth of text for OCR to skip it (20 characters)
    return build_pdf(_one_text_page(b"BT /F1 12 Tf 100 700 Td (Ho so luu tru kiem tra: %s) Tj ET" % text.encode()))


async def retention(api: Api, token: str, dossier_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/api/v1/dossiers/{dossier_id}/retention", headers=auth(token))
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


async def test_a_class_comes_from_the_catalogue_and_the_units_and_is_never_shortened(
    api: Api, tree: Subtree, tree2: Subtree
) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    d = await api.dossier(operator, received_on=OLD)
    assert await retention(api, operator, d["id"]) == {
        "applied": "permanent",  # the warehouse's default when nothing says otherwise
        "floor": "permanent",
        "own": None,
        "retain_until": None,
        "held": False,
    }
    r = await api.client.put(f"/api/v1/units/{tree.district}/retention", json={"retention": "10y"}, headers=auth(admin))
    assert r.status_code == 200 and r.json()["applied"] == "10y", r.text
    got = await retention(api, operator, d["id"])
    assert got["applied"] == "10y" and got["retain_until"] == "2020-03-01"

    # a commune keeps longer than its district, never shorter
    r = await api.client.put(
        f"/api/v1/units/{tree.commune(1)}/retention", json={"retention": "5y"}, headers=auth(admin)
    )
    assert (r.status_code, r.json()["code"]) == (422, "retention_below_class")
    r = await api.client.put(
        f"/api/v1/units/{tree.commune(1)}/retention", json={"retention": "20y"}, headers=auth(admin)
    )
    assert r.status_code == 200 and r.json() == {
        "unit": tree.commune(1),
        "retention": "20y",
        "above": "10y",
        "applied": "20y",
    }
    # the dossier itself: longer, or 422
    r = await api.client.put(f"/api/v1/dossiers/{d['id']}/retention", json={"retention": "15y"}, headers=auth(admin))
    assert (r.status_code, r.json()["code"]) == (422, "retention_below_class") and r.json()["floor"] == "20y"
    r = await api.client.put(
        f"/api/v1/dossiers/{d['id']}/retention", json={"retention": "permanent"}, headers=auth(admin)
    )
    assert r.status_code == 200 and r.json()["applied"] == "permanent" and r.json()["own"] == "permanent"
    r = await api.client.put(f"/api/v1/dossiers/{d['id']}/retention", json={"retention": "3 năm"}, headers=auth(admin))
    assert (r.status_code, r.json()["code"]) == (422, "invalid_fields") and "retention" in r.json()["detail"]

    # the catalogue: a procedure whose result is kept 70 years lengthens its dossiers' class
    province = await api.admin()
    r = await api.client.put(
        "/api/v1/procedures/9.000070/versions/2000-01-01",
        json={
            "name": "Thủ tục lưu 70 năm",
            "levels": ["commune"],
            "result_types": [{"code": "KQ1", "name": "Giấy tờ", "retention": "70y"}],
        },
        headers=auth(province),
    )
    assert r.status_code in (200, 201), r.text
    kept_long = await api.dossier(operator, procedure_code="9.000070", received_on=OLD)
    assert (await retention(api, operator, kept_long["id"]))["applied"] == "70y"

    # who may: not an operator, not another district's administrator
    r = await api.client.put(f"/api/v1/dossiers/{d['id']}/retention", json={"retention": "99y"}, headers=auth(operator))
    assert r.status_code == 403
    _, other = await api.account("unit_admin", tree2.district)
    r = await api.client.put(f"/api/v1/dossiers/{d['id']}/retention", json={"retention": "99y"}, headers=auth(other))
    assert r.status_code == 404
    r = await api.client.put(f"/api/v1/units/{tree.district}/retention", json={"retention": "99y"}, headers=auth(other))
    assert r.status_code == 404


async def test_a_legal_hold_stops_every_deletion_until_it_is_released(api: Api, tree: Subtree, tree2: Subtree) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    _, other = await api.account("unit_admin", tree2.district)
    d = await api.dossier(operator)
    up = await api.upload(operator, d["id"], a_pdf("held"))
    assert up.status_code == 201, up.text

    r = await api.client.put(f"/api/v1/dossiers/{d['id']}/hold", json={"reason": "x"}, headers=auth(operator))
    assert r.status_code == 403
    r = await api.client.put(f"/api/v1/dossiers/{d['id']}/hold", json={"reason": "x"}, headers=auth(other))
    assert r.status_code == 404
    r = await api.client.put(
        f"/api/v1/dossiers/{d['id']}/hold", json={"reason": "Thanh tra vụ việc 12/2026"}, headers=auth(admin)
    )
    assert r.status_code == 201, r.text
    r = await api.client.put(f"/api/v1/dossiers/{d['id']}/hold", json={"reason": "again"}, headers=auth(admin))
    assert (r.status_code, r.json()["code"]) == (409, "already_on_hold")
    assert (await retention(api, operator, d["id"]))["held"] is True

    for path in (f"/api/v1/dossiers/{d['id']}", f"/api/v1/files/{up.json()['id']}"):
        r = await api.client.delete(path, headers=auth(operator))
        assert (r.status_code, r.json()["code"]) == (409, "on_legal_hold"), path
    r = await api.client.delete(f"/api/v1/dossiers/{d['id']}/hold", headers=auth(other))
    assert r.status_code == 404
    r = await api.client.delete(f"/api/v1/dossiers/{d['id']}/hold", headers=auth(admin))
    assert r.status_code == 204
    r = await api.client.delete(f"/api/v1/dossiers/{d['id']}/hold", headers=auth(admin))
    assert (r.status_code, r.json()["code"]) == (404, "hold_not_found")
    r = await api.client.delete(f"/api/v1/dossiers/{d['id']}", headers=auth(operator))
    assert r.status_code == 204

    # a hold on the district covers its communes' dossiers
    d2 = await api.dossier(operator)
    r = await api.client.put(f"/api/v1/units/{tree.district}/hold", json={"reason": "Kiểm toán"}, headers=auth(admin))
    assert r.status_code == 201, r.text
    r = await api.client.delete(f"/api/v1/dossiers/{d2['id']}", headers=auth(operator))
    assert (r.status_code, r.json()["code"]) == (409, "on_legal_hold")
    r = await api.client.delete(f"/api/v1/units/{tree.district}/hold", headers=auth(admin))
    assert r.status_code == 204
    r = await api.client.delete(f"/api/v1/dossiers/{d2['id']}", headers=auth(operator))
    assert r.status_code == 204


async def test_an_administrator_undoes_a_delete_within_the_window(api: Api, tree: Subtree) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    _, operator = await api.account("operator", tree.commune(1))
    d = await api.dossier(operator, procedure_code="1.001612")
    up = await api.upload(operator, d["id"], a_pdf("ket qua"), kind="result", headers={"X-Part-Code": "KQ1"})
    assert up.status_code == 201, up.text
    await api.run_worker()
    code = (await api.file(operator, up.json()["id"]))["result_code"]
    assert code

    r = await api.client.delete(f"/api/v1/dossiers/{d['id']}", headers=auth(operator))
    assert r.status_code == 204
    assert (await api.client.get(f"/verify/{code}")).status_code == 404  # the delete withdrew the code
    r = await api.client.post(f"/api/v1/dossiers/{d['id']}/restore", headers=auth(operator))
    assert r.status_code == 403
    r = await api.client.post(f"/api/v1/dossiers/{d['id']}/restore", headers=auth(admin))
    assert r.status_code == 200 and r.json()["state"] == "active", r.text
    assert (await api.client.get(f"/verify/{code}")).json()["valid"] is True  # the same code, valid again
    r = await api.client.post(f"/api/v1/dossiers/{d['id']}/restore", headers=auth(admin))
    assert (r.status_code, r.json()["code"]) == (409, "not_deleted")

    # a file, too; and past the window the delete stays
    r = await api.client.delete(f"/api/v1/files/{up.json()['id']}", headers=auth(operator))
    assert r.status_code == 204
    r = await api.client.post(f"/api/v1/files/{up.json()['id']}/restore", headers=auth(admin))
    assert r.status_code == 204
    assert (await api.file(operator, up.json()["id"]))["state"] == "ready"
    r = await api.client.delete(f"/api/v1/dossiers/{d['id']}", headers=auth(operator))
    assert r.status_code == 204
    await api.db.pool.execute(
        "UPDATE dossiers SET deleted_at = now() - interval '31 days' WHERE id = $1", UUID(d["id"])
    )
    r = await api.client.post(f"/api/v1/dossiers/{d['id']}/restore", headers=auth(admin))
    assert (r.status_code, r.json()["code"]) == (409, "undo_window_passed")


async def test_a_purge_needs_two_administrators_and_spares_what_must_be_kept(
    api: Api, tree: Subtree, tree2: Subtree, prepared: Settings
) -> None:
    login1, admin1 = await api.account("unit_admin", tree.district)
    _, admin2 = await api.account("unit_admin", tree.district)
    _, other = await api.account("unit_admin", tree2.district)
    _, operator = await api.account("operator", tree.commune(2))
    r = await api.client.put(
        f"/api/v1/units/{tree.commune(2)}/retention", json={"retention": "5y"}, headers=auth(admin1)
    )
    assert r.status_code == 200, r.text

    shared = a_pdf("cung noi dung")  # the same bytes in a dossier that is kept
    old = [await api.dossier(operator, received_on=OLD, title=f"cũ {n}") for n in range(3)]
    uploads = [await api.upload(operator, d["id"], a_pdf(f"cu {n}")) for n, d in enumerate(old)]
    await api.upload(operator, old[0]["id"], shared)
    recent = await api.dossier(operator, received_on=(date.today() - timedelta(days=30)).isoformat())
    await api.upload(operator, recent["id"], shared)
    valid = await api.dossier(
        operator,
        received_on=OLD,
        result={"number": "1/GCN", "issued_on": OLD, "issuer": "UBND", "valid_until": "2099-01-01"},
    )
    await api.run_worker()

    r = await api.client.get("/api/v1/purges/candidates", params={"unit": tree.commune(2)}, headers=auth(admin1))
    assert r.status_code == 200, r.text
    candidates = {c["id"] for c in r.json()["items"]}
    assert candidates == {d["id"] for d in old}  # not the recent one, not the one with a valid result
    r = await api.client.get("/api/v1/purges/candidates", params={"unit": tree.commune(2)}, headers=auth(other))
    assert r.status_code == 404

    r = await api.client.post(
        "/api/v1/purges",
        json={"reason": "Hết hạn lưu trữ", "dossier_ids": [old[0]["id"], valid["id"]]},
        headers=auth(admin1),
    )
    assert (r.status_code, r.json()["code"]) == (409, "not_purgeable") and r.json()["dossier_ids"] == [valid["id"]]
    r = await api.client.post(
        "/api/v1/purges",
        json={"reason": "Hết hạn lưu trữ", "dossier_ids": [d["id"] for d in old]},
        headers=auth(admin1),
    )
    assert r.status_code == 201 and r.json()["state"] == "proposed", r.text
    purge = r.json()
    r = await api.client.post(f"/api/v1/purges/{purge['id']}/run", headers=auth(admin1))
    assert (r.status_code, r.json()["code"]) == (409, "purge_not_approved")
    r = await api.client.post(f"/api/v1/purges/{purge['id']}/approve", headers=auth(admin1))
    assert (r.status_code, r.json()["code"]) == (409, "purge_needs_second_admin")
    r = await api.client.post(f"/api/v1/purges/{purge['id']}/approve", headers=auth(other))
    assert r.status_code == 404
    r = await api.client.post(f"/api/v1/purges/{purge['id']}/approve", headers=auth(admin2))
    assert r.status_code == 200 and r.json()["state"] == "approved", r.text

    # a hold placed after the approval still stops the purge of that dossier
    r = await api.client.put(
        f"/api/v1/dossiers/{old[2]['id']}/hold", json={"reason": "Khiếu nại"}, headers=auth(admin2)
    )
    assert r.status_code == 201
    r = await api.client.post(f"/api/v1/purges/{purge['id']}/run", headers=auth(admin1))
    assert r.status_code == 200 and r.json()["state"] == "done", r.text
    outcome = r.json()["outcome"]
    assert outcome[old[0]["id"]]["purged"] and outcome[old[1]["id"]]["purged"]
    assert outcome[old[2]["id"]]["purged"] is False
    assert login1  # proposed by one, approved by another, both recorded
    assert r.json()["proposed_by"] != r.json()["approved_by"]

    # the purged records remain as tombstones; their own bytes are gone, the shared bytes stay
    r = await api.client.get(f"/api/v1/dossiers/{old[0]['id']}/retention", headers=auth(admin1))
    assert r.status_code == 200
    store = object_store(prepared)
    try:
        gone = await api.db.pool.fetchval(
            "SELECT b.object_key FROM files f JOIN blobs b ON b.sha256 = f.sha256 WHERE f.id = $1",
            UUID(uploads[0].json()["id"]),
        )
        with pytest.raises(ObjectNotFound):
            await store.digest(gone)
    finally:
        await store.aclose()
    kept = (await api.client.get(f"/api/v1/dossiers/{recent['id']}", headers=auth(operator))).json()
    content = await api.client.get(f"/api/v1/files/{kept['files'][0]['id']}/content", headers=auth(operator))
    assert content.status_code == 200 and content.content == shared
    state = await api.db.pool.fetchval("SELECT state FROM dossiers WHERE id = $1", UUID(old[0]["id"]))
    assert state == "purged"
    r = await api.client.get(f"/api/v1/files/{uploads[0].json()['id']}/content", headers=auth(admin1))
    assert (r.status_code, r.json()["code"]) == (410, "file_purged")
    r = await api.client.get(f"/api/v1/files/{uploads[0].json()['id']}", headers=auth(admin1))
    assert r.json()["state"] == "purged" and r.json()["sha256"]  # the tombstone: what it was
    r = await api.client.post(f"/api/v1/purges/{purge['id']}/run", headers=auth(admin1))
    assert (r.status_code, r.json()["code"]) == (409, "purge_not_approved")  # a purge runs once

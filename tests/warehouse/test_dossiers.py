"""Creating, finding, changing and deleting dossiers."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from tests.factories import Api, Subtree, auth
from warehouse.dossier_rules import today_local

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_code_is_generated_from_unit_day_and_sequence(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    first = await api.dossier(token, received_on="2024-03-05")
    second = await api.dossier(token, received_on="2024-03-05")
    other_day = await api.dossier(token, received_on="2024-03-06")
    unit = tree.commune(1)
    assert first["code"] == f"{unit}-240305-0001"
    assert second["code"] == f"{unit}-240305-0002"
    assert other_day["code"] == f"{unit}-240306-0001"
    assert first["unit_code"] == unit


async def test_received_on_defaults_to_today_in_vietnam(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    d = await api.dossier(token)
    assert d["received_on"] == today_local().isoformat()
    assert re.fullmatch(rf"{re.escape(tree.commune(1))}-{today_local():%y%m%d}-\d{{4}}", d["code"])


async def test_explicit_code_is_kept_and_a_taken_code_is_409(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    code = f"{tree.commune(1)}-230415-0007"
    d = await api.dossier(token, code=code)
    assert d["code"] == code
    r = await api.client.post(
        "/api/v1/dossiers",
        json={
            "code": code,
            "procedure_code": "1.002891",
            "subject": {"name": "Lý Thị Hoa", "id_kind": "cccd", "id_number": "020190000002"},
        },
        headers=auth(token),
    )
    assert (r.status_code, r.json()["code"]) == (409, "dossier_code_taken")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"procedure_code": "not a code"}, "invalid_fields"),
        ({"subject": {"name": "A", "id_kind": "cccd", "id_number": "123"}}, "invalid_id_number"),
        ({"subject": {"name": "A", "id_kind": "ssn", "id_number": "123"}}, "invalid_id_kind"),
        ({"received_on": (date.today() + timedelta(days=3)).isoformat()}, "received_in_future"),
        (
            {"result": {"number": "1/QĐ", "issued_on": "2024-05-01", "valid_until": "2024-01-01"}},
            "validity_before_issue",
        ),
        ({"unexpected": 1}, "invalid_fields"),
        ({"unit_code": "000.99.99.HXX"}, "unit_not_found"),
    ],
)
async def test_invalid_fields_get_a_clear_error(api: Api, change: dict[str, object], code: str, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    body: dict[str, object] = {
        "procedure_code": "1.002891",
        "subject": {"name": "Hoàng Văn Bình", "id_kind": "cccd", "id_number": "020190000003"},
    }
    body.update(change)
    r = await api.client.post("/api/v1/dossiers", json=body, headers=auth(token))
    assert r.status_code in (404, 422), r.text
    problem = r.json()
    assert problem["code"] == code
    assert problem["detail"]
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_malformed_json_is_a_problem_not_a_crash(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    r = await api.client.post(
        "/api/v1/dossiers", content=b"{not json", headers={**auth(token), "Content-Type": "application/json"}
    )
    assert r.status_code in (400, 422)
    assert r.json()["code"] in ("bad_request", "invalid_fields")


async def test_list_filters_and_cursor_pagination(api: Api, tree: Subtree) -> None:
    unit = tree.commune(1)
    _, token = await api.account("operator", unit)
    made = []
    for i in range(7):
        made.append(
            await api.dossier(
                token,
                received_on=f"2023-0{1 + i % 3}-1{i}",
                procedure_code="1.000001" if i % 2 else "1.000002",
                subject={"name": f"Đặng Thị Thu {i}", "id_kind": "cccd", "id_number": f"02019900{i:04d}"},
                result={
                    "number": f"{i}/GP",
                    "issued_on": "2019-01-01",
                    "valid_until": "2020-01-01" if i == 0 else "2099-01-01",
                }
                if i < 4
                else None,
            )
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"unit": unit, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await api.client.get("/api/v1/dossiers", params=params, headers=auth(token))).json()
        assert len(page["items"]) <= 3
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [d["id"] for d in reversed(made)], "newest first, each once"

    async def ids(**params: str) -> set[str]:
        r = await api.client.get("/api/v1/dossiers", params={"unit": unit, **params}, headers=auth(token))
        assert r.status_code == 200, r.text
        return {d["id"] for d in r.json()["items"]}

    assert await ids(procedure="1.000001") == {made[i]["id"] for i in (1, 3, 5)}
    assert await ids(subject_id="020199000004") == {made[4]["id"]}
    assert await ids(valid="true") == {made[i]["id"] for i in (1, 2, 3)}
    assert await ids(valid="false") == {made[i]["id"] for i in (0, 4, 5, 6)}
    assert await ids(received_from="2023-02-01", received_to="2023-02-28") == {made[i]["id"] for i in (1, 4)}
    # With and without diacritics, any case.
    assert await ids(q="Đặng Thị Thu 5") == {made[5]["id"]}
    assert await ids(q="dang thi thu 5") == {made[5]["id"]}
    assert await ids(q=made[2]["code"]) == {made[2]["id"]}


async def test_bad_cursor_and_limit_are_422(api: Api, tree: Subtree) -> None:
    _, token = await api.account("viewer", tree.district)
    r = await api.client.get("/api/v1/dossiers", params={"cursor": "!!not-ours"}, headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (422, "invalid_cursor")
    r = await api.client.get("/api/v1/dossiers", params={"limit": 100000}, headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (422, "limit_too_large")


async def test_patch_changes_fields_and_search(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    d = await api.dossier(token)
    r = await api.client.patch(
        f"/api/v1/dossiers/{d['id']}",
        json={"title": "Cấp giấy phép kinh doanh", "result": {"number": "55/GP", "issued_on": "2024-02-02"}},
        headers=auth(token),
    )
    assert r.status_code == 200, r.text
    assert r.json()["title"] == "Cấp giấy phép kinh doanh"
    assert r.json()["result"]["number"] == "55/GP"
    assert r.json()["code"] == d["code"]
    found = await api.client.get("/api/v1/dossiers", params={"q": "giay phep kinh doanh"}, headers=auth(token))
    assert [x["id"] for x in found.json()["items"]] == [d["id"]]


async def test_delete_keeps_the_dossier_but_hides_it(api: Api, tree: Subtree) -> None:
    unit = tree.commune(1)
    _, token = await api.account("operator", unit)
    d = await api.dossier(token)
    assert (await api.client.delete(f"/api/v1/dossiers/{d['id']}", headers=auth(token))).status_code == 204
    assert (await api.client.get(f"/api/v1/dossiers/{d['id']}", headers=auth(token))).status_code == 404
    active = await api.client.get("/api/v1/dossiers", params={"unit": unit}, headers=auth(token))
    assert d["id"] not in {x["id"] for x in active.json()["items"]}
    deleted = await api.client.get("/api/v1/dossiers", params={"unit": unit, "state": "deleted"}, headers=auth(token))
    assert d["id"] in {x["id"] for x in deleted.json()["items"]}


async def test_scope_operators_see_their_commune_viewers_their_district(
    api: Api, tree: Subtree, tree2: Subtree
) -> None:
    _, a = await api.account("operator", tree.commune(1))
    _, b = await api.account("operator", tree.commune(2))
    _, viewer = await api.account("viewer", tree.district)
    _, elsewhere = await api.account("viewer", tree2.district)
    d = await api.dossier(a)
    assert (await api.client.get(f"/api/v1/dossiers/{d['id']}", headers=auth(b))).status_code == 404
    assert (await api.client.get(f"/api/v1/dossiers/{d['id']}", headers=auth(viewer))).status_code == 200
    assert (await api.client.get(f"/api/v1/dossiers/{d['id']}", headers=auth(elsewhere))).status_code == 404
    listed = await api.client.get("/api/v1/dossiers", params={"q": d["code"]}, headers=auth(b))
    assert listed.json()["items"] == []
    r = await api.client.patch(f"/api/v1/dossiers/{d['id']}", json={"title": "x"}, headers=auth(viewer))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = await api.client.post(
        "/api/v1/dossiers",
        json={
            "procedure_code": "1.002891",
            "unit_code": tree.commune(1),
            "subject": {"name": "X", "id_kind": "other", "id_number": "x"},
        },
        headers=auth(b),
    )
    assert r.status_code == 404

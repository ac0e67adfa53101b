"""Returns pushed by the one-stop system, one outcome per item, and the results each unit still owes."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from typing import Any

import pytest

from tests.factories import Api, Subtree, auth
from tests.pdfs import text_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROCEDURE = "1.001612"  # in the starter catalogue: TP1, TP2 required; result type KQ1


def a_return(
    unit: str, n: int, *, days_ago: int = 3, file: dict[str, Any] | None = None, **over: Any
) -> dict[str, Any]:
    received = date.today() - timedelta(days=days_ago)
    item: dict[str, Any] = {
        "dossier_code": f"{unit}-{received:%y%m%d}-{n:04d}",
        "procedure_code": PROCEDURE,
        "unit_code": unit,
        "received_on": received.isoformat(),
        "returned_on": (received + timedelta(days=1)).isoformat(),
        "subject": {"name": "Hoàng Văn Páo", "id_kind": "cccd", "id_number": f"0201900{n:05d}"},
        "result": {"number": f"{n}/KS", "type_code": "KQ1", "issuer": "UBND xã", "issued_on": received.isoformat()},
    }
    if file is not None:
        item["result"]["file"] = file
    item.update(over)
    return item


async def one_stop(api: Api, tree: Subtree, units: list[str]) -> str:
    """The one-stop system's account for the district, and a key bound to ``units``."""
    _, token = await api.account("one_stop", tree.district)
    r = await api.client.post("/api/v1/api-keys", json={"label": "một cửa", "units": units}, headers=auth(token))
    assert r.status_code == 201, r.text
    assert r.json()["units"] == sorted(units)
    key: str = r.json()["key"]
    return key


async def push(api: Api, key: str, items: list[Any], *, ndjson: bool = False) -> Any:
    if ndjson:
        body = "\n".join(i if isinstance(i, str) else json.dumps(i) for i in items).encode()
        return await api.client.post(
            "/api/v1/intake/returns", content=body, headers={"X-API-Key": key, "Content-Type": "application/x-ndjson"}
        )
    return await api.client.post("/api/v1/intake/returns", json=items, headers={"X-API-Key": key})


async def test_a_batch_gives_one_outcome_per_item_and_bad_items_never_refuse_good_ones(api: Api, tree: Subtree) -> None:
    c1, c2 = tree.commune(1), tree.commune(2)
    key = await one_stop(api, tree, [c1])
    good = a_return(c1, 1)
    batch = [
        good,
        a_return(c2, 2),  # a unit the key does not serve
        a_return(c1, 3, procedure_code="1.999999"),  # not in the catalogue
        a_return(c1, 4, dossier_code="HS-0004"),  # not the legal form
        a_return(c1, 5, dossier_code=f"{c1}-200101-0005"),  # its date is not received_on
        {**a_return(c1, 6), "result": {**a_return(c1, 6)["result"], "type_code": "KQ9"}},
        a_return("000.99.99.HXX", 7),  # no such unit
        dict(good, subject={"name": "Người khác", "id_kind": "cccd", "id_number": "020190099999"}),  # twice
        a_return(c1, 8, returned_on="2001-01-01"),  # returned before received
        {"dossier_code": "x"},  # not a return at all
        {**a_return(c1, 9), "result": {**a_return(c1, 9)["result"], "issued_on": "9999-12-31"}},
        a_return(c1, 10, title="Tờ khai\u0000"),  # a NUL Postgres cannot keep
    ]
    r = await push(api, key, batch)
    assert r.status_code == 200, r.text
    out = r.json()
    got = [(i["outcome"], (i["problem"] or {}).get("status"), (i["problem"] or {}).get("code")) for i in out["items"]]
    assert got == [
        ("created", None, None),
        ("refused", 403, "unit_not_served"),
        ("refused", 422, "unknown_procedure"),
        ("refused", 422, "invalid_dossier_code"),
        ("refused", 422, "dossier_code_date_mismatch"),
        ("refused", 422, "unknown_result_type"),
        ("refused", 422, "unknown_unit"),
        ("refused", 409, "duplicate_in_batch"),
        ("refused", 422, "invalid_returned_on"),
        ("refused", 422, "invalid_item"),
        ("refused", 422, "issued_in_future"),
        ("refused", 422, "invalid_value"),
    ]
    assert (out["created"], out["refused"]) == (1, 11)
    created = out["items"][0]
    assert created["owed"] is True and created["dossier_code"] == good["dossier_code"]

    # The dossier keeps the one-stop system's code, and is owed until its result is digitized.
    _, op = await api.account("operator", c1)
    d = (await api.client.get(f"/api/v1/dossiers/{created['dossier_id']}", headers=auth(op))).json()
    assert d["code"] == good["dossier_code"] and d["owed"] and d["returned_on"] == good["returned_on"]
    assert d["completeness"]["missing"] == ["TP1", "TP2", "KQ1"]
    found = await api.client.get("/api/v1/dossiers", params={"q": good["dossier_code"]}, headers=auth(op))
    assert [x["id"] for x in found.json()["items"]] == [created["dossier_id"]]
    # Nothing of the refused items was written.
    for item in batch[1:7]:
        code = item.get("dossier_code")
        assert await api.db.pool.fetchval("SELECT count(*) FROM dossiers WHERE code = $1", code) == 0

    # The same push again changes nothing; a changed field updates and the audit trail says what changed.
    again = (await push(api, key, [good])).json()
    assert again["items"][0]["outcome"] == "unchanged" and again["unchanged"] == 1
    changed = dict(good, subject={**good["subject"], "name": "Hoàng Văn Pảo"})
    r = (await push(api, key, [changed])).json()
    assert r["items"][0]["outcome"] == "updated" and r["items"][0]["changed"] == ["subject_name"]
    event = await api.db.pool.fetchrow(
        "SELECT details FROM audit_events WHERE action = 'intake_update' AND record_id = $1", created["dossier_id"]
    )
    assert event["details"]["changed"] == {"subject_name": ["Hoàng Văn Páo", "Hoàng Văn Pảo"]}


async def test_ndjson_names_the_line_of_a_malformed_item(api: Api, tree: Subtree) -> None:
    c1 = tree.commune(1)
    key = await one_stop(api, tree, [tree.district])
    r = await push(api, key, [a_return(c1, 11), '{"dossier_code": ', a_return(c1, 12)], ndjson=True)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["outcome"], i["line"]) for i in items] == [("created", 1), ("refused", 2), ("created", 3)]
    assert items[1]["problem"]["code"] == "invalid_json" and "Line 2" in items[1]["problem"]["detail"]
    vi = await api.client.post(
        "/api/v1/intake/returns",
        content=b'{"dossier_code": \n',
        headers={"X-API-Key": key, "Content-Type": "application/x-ndjson", "Accept-Language": "vi"},
    )
    problem = vi.json()["items"][0]["problem"]
    assert "mỗi dòng" in problem["detail"] and "Line 1" in problem["detail_en"], "in Vietnamese when asked"


async def test_whole_batch_refusals(api: Api, tree: Subtree) -> None:
    key = await one_stop(api, tree, [tree.commune(1)])
    too_many = [a_return(tree.commune(1), n) for n in range(1, api.settings.intake_max_items + 2)]
    r = await push(api, key, too_many)
    assert (r.status_code, r.json()["code"]) == (413, "batch_too_large")
    big = b"[" + b" " * api.settings.intake_max_body_bytes + b"]"
    r = await api.client.post(
        "/api/v1/intake/returns", content=big, headers={"X-API-Key": key, "Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()["code"]) == (413, "body_too_large")
    r = await api.client.post(
        "/api/v1/intake/returns", content=b"{not json", headers={"X-API-Key": key, "Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()["code"]) == (400, "invalid_batch")
    assert (await push(api, key, [])).json()["code"] == "empty_batch"
    assert await api.db.pool.fetchval("SELECT count(*) FROM dossiers WHERE unit_id = "
                                      "(SELECT id FROM units WHERE code = $1)", tree.commune(1)) == 0  # fmt: skip
    # An operator is not a one-stop system.
    _, op = await api.account("operator", tree.commune(1))
    r = await api.client.post("/api/v1/intake/returns", json=[a_return(tree.commune(1), 1)], headers=auth(op))
    assert r.status_code == 403


async def test_owed_results_are_a_work_list_until_the_result_passes_inspection(api: Api, tree: Subtree) -> None:
    c1 = tree.commune(1)
    key = await one_stop(api, tree, [c1])
    older, newer = a_return(c1, 21, days_ago=9), a_return(c1, 22, days_ago=2)
    no_result = a_return(c1, 23)
    no_result.pop("result")
    r = (await push(api, key, [newer, older, no_result])).json()
    assert [i["owed"] for i in r["items"]] == [True, True, False]
    _, op = await api.account("operator", c1)
    owed = (await api.client.get("/api/v1/owed", params={"unit": c1}, headers=auth(op))).json()
    assert [i["code"] for i in owed["items"]] == [older["dossier_code"], newer["dossier_code"]], "oldest first"
    assert owed["items"][0]["missing"][-1] == {"code": "KQ1", "name": "Giấy khai sinh", "kind": "result"}
    page = (await api.client.get("/api/v1/owed", params={"unit": c1, "limit": 1}, headers=auth(op))).json()
    rest = await api.client.get("/api/v1/owed", params={"unit": c1, "cursor": page["next_cursor"]}, headers=auth(op))
    assert [i["code"] for i in rest.json()["items"]] == [newer["dossier_code"]]
    assert (await api.client.get("/api/v1/owed", params={"cursor": "!!"}, headers=auth(op))).status_code == 422

    admin = await api.admin()
    year = date.today().year
    params = {"year": year, "level": "commune", "parent": tree.district}

    def owed_of(report: dict[str, Any]) -> int:
        return int(next(u for u in report["units"] if u["unit_code"] == c1)["owed"])

    before = (await api.client.get("/api/v1/reports/progress", params=params, headers=auth(admin))).json()
    assert owed_of(before) == 2

    # The operator uploads the older one's result; once it passes inspection the debt is cleared.
    dossier_id = owed["items"][0]["dossier_id"]
    up = await api.upload(op, dossier_id, text_pdf("giay khai sinh 21"), kind="result", headers={"X-Part-Code": "KQ1"})
    assert up.status_code == 201, up.text
    await api.run_worker()
    owed = (await api.client.get("/api/v1/owed", params={"unit": c1}, headers=auth(op))).json()
    assert [i["code"] for i in owed["items"]] == [newer["dossier_code"]]
    after = (await api.client.get("/api/v1/reports/progress", params=params, headers=auth(admin))).json()
    assert owed_of(after) == 1
    csv = await api.client.get("/api/v1/reports/progress", params={**params, "format": "csv"}, headers=auth(admin))
    header = csv.content.decode("utf-8-sig").splitlines()[0].split(",")
    assert "Kết quả còn nợ" in header and "Đã bắt đầu số hóa" in header

    # Another commune's operator sees none of it.
    _, other = await api.account("operator", tree.commune(2))
    assert (await api.client.get("/api/v1/owed", params={"unit": c1}, headers=auth(other))).status_code == 404
    assert (await api.client.get("/api/v1/owed", headers=auth(other))).json()["items"] == []


async def test_an_attached_result_file_comes_with_its_upload_session(api: Api, tree: Subtree) -> None:
    c1 = tree.commune(1)
    key = await one_stop(api, tree, [c1])
    data = text_pdf("ket qua dinh kem 31")
    file = {"filename": "kq-31.pdf", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    item = a_return(c1, 31, file=file)
    first = (await push(api, key, [item])).json()["items"][0]
    upload = first["upload"]
    assert first["outcome"] == "created" and upload["kind"] == "result" and upload["part_code"] == "KQ1"
    again = (await push(api, key, [item])).json()["items"][0]
    assert again["outcome"] == "unchanged" and again["upload"]["id"] == upload["id"], "the same session again"
    headers = {"X-API-Key": key}
    assert (await api.client.put(f"/api/v1/uploads/{upload['id']}/parts/1", content=data, headers=headers)).is_success
    done = await api.client.post(f"/api/v1/uploads/{upload['id']}/complete", headers=headers)
    assert done.status_code == 201, done.text
    await api.run_worker()
    third = (await push(api, key, [item])).json()["items"][0]
    assert third["file_id"] == done.json()["id"] and third["upload"] is None and third["owed"] is False
    direct = a_return(c1, 32, file={**file, "mode": "direct"})
    got = (await push(api, key, [direct])).json()["items"][0]
    assert got["upload"]["mode"] == "direct" and got["upload"]["direct"]["url"]


async def test_a_dossier_entered_by_hand_is_taken_over_by_its_return(api: Api, tree: Subtree) -> None:
    c1 = tree.commune(1)
    _, op = await api.account("operator", c1)
    item = a_return(c1, 41)
    manual = await api.dossier(
        op, code=item["dossier_code"], procedure_code=PROCEDURE, received_on=item["received_on"],
        subject=item["subject"],
    )  # fmt: skip
    key = await one_stop(api, tree, [c1])
    r = (await push(api, key, [item])).json()["items"][0]
    assert r["outcome"] == "updated" and r["dossier_id"] == manual["id"], r
    assert (await push(api, key, [item])).json()["items"][0]["outcome"] == "unchanged"
    # Another system may not push the same code.
    other = await one_stop(api, tree, [c1])
    _, token2 = await api.account("one_stop", tree.district)
    k2 = (await api.client.post("/api/v1/api-keys", json={"label": "khác"}, headers=auth(token2))).json()["key"]
    assert other
    refused = (await push(api, k2, [item])).json()["items"][0]
    assert (refused["outcome"], refused["problem"]["status"]) == ("refused", 409) and refused["dossier_id"] is None


async def test_a_key_bound_to_units_reaches_no_further(api: Api, tree: Subtree) -> None:
    c1, c2 = tree.commune(1), tree.commune(2)
    _, op_admin = await api.account("unit_admin", tree.district)
    _, op2 = await api.account("operator", c2)
    d2 = await api.dossier(op2)
    r = await api.client.post("/api/v1/api-keys", json={"label": "máy quét", "units": [c1]}, headers=auth(op_admin))
    key = r.json()["key"]
    assert (await api.client.get(f"/api/v1/dossiers/{d2['id']}", headers={"X-API-Key": key})).status_code == 404
    assert (await api.client.get(f"/api/v1/dossiers/{d2['id']}", headers=auth(op_admin))).status_code == 200
    # A unit outside the account's own reach cannot be named.
    outside = await api.client.post(
        "/api/v1/api-keys", json={"label": "x", "units": ["000.00.02.HXX"]}, headers=auth(op2)
    )
    assert outside.status_code == 404


async def test_a_return_received_before_a_merge_is_kept_by_the_unit_it_went_into(api: Api, tree: Subtree) -> None:
    old, new = tree.commune(1), tree.commune(2)
    admin = await api.admin()
    _, old_operator = await api.account("operator", old)
    by_hand = a_return(old, 51, days_ago=40)
    manual = await api.dossier(
        old_operator, code=by_hand["dossier_code"], procedure_code=PROCEDURE, received_on=by_hand["received_on"],
        subject=by_hand["subject"],
    )  # fmt: skip
    merged_on = (date.today() - timedelta(days=10)).isoformat()
    r = await api.client.post(
        f"/api/v1/units/{old}/merge", json={"into": new, "effective_on": merged_on}, headers=auth(admin)
    )
    assert r.status_code == 200, r.text
    key = await one_stop(api, tree, [tree.district])
    fresh = a_return(old, 52, days_ago=20)  # received by the old commune, returned after the merge
    out = (await push(api, key, [by_hand, fresh])).json()["items"]
    assert [i["outcome"] for i in out] == ["updated", "created"], out
    assert out[0]["dossier_id"] == manual["id"]
    _, new_operator = await api.account("operator", new)
    owed = (await api.client.get("/api/v1/owed", params={"unit": new}, headers=auth(new_operator))).json()
    assert {i["code"] for i in owed["items"]} == {by_hand["dossier_code"], fresh["dossier_code"]}
    d = (await api.client.get(f"/api/v1/dossiers/{out[1]['dossier_id']}", headers=auth(new_operator))).json()
    assert d["unit_code"] == new and d["code"] == fresh["dossier_code"], "kept by the successor, with its own code"
    everywhere: set[str] = set()
    cursor = None
    while True:  # the province administrator's list: every unit, merged ones included
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/api/v1/owed", params=params, headers=auth(admin))).json()
        everywhere |= {i["code"] for i in page["items"]}
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert {by_hand["dossier_code"], fresh["dossier_code"]} <= everywhere


async def test_two_pushes_of_the_same_returns_at_once_record_each_once(api: Api, tree: Subtree) -> None:
    import asyncio

    c1 = tree.commune(1)
    key = await one_stop(api, tree, [c1])
    batch = [a_return(c1, n) for n in range(61, 91)]
    first, second = await asyncio.gather(push(api, key, batch), push(api, key, list(reversed(batch))))
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    outcomes = [i["outcome"] for r in (first, second) for i in r.json()["items"]]
    assert outcomes.count("created") == len(batch) and outcomes.count("unchanged") == len(batch), outcomes
    codes = [r["dossier_code"] for r in batch]
    assert await api.db.pool.fetchval("SELECT count(*) FROM dossiers WHERE code = ANY($1)", codes) == len(batch)

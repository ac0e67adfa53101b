"""Reuse and report: still-valid results across the units one may read; progress against targets."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook

from tests.factories import Api, Subtree, auth, new_subtree
from tests.pdfs import text_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOLDER = "020190031337"


def result(valid_until: date | None) -> dict[str, object]:
    return {
        "subject": {"name": "Đinh Thị Lan", "id_kind": "cccd", "id_number": HOLDER},
        "result": {
            "number": "45/GCN",
            "issued_on": "2023-05-02",
            "issuer": "UBND xã",
            **({"valid_until": valid_until.isoformat()} if valid_until else {}),
        },
    }


async def test_still_valid_results_of_a_person_across_the_units_one_may_read(api: Api, tree: Subtree) -> None:
    _, op1 = await api.account("operator", tree.commune(1))
    _, op2 = await api.account("operator", tree.commune(2))
    _, viewer = await api.account("viewer", tree.district)
    future, past = date.today() + timedelta(days=365), date.today() - timedelta(days=1)
    valid1 = await api.dossier(op1, **result(future))
    await api.dossier(op1, **result(past))  # expired: not offered for reuse
    valid2 = await api.dossier(op2, **result(None))  # no end date: valid
    await api.upload(op2, valid2["id"], text_pdf())

    r = await api.client.get("/api/v1/results", params={"subject_id": HOLDER, "valid": "true"}, headers=auth(viewer))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert {d["id"] for d in items} == {valid1["id"], valid2["id"]}
    assert [len(d["files"]) for d in items if d["id"] == valid2["id"]] == [1]

    mine = await api.client.get("/api/v1/results", params={"subject_id": HOLDER}, headers=auth(op1))
    assert {d["id"] for d in mine.json()["items"]} == {valid1["id"]}, "a commune sees its own results only"


async def test_progress_counts_digitized_dossiers_against_the_target_in_every_format(api: Api) -> None:
    admin = await api.admin()
    own = await new_subtree(api.db, communes=2)
    unit = own.commune(1)
    year = date.today().year
    r = await api.client.put(
        f"/api/v1/targets/{unit}/{year}", json={"declared_total": 10, "target_rate": 0.5}, headers=auth(admin)
    )
    assert r.status_code == 200, r.text
    bad = await api.client.put(
        f"/api/v1/targets/{unit}/{year}", json={"declared_total": 10, "target_rate": 55}, headers=auth(admin)
    )
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_target_rate")

    _, op = await api.account("operator", unit)
    digitized = await api.dossier(op)
    waiting = await api.dossier(op)
    await api.upload(op, digitized["id"], text_pdf("da so hoa"))
    await api.run_worker()
    await api.dossier(op)  # a dossier with no file yet is not digitized
    del waiting

    params = {"year": str(year), "level": "commune", "parent": own.district}
    report = (await api.client.get("/api/v1/reports/progress", params=params, headers=auth(admin))).json()
    row = next(u for u in report["units"] if u["unit_code"] == unit)
    assert (row["declared_total"], row["digitized"], row["rate"], row["target_rate"], row["gap"]) == (
        10,
        1,
        0.1,
        0.5,
        4,
    )
    assert sum(w["digitized"] for w in row["weekly"]) == 1
    other = next(u for u in report["units"] if u["unit_code"] == own.commune(2))
    assert (other["declared_total"], other["target_rate"]) == (None, 0.55), "the level's default target"
    assert {lv["level"] for lv in report["levels"]} == {"commune"}

    deleted = await api.client.delete(f"/api/v1/dossiers/{digitized['id']}", headers=auth(op))
    assert deleted.status_code == 204
    again = (await api.client.get("/api/v1/reports/progress", params=params, headers=auth(admin))).json()
    assert next(u for u in again["units"] if u["unit_code"] == unit)["digitized"] == 0

    text = await api.client.get(
        "/api/v1/reports/progress", params=params, headers={**auth(admin), "Accept": "text/csv"}
    )
    assert text.headers["content-type"].count("charset") == 1
    table = list(csv.reader(io.StringIO(text.content.decode("utf-8-sig"))))
    assert table[0][:2] == ["Mã đơn vị", "Tên đơn vị"]
    assert [unit, "10"] == [next(r for r in table if r[0] == unit)[i] for i in (0, 3)]
    assert sum(h.startswith("Tuần ") for h in table[0]) == 8, "the 8-week trend, one column a week"
    no_total = next(r for r in table if r[0] == own.commune(2))
    note = table[0].index("Ghi chú")
    assert no_total[5] == "" and "chưa khai báo" in no_total[note], "no declared total is said, not shown as 0%"
    assert any(r[1].startswith("Tổng cấp xã") for r in table), "the level's total line"

    xlsx = await api.client.get("/api/v1/reports/progress", params={**params, "format": "xlsx"}, headers=auth(admin))
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet = book.worksheets[0]
    assert f"Huyện thử {own.district.rsplit('.', 1)[1]}" in str(sheet["A1"].value), "the district in the title"
    codes = [row[0] for row in sheet.iter_rows(min_row=3, values_only=True)]
    assert unit in codes
    assert sum(str(c.value).startswith("Tuần ") for c in sheet[2]) == 8
    levels = book["Tổng theo cấp"]
    assert [row[0] for row in levels.iter_rows(min_row=3, values_only=True)] == ["Cấp xã"]

    png = await api.client.get(
        "/api/v1/reports/progress", params=params, headers={**auth(admin), "Accept": "image/png"}
    )
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")


async def test_targets_are_for_administrators(api: Api, tree: Subtree) -> None:
    _, op = await api.account("operator", tree.commune(1))
    r = await api.client.put(f"/api/v1/targets/{tree.commune(1)}/2026", json={"declared_total": 5}, headers=auth(op))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden")

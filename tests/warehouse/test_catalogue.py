"""The procedure catalogue: spreadsheets in and out, versions by date, and what makes a dossier complete."""

from __future__ import annotations

import csv
import io
import itertools
import zipfile
from datetime import timedelta

import pytest
from openpyxl import Workbook, load_workbook

from tests.factories import Api, Subtree, auth
from tests.pdfs import text_pdf
from warehouse.catalogue import COLUMNS, RETENTION_COLUMN, XLSX_TYPE
from warehouse.dossier_rules import today_local

HEADER = [*COLUMNS, RETENTION_COLUMN]

pytestmark = pytest.mark.asyncio(loop_scope="session")

_codes = itertools.count(1)


def new_code() -> str:
    """A procedure code no other test uses (the catalogue is the whole warehouse's)."""
    return f"9.{900000 + next(_codes):06d}"


def sheet(code: str, since: str = "01/01/2020", *, extra: list[list[str]] | None = None) -> list[list[str]]:
    head = [code, "Cấp giấy phép thử", "Thử nghiệm", "Cấp xã; Cấp huyện", since]
    return [
        HEADER,
        [*head, "Thành phần hồ sơ", "TP1", "Đơn đề nghị", "Có", "", ""],
        [*head, "Thành phần hồ sơ", "TP2", "Bản vẽ", "Có", "", ""],
        [*head, "Thành phần hồ sơ", "TP3", "Ảnh chụp", "Không", "", ""],
        [*head, "Kết quả", "KQ1", "Giấy phép", "", "12 tháng", "10 năm"],
        *(extra or []),
    ]


def as_csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


async def import_csv(api: Api, token: str, rows: list[list[str]]):  # type: ignore[no-untyped-def]
    return await api.client.post(
        "/api/v1/procedures/import", content=as_csv(rows), headers={**auth(token), "Content-Type": "text/csv"}
    )


async def test_the_province_imports_its_spreadsheet_and_gets_it_back_in_both_formats(api: Api) -> None:
    admin = await api.admin()
    code = new_code()
    r = await import_csv(api, admin, sheet(code))
    assert r.status_code == 200, r.text
    assert r.json()["procedures"] == 1 and r.json()["versions"] == 1
    got = (await api.client.get(f"/api/v1/procedures/{code}", headers=auth(admin))).json()
    (version,) = got["versions"]
    assert version["levels"] == ["commune", "district"]
    assert [(c["code"], c["required"]) for c in version["components"]] == [("TP1", True), ("TP2", True), ("TP3", False)]
    assert version["result_types"] == [
        {"code": "KQ1", "name": "Giấy phép", "validity": "months", "months": 12, "until": None, "retention": "10y"}
    ]

    exported = await api.client.get("/api/v1/procedures", headers={**auth(admin), "Accept": "text/csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0] == HEADER
    assert [r for r in rows if r[0] == code] == [r for r in sheet(code)[1:]], "the export is what was imported"

    book = await api.client.get("/api/v1/procedures?format=xlsx", headers=auth(admin))
    assert book.headers["content-type"] == XLSX_TYPE
    mine = [list(r) for r in load_workbook(io.BytesIO(book.content)).active.iter_rows(values_only=True) if r[0] == code]
    assert len(mine) == 4
    # The exported workbook, edited in a spreadsheet (a new optional component) and imported again.
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for row in mine:
        ws.append(row)
    ws.append([*mine[0][:5], "Thành phần hồ sơ", "TP4", "Sơ đồ", "Không", None])
    out = io.BytesIO()
    wb.save(out)
    r = await api.client.post(
        "/api/v1/procedures/import", content=out.getvalue(), headers={**auth(admin), "Content-Type": XLSX_TYPE}
    )
    assert r.status_code == 200, r.text
    got = (await api.client.get(f"/api/v1/procedures/{code}", headers=auth(admin))).json()
    assert [c["code"] for c in got["versions"][0]["components"]] == ["TP1", "TP2", "TP3", "TP4"]


async def test_a_bad_row_names_its_row_and_column_and_nothing_is_imported(api: Api, tree: Subtree) -> None:
    admin = await api.admin()
    code, other = new_code(), new_code()
    rows = sheet(code) + sheet(other)[1:]
    rows[3][8] = "có lẽ"  # Bắt buộc số hóa
    rows[6][4] = "31/02/2024"  # Ngày hiệu lực
    r = await import_csv(api, admin, rows)
    assert r.status_code == 422
    problem = r.json()
    assert problem["code"] == "catalogue_invalid"
    assert {(e["row"], e["column"]) for e in problem["errors"]} == {(4, "Bắt buộc số hóa"), (7, "Ngày hiệu lực")}
    for c in (code, other):
        assert (await api.client.get(f"/api/v1/procedures/{c}", headers=auth(admin))).status_code == 404

    missing = await import_csv(api, admin, [COLUMNS[:5], [code, "x", "", "", "01/01/2020"]])
    assert (missing.status_code, missing.json()["code"]) == (422, "catalogue_columns_missing")
    twice = sheet(code, extra=[[code, "Cấp giấy phép thử", "Thử nghiệm", "Cấp xã; Cấp huyện", "01/01/2020",
                                "Kết quả", "TP1", "Trùng mã", "", ""]])  # fmt: skip
    r = await import_csv(api, admin, twice)
    assert r.status_code == 422 and "TP1 twice" in r.json()["errors"][0]["detail"]
    latin1 = await api.client.post(
        "/api/v1/procedures/import",
        content=as_csv(sheet(code)).decode().encode("cp1258", errors="replace"),
        headers={**auth(admin), "Content-Type": "text/csv"},
    )
    assert (latin1.status_code, latin1.json()["code"]) == (415, "catalogue_not_utf8")

    # An operator reads the catalogue but may not change it.
    _, operator = await api.account("operator", tree.commune(1))
    assert (await import_csv(api, operator, sheet(code))).status_code == 403
    assert (await api.client.get("/api/v1/procedures", headers=auth(operator))).status_code == 200


async def test_spreadsheets_too_large_to_be_a_catalogue_are_refused_before_they_are_read(api: Api) -> None:
    admin = await api.admin()
    limit = api.settings.catalogue_max_bytes
    big = await api.client.post(
        "/api/v1/procedures/import", content=b"a" * (limit + 1), headers={**auth(admin), "Content-Type": "text/csv"}
    )
    assert (big.status_code, big.json()["code"]) == (413, "body_too_large")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/sharedStrings.xml", b"<" + b"a" * (api.settings.catalogue_max_unpacked_bytes + 1))
    r = await api.client.post(
        "/api/v1/procedures/import", content=bomb.getvalue(), headers={**auth(admin), "Content-Type": XLSX_TYPE}
    )
    assert (r.status_code, r.json()["code"]) == (413, "catalogue_too_large")
    junk = await api.client.post(
        "/api/v1/procedures/import", content=b"PK\x03\x04junk", headers={**auth(admin), "Content-Type": XLSX_TYPE}
    )
    assert (junk.status_code, junk.json()["code"]) == (415, "catalogue_unreadable")
    for hostile in (b"a,b\x00c\n", b'"' + b"x" * 200_000 + b'"\n'):  # a NUL byte; a cell past the CSV limit
        r = await api.client.post(
            "/api/v1/procedures/import", content=hostile, headers={**auth(admin), "Content-Type": "text/csv"}
        )
        assert (r.status_code, r.json()["code"]) in ((415, "catalogue_unreadable"), (422, "catalogue_columns_missing"))


async def counted(api: Api, admin: str, tree: Subtree) -> tuple[int, int]:
    """The first commune's (digitized, started) in this year's progress report."""
    report = await api.client.get(
        "/api/v1/reports/progress",
        params={"year": today_local().year, "level": "commune", "parent": tree.district},
        headers=auth(admin),
    )
    row = next(u for u in report.json()["units"] if u["unit_code"] == tree.commune(1))
    return row["digitized"], row["started"]


async def test_a_dossier_is_complete_when_every_required_part_passed_inspection(api: Api, tree: Subtree) -> None:
    admin = await api.admin()
    code = new_code()
    assert (await import_csv(api, admin, sheet(code))).status_code == 200
    _, op = await api.account("operator", tree.commune(1))
    today = today_local()  # the day a dossier made now is received: Vietnam's, not the machine's
    dossier = await api.dossier(
        op,
        procedure_code=code,
        result={"number": "7/GP", "issued_on": today.isoformat(), "kind_code": "KQ1"},
    )
    assert dossier["completeness"] == {
        "catalogued": True,
        "required": ["TP1", "TP2", "KQ1"],
        "present": [],
        "missing": ["TP1", "TP2", "KQ1"],
        "complete": False,
        "complete_at": None,
    }
    bad = await api.upload(op, dossier["id"], text_pdf("x"), headers={"X-Part-Code": "TP9"})
    assert (bad.status_code, bad.json()["code"]) == (422, "unknown_part_code")
    assert bad.json()["known"] == ["TP1", "TP2", "TP3"]
    wrong_kind = await api.upload(op, dossier["id"], text_pdf("x"), kind="result", headers={"X-Part-Code": "TP1"})
    assert wrong_kind.status_code == 422

    for part, kind in (("TP1", "component"), ("TP3", "component")):
        r = await api.upload(op, dossier["id"], text_pdf(f"{code} {part}"), kind=kind, headers={"X-Part-Code": part})
        assert r.status_code == 201 and r.json()["part_code"] == part, r.text
    await api.run_worker()
    d = (await api.client.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(op))).json()
    assert d["completeness"]["present"] == ["TP1", "TP3"] and d["completeness"]["missing"] == ["TP2", "KQ1"]
    listed = await api.client.get(
        "/api/v1/dossiers", params={"unit": tree.commune(1), "complete": "false"}, headers=auth(op)
    )
    assert dossier["id"] in [x["id"] for x in listed.json()["items"]]

    # TP2 by a resumable upload naming its part; the result as a form field of a multipart upload.
    data = text_pdf(f"{code} TP2")
    import hashlib

    s = await api.client.post(
        "/api/v1/uploads",
        json={
            "dossier_id": dossier["id"],
            "filename": "tp2.pdf",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "kind": "component",
            "part_code": "TP2",
        },
        headers=auth(op),
    )
    assert s.status_code == 201 and s.json()["part_code"] == "TP2", s.text
    assert (
        await api.client.put(f"/api/v1/uploads/{s.json()['id']}/parts/1", content=data, headers=auth(op))
    ).is_success
    assert (await api.client.post(f"/api/v1/uploads/{s.json()['id']}/complete", headers=auth(op))).status_code == 201
    r = await api.client.post(
        f"/api/v1/dossiers/{dossier['id']}/files",
        files={"file": ("kq.pdf", text_pdf(f"{code} KQ1"), "application/pdf")},
        data={"kind": "result", "part_code": "KQ1"},
        headers=auth(op),
    )
    assert r.status_code == 201 and r.json()["part_code"] == "KQ1", r.text
    await api.run_worker()
    d = (await api.client.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(op))).json()
    assert d["completeness"]["complete"] and d["completeness"]["missing"] == []
    listed = await api.client.get(
        "/api/v1/dossiers", params={"unit": tree.commune(1), "complete": "true"}, headers=auth(op)
    )
    assert [x["id"] for x in listed.json()["items"]] == [dossier["id"]]
    assert await counted(api, admin, tree) == (1, 1)

    # A later version requiring more judges the dossiers received from its date, not this one.
    later = (today + timedelta(days=1)).strftime("%d/%m/%Y")
    extra = sheet(code, later)
    extra[3][8] = "Có"  # TP3 becomes required
    r = await import_csv(api, admin, extra)
    assert r.status_code == 200
    d = (await api.client.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(op))).json()
    assert d["completeness"]["complete"], "judged by the version in force on the day it was received"
    # The version in force that day, changed, judges it again at once.
    stricter = sheet(code)
    stricter.append([*stricter[1][:5], "Thành phần hồ sơ", "TP5", "Biên bản", "Có", ""])
    r = await import_csv(api, admin, stricter)
    assert r.status_code == 200 and r.json()["dossiers_judged"] >= 1
    d = (await api.client.get(f"/api/v1/dossiers/{dossier['id']}", headers=auth(op))).json()
    assert d["completeness"]["missing"] == ["TP5"] and not d["completeness"]["complete"]
    assert await counted(api, admin, tree) == (0, 1), "digitized means complete; started keeps the old count"


async def test_a_version_is_put_through_the_api_by_the_province_administrator(api: Api, tree: Subtree) -> None:
    admin = await api.admin()
    code = new_code()
    body = {
        "name": "Thủ tục thử",
        "levels": ["commune"],
        "components": [{"code": "TP1", "name": "Tờ khai"}],
        "result_types": [{"code": "KQ1", "name": "Giấy xác nhận", "validity": "until", "until": "2030-12-31"}],
    }
    r = await api.client.put(f"/api/v1/procedures/{code}/versions/2021-01-01", json=body, headers=auth(admin))
    assert r.status_code == 200, r.text
    bad = {**body, "result_types": [{"code": "KQ1", "name": "x", "validity": "months"}]}
    r = await api.client.put(f"/api/v1/procedures/{code}/versions/2021-01-01", json=bad, headers=auth(admin))
    assert (r.status_code, r.json()["code"]) == (422, "invalid_validity")
    r = await api.client.put("/api/v1/procedures/not-a-code/versions/2021-01-01", json=body, headers=auth(admin))
    assert (r.status_code, r.json()["code"]) == (422, "invalid_procedure_code")
    _, unit_admin = await api.account("unit_admin", tree.district)
    r = await api.client.put(f"/api/v1/procedures/{code}/versions/2022-01-01", json=body, headers=auth(unit_admin))
    assert r.status_code == 403
    listed = (await api.client.get("/api/v1/procedures", params={"q": code}, headers=auth(unit_admin))).json()
    assert [v["procedure_code"] for v in listed["items"]] == [code]

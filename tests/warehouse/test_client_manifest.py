"""The client's manifest in a spreadsheet with Vietnamese headers and date cells, and its bandwidth
limit (no warehouse needed: both happen on the station before anything is sent)."""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook

from loadtests.pdfgen import scanned_pdf
from warehouse.client.manifest import dossier_body, validate
from warehouse.client.transport import Bandwidth


def test_an_xlsx_manifest_with_vietnamese_headers(tmp_path: Path) -> None:
    (tmp_path / "gcn.pdf").write_bytes(scanned_pdf(pages=1, seed=700))
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Tệp", "Loại tệp", "Mã thủ tục", "Họ tên", "Số giấy tờ", "Số kết quả", "Ngày cấp", "Hiệu lực đến"])
    sheet.append(
        ["gcn.pdf", "kết quả", "1.002891", "Hà Thị Lụa", 20190000701, "12/GCN", datetime(2024, 3, 5), "05/03/2029"]
    )
    book.save(tmp_path / "bang-ke.xlsx")

    entries, problems = validate(tmp_path, tmp_path / "bang-ke.xlsx", today=date(2026, 11, 27))
    # A number typed into a cell loses its leading zero: the 11-digit CCCD is reported, not guessed at.
    assert [(p.row, p.column) for p in problems] == [(2, "Số giấy tờ")], "the column as the manifest names it"

    sheet["E2"] = "020190000701"
    book.save(tmp_path / "bang-ke.xlsx")
    entries, problems = validate(tmp_path, tmp_path / "bang-ke.xlsx", today=date(2026, 11, 27))
    assert problems == []
    assert [(e.name, e.kind) for e in entries] == [("gcn.pdf", "result")]
    assert dossier_body(entries[0].dossier) == {
        "procedure_code": "1.002891",
        "subject": {"name": "Hà Thị Lụa", "id_kind": "cccd", "id_number": "020190000701"},
        "result": {"number": "12/GCN", "issued_on": "2024-03-05", "valid_until": "2029-03-05"},
    }


def test_the_bandwidth_limit_holds_a_station_to_its_share() -> None:
    async def send(limit: Bandwidth, total: int) -> float:
        started = time.monotonic()
        for _ in range(total // 65536):
            await limit.take(65536)
        return time.monotonic() - started

    # 3 MB at 1 MB/s: the first second's allowance goes at once, the rest at the limit.
    took = asyncio.run(send(Bandwidth(1_000_000), 3_000_000))
    assert 1.7 < took < 4, took
    assert asyncio.run(send(Bandwidth(0), 3_000_000)) < 0.5, "no limit: no waiting"


def test_a_missing_identifier_is_called_missing_and_a_sample_manifest_passes(tmp_path: Path) -> None:
    from warehouse.client.manifest import SAMPLE_ROWS, write_sample

    for name in ("to-khai.pdf", "giay-chung-sinh.pdf", "ket-qua.pdf"):
        (tmp_path / name).write_bytes(scanned_pdf(pages=1, seed=710))
    for sample in ("bang-ke.csv", "bang-ke.xlsx"):
        write_sample(tmp_path / sample)
        entries, problems = validate(tmp_path, tmp_path / sample, today=date(2026, 11, 27))
        assert problems == [] and len(entries) == len(SAMPLE_ROWS), (sample, problems)
        assert {e.dossier_ref for e in entries} == {"HS-001", "HS-002"}
        assert [e.part_code for e in entries] == ["TP1", "TP2", "KQ1"], "each file says which part it is"
    assert (tmp_path / "bang-ke.csv").read_bytes().startswith(b"\xef\xbb\xbf")

    (tmp_path / "thieu.csv").write_text(
        "tệp,mã thủ tục,họ tên,số giấy tờ\nket-qua.pdf,1.002891,Hà Văn Thiếu,\n", encoding="utf-8"
    )
    _, problems = validate(tmp_path, tmp_path / "thieu.csv", today=date(2026, 11, 27))
    assert [p.line() for p in problems] == [
        "dòng/row 2, số giấy tờ: thiếu số giấy tờ / the identifier number is missing"
    ]


def test_a_part_code_that_cannot_be_one_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.pdf").write_bytes(scanned_pdf(pages=1, seed=720))
    (tmp_path / "m.csv").write_text(
        "tệp,mã thành phần,mã thủ tục,họ tên,số giấy tờ\na.pdf,TP 1!,1.001612,Hà Văn Mã,020190000720\n",
        encoding="utf-8",
    )
    _, problems = validate(tmp_path, tmp_path / "m.csv", today=date(2026, 11, 27))
    assert [(p.row, p.column) for p in problems] == [(2, "mã thành phần")]

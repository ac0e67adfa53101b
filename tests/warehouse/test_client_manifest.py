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
    assert [(p.row, p.column) for p in problems] == [(2, "subject_id_number")]

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

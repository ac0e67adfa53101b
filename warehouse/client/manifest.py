"""The manifest: a spreadsheet (CSV or XLSX) saying what each scanned file is.

One row per file. Columns (English or Vietnamese headers, any order):

| column | Vietnamese header | required | meaning |
|---|---|---|---|
| `file` | `tệp` | yes | the PDF's path inside the folder |
| `kind` | `loại tệp` | no (`component`) | `component` (thành phần) or `result` (kết quả) |
| `part_code` | `mã thành phần` | no | which of the procedure's components or result types the file is (`TP1`, `KQ1`) |
| `dossier` | `hồ sơ` | no | the station's own reference: rows with the same one go into one dossier |
| `procedure_code` | `mã thủ tục` | yes | e.g. `1.002891` |
| `subject_name` | `họ tên` | yes | the person or organisation |
| `subject_id_kind` | `loại giấy tờ` | no (`cccd`) | `cccd`, `cmnd`, `passport`, `mst`, `other` |
| `subject_id_number` | `số giấy tờ` | yes | |
| `result_number` | `số kết quả` | for results | the number of the result document |
| `issued_on` | `ngày cấp` | no | `YYYY-MM-DD` or `DD/MM/YYYY` |
| `issuer` | `cơ quan cấp` | no | |
| `valid_until` | `hiệu lực đến` | no | |
| `received_on` | `ngày tiếp nhận` | no (today) | |
| `title` | `trích yếu` | no | |
| `unit_code` | `mã đơn vị` | no (the account's unit) | |

Every row is checked before anything is sent, and every problem is reported at once, in Vietnamese and
English, naming each column as the manifest's own header does. The warehouse checks again on its side
with the same rules (warehouse/rules.py, shared with the server), so a station learns of a bad row
before a long upload, not after. ``warehouse client sample FILE.csv|FILE.xlsx`` writes a sample.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from warehouse import rules

COLUMNS = {
    "file": ("tệp", "tep", "tên tệp"),
    "kind": ("loại tệp", "loai tep"),
    "part_code": ("mã thành phần", "ma thanh phan", "mã giấy tờ"),
    "dossier": ("hồ sơ", "ho so", "mã hồ sơ trạm"),
    "procedure_code": ("mã thủ tục", "ma thu tuc"),
    "subject_name": ("họ tên", "ho ten", "tên chủ hồ sơ"),
    "subject_id_kind": ("loại giấy tờ", "loai giay to"),
    "subject_id_number": ("số giấy tờ", "so giay to", "số định danh"),
    "result_number": ("số kết quả", "so ket qua"),
    "issued_on": ("ngày cấp", "ngay cap"),
    "issuer": ("cơ quan cấp", "co quan cap"),
    "valid_until": ("hiệu lực đến", "hieu luc den"),
    "received_on": ("ngày tiếp nhận", "ngay tiep nhan"),
    "title": ("trích yếu", "trich yeu"),
    "unit_code": ("mã đơn vị", "ma don vi"),
}
DOSSIER_FIELDS = (
    "procedure_code",
    "subject_name",
    "subject_id_kind",
    "subject_id_number",
    "result_number",
    "issued_on",
    "issuer",
    "valid_until",
    "received_on",
    "title",
    "unit_code",
)
KINDS = {"component": "component", "thành phần": "component", "result": "result", "kết quả": "result"}
PROCEDURE_CODE = re.compile(rules.PROCEDURE_CODE)
UNIT_CODE = re.compile(rules.UNIT_CODE)
PART_CODE = re.compile(rules.PART_CODE)
ID_KINDS = rules.ID_KINDS

# A sample manifest with the Vietnamese headers: two scans of one dossier, and a result.
SAMPLE_HEADER = [COLUMNS[k][0] for k in ("file", "kind", "part_code", "dossier", *DOSSIER_FIELDS[:8])]
SAMPLE_ROWS = [
    [
        "to-khai.pdf",
        "thành phần",
        "TP1",
        "HS-001",
        "1.001612",
        "Nguyễn Văn An",
        "cccd",
        "020190000001",
        "",
        "",
        "",
        "",
    ],
    [
        "giay-chung-sinh.pdf",
        "thành phần",
        "TP2",
        "HS-001",
        "1.001612",
        "Nguyễn Văn An",
        "cccd",
        "020190000001",
        "",
        "",
        "",
        "",
    ],
    [
        "ket-qua.pdf",
        "kết quả",
        "KQ1",
        "HS-002",
        "1.001612",
        "Hoàng Thị Bình",
        "cccd",
        "020190000002",
        "123/GCN",
        "15/03/2024",
        "UBND xã",
        "",
    ],
]


def write_sample(path: Path) -> None:
    """A sample manifest, CSV (UTF-8 with a byte-order mark, for spreadsheets) or XLSX by the suffix."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "Bảng kê"
        sheet.append(SAMPLE_HEADER)
        for row in SAMPLE_ROWS:
            sheet.append(row)
        book.save(path)
        return
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        writer = csv.writer(f)
        writer.writerow(SAMPLE_HEADER)
        writer.writerows(SAMPLE_ROWS)


@dataclass(frozen=True)
class Problem:
    row: int  # the spreadsheet's row number (the header is row 1)
    column: str
    vi: str
    en: str

    def line(self) -> str:
        where = f"dòng/row {self.row}" + (f", {self.column}" if self.column else "")
        return f"{where}: {self.vi} / {self.en}"


@dataclass
class Entry:
    """One file to send, with the dossier it goes into."""

    row: int
    path: Path
    name: str
    kind: str
    dossier_ref: str
    dossier: dict[str, Any] = field(default_factory=dict)
    part_code: str | None = None  # the procedure's component or result type the file is
    existing_id: str | None = None  # a dossier already in the warehouse (an owed result being filled)


def _key(header: str) -> str | None:
    text = unicodedata.normalize("NFC", str(header or "")).strip().lower()
    for name, aliases in COLUMNS.items():
        if text == name or text in aliases:
            return name
    return None


def read_rows(path: Path) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The manifest's rows as {column: value}, keyed by the row number; unknown headers are problems.
    Each row's ``_headers`` maps a column to the header the manifest wrote for it."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        raw = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
        book.close()
    else:
        with path.open(newline="", encoding="utf-8-sig") as f:
            raw = [list(r) for r in csv.reader(f)]
    if not raw:
        return [], [Problem(1, "", "bảng kê trống", "the manifest is empty")]
    headers = [_key(str(h or "")) for h in raw[0]]
    problems = [
        Problem(1, str(h), f"không biết cột «{h}»", f"unknown column '{h}'")
        for h, k in zip(raw[0], headers, strict=True)
        if k is None and h not in (None, "")
    ]
    written = {k: str(h).strip() for h, k in zip(raw[0], headers, strict=True) if k is not None}
    rows = []
    for number, values in enumerate(raw[1:], start=2):
        if all(v in (None, "") for v in values):
            continue
        row: dict[str, Any] = {"_row": number, "_headers": written}
        for k, v in zip(headers, values, strict=False):
            if k is not None:
                row[k] = v.strip() if isinstance(v, str) else v
        rows.append(row)
    return rows, problems


def _date(value: Any) -> date | str | None:
    """A date from ISO or Vietnamese (DD/MM/YYYY) writing, or an XLSX date; '' if absent; the text if bad."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return text


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a number typed into a spreadsheet cell
    return unicodedata.normalize("NFC", str(value)).strip()


def validate(folder: Path, manifest: Path, today: date | None = None) -> tuple[list[Entry], list[Problem]]:
    """Every row checked: the entries of the rows, and every problem found (``upload`` sends nothing
    while there is one; ``watch`` sends the rows without problems)."""
    today = today or date.today()
    rows, problems = read_rows(manifest)
    entries: list[Entry] = []
    seen_files: dict[str, int] = {}
    dossiers: dict[str, tuple[int, dict[str, Any]]] = {}
    for row in rows:
        n = row["_row"]

        def bad(column: str, vi: str, en: str, n: int = n, headers: dict[str, str] = row["_headers"]) -> None:
            # The column as the manifest's own header names it (Vietnamese headers stay Vietnamese).
            problems.append(Problem(n, headers.get(column) or COLUMNS[column][0], vi, en))

        name = _text(row.get("file"))
        path = folder / name
        if not name:
            bad("file", "thiếu tên tệp", "the file name is missing")
        elif name in seen_files:
            bad("file", f"tệp đã có ở dòng {seen_files[name]}", f"the file is already on row {seen_files[name]}")
        elif not path.is_file():
            bad("file", f"không thấy tệp {name} trong thư mục", f"{name} is not in the folder")
        else:
            with path.open("rb") as f:
                if not f.read(1024).lstrip().startswith(b"%PDF-"):
                    bad("file", f"{name} không phải tệp PDF", f"{name} is not a PDF")
        if name:
            seen_files.setdefault(name, n)

        kind = KINDS.get(_text(row.get("kind")).lower() or "component")
        if kind is None:
            bad("kind", "loại tệp phải là «thành phần» hoặc «kết quả»", "kind must be 'component' or 'result'")
        part_code = _text(row.get("part_code")) or None
        if part_code is not None and not PART_CODE.match(part_code):
            bad(
                "part_code",
                "mã thành phần có 1 đến 32 chữ, số, '.', '_' hoặc '-' (ví dụ TP1, KQ1)",
                "a part code has 1 to 32 letters, digits, '.', '_' or '-' (e.g. TP1, KQ1)",
            )
        d: dict[str, Any] = {k: _text(row.get(k)) for k in ("procedure_code", "subject_name", "title", "issuer")}
        d["subject_id_kind"] = _text(row.get("subject_id_kind")).lower() or "cccd"
        d["subject_id_number"] = rules.normalize_identifier(d["subject_id_kind"], _text(row.get("subject_id_number")))
        d["result_number"] = _text(row.get("result_number"))
        d["unit_code"] = _text(row.get("unit_code")).upper()
        if not PROCEDURE_CODE.match(d["procedure_code"]):
            bad(
                "procedure_code",
                "mã thủ tục phải có dạng 1.002891 (theo Cơ sở dữ liệu quốc gia về TTHC)",
                "the procedure code must look like 1.002891 (the national procedure database)",
            )
        if not d["subject_name"]:
            bad("subject_name", "thiếu họ tên chủ hồ sơ", "the subject's name is missing")
        if d["subject_id_kind"] not in ID_KINDS:
            bad(
                "subject_id_kind",
                f"loại giấy tờ phải là một trong {', '.join(ID_KINDS)}",
                f"the identifier kind must be one of {', '.join(ID_KINDS)}",
            )
        elif not d["subject_id_number"]:
            bad("subject_id_number", "thiếu số giấy tờ", "the identifier number is missing")
        elif not rules.identifier_fits(d["subject_id_kind"], d["subject_id_number"]):
            kind_rule = ID_KINDS[d["subject_id_kind"]]
            bad("subject_id_number", f"số giấy tờ sai: {kind_rule.vi}", f"wrong identifier: {kind_rule.en}")
        if d["unit_code"] and not UNIT_CODE.match(d["unit_code"]):
            bad(
                "unit_code",
                "mã đơn vị sai dạng (ví dụ 000.01.21.HXX)",
                "the unit code is malformed (e.g. 000.01.21.HXX)",
            )
        for column, label_vi in (
            ("issued_on", "ngày cấp"),
            ("valid_until", "hiệu lực đến"),
            ("received_on", "ngày tiếp nhận"),
        ):
            value = _date(row.get(column))
            if isinstance(value, str):
                bad(
                    column,
                    f"{label_vi} «{value}» không phải ngày (YYYY-MM-DD hoặc DD/MM/YYYY)",
                    f"'{value}' is not a date (YYYY-MM-DD or DD/MM/YYYY)",
                )
                value = None
            d[column] = value
        if d["received_on"] and d["received_on"] > today:
            bad("received_on", "ngày tiếp nhận ở tương lai", "the date received is in the future")
        if d["issued_on"] and d["valid_until"] and d["valid_until"] < d["issued_on"]:
            bad("valid_until", "hiệu lực kết thúc trước ngày cấp", "the result expires before it was issued")
        has_result = any(d[k] for k in ("issued_on", "issuer", "valid_until"))
        if (kind == "result" or has_result) and not d["result_number"]:
            bad("result_number", "kết quả cần có số kết quả", "a result needs its number")

        ref = _text(row.get("dossier")) or f"row-{n}"
        if ref in dossiers:
            first_row, first = dossiers[ref]
            # Rows of one dossier may each give some of its fields; two different values are a problem.
            differ = [k for k in DOSSIER_FIELDS if first[k] not in ("", None) and d[k] not in ("", None, first[k])]
            for k in DOSSIER_FIELDS:
                if first[k] in ("", None):
                    first[k] = d[k]
            if differ:
                bad(
                    "dossier",
                    f"hồ sơ {ref} khác dòng {first_row} ở: {', '.join(differ)}",
                    f"dossier {ref} differs from row {first_row} in: {', '.join(differ)}",
                )
        else:
            dossiers[ref] = (n, d)
        entries.append(
            Entry(
                row=n,
                path=path,
                name=name,
                kind=kind or "component",
                dossier_ref=ref,
                dossier=dossiers[ref][1],
                part_code=part_code,
            )
        )
    if not rows and not problems:
        problems.append(Problem(1, "", "bảng kê không có dòng nào", "the manifest has no rows"))
    return entries, problems


def dossier_body(d: dict[str, Any]) -> dict[str, Any]:
    """The JSON the warehouse takes to create the dossier."""
    body: dict[str, Any] = {
        "procedure_code": d["procedure_code"],
        "subject": {"name": d["subject_name"], "id_kind": d["subject_id_kind"], "id_number": d["subject_id_number"]},
    }
    for k in ("title", "unit_code"):
        if d.get(k):
            body[k] = d[k]
    if d.get("received_on"):
        body["received_on"] = d["received_on"].isoformat()
    if d.get("result_number"):
        result: dict[str, Any] = {"number": d["result_number"]}
        for k in ("issued_on", "valid_until"):
            if d.get(k):
                result[k] = d[k].isoformat()
        if d.get("issuer"):
            result["issuer"] = d["issuer"]
        body["result"] = result
    return body

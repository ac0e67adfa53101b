"""The procedure catalogue: what each procedure's dossiers hold, what must be digitized, what it issues.

The province keeps this list in spreadsheets, so it comes in and goes out as CSV or XLSX with
Vietnamese headers, one row per component or result type of a version (``COLUMNS``). An import is all
or nothing: every bad cell is named by its row and column, and nothing is recorded until none is left.
A version recorded again (same procedure and effective date) is replaced; the dossiers it applies to are
judged again at once.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from storage import Dossier
from storage.catalogue import Component, ProcedureVersion, ResultType, in_force
from warehouse.context import Services
from warehouse.principal import Principal, require_province_admin
from warehouse.refusals import Invalid, TooLarge, UnsupportedKind
from warehouse.rules import PART_CODE, PROCEDURE_CODE

COLUMNS = [
    "Mã TTHC",
    "Tên thủ tục",
    "Lĩnh vực",
    "Cấp thực hiện",
    "Ngày hiệu lực",
    "Loại",
    "Mã",
    "Tên",
    "Bắt buộc số hóa",
    "Thời hạn hiệu lực",
]
# Read when present (older spreadsheets lack it), always written: how long a result's dossiers are kept.
RETENTION_COLUMN = "Thời hạn lưu trữ"
COMPONENT, RESULT = "Thành phần hồ sơ", "Kết quả"
LEVEL_WORDS = {
    "tỉnh": "department",
    "cấp tỉnh": "department",
    "department": "department",
    "huyện": "district",
    "cấp huyện": "district",
    "district": "district",
    "xã": "commune",
    "cấp xã": "commune",
    "commune": "commune",
}
LEVEL_LABELS = {"department": "Cấp tỉnh", "district": "Cấp huyện", "commune": "Cấp xã"}
YES, NO = ("có", "x", "yes", "1", "true", "bắt buộc"), ("không", "", "no", "0", "false")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_ERRORS = 50
MAX_CELL = 500


@dataclass(frozen=True, slots=True)
class CellError:
    row: int  # as the spreadsheet numbers it: the header is row 1
    column: str
    detail: str


def validity_text(kind: ResultType) -> str:
    if kind.validity == "months":
        return f"{kind.months} tháng"
    if kind.validity == "until" and kind.until:
        return f"đến {kind.until:%d/%m/%Y}"
    return "Không thời hạn"


def parse_retention(text: str) -> str | None:
    """'Vĩnh viễn' (or 'permanent'), a number of years ('10', '10 năm', '10y'), or empty (not said)."""
    word = text.strip().lower()
    if not word:
        return None
    if word in ("vĩnh viễn", "vinh vien", "permanent"):
        return "permanent"
    m = re.fullmatch(r"([1-9][0-9]{0,2})\s*(năm|nam|y|years?)?", word)
    if m is None:
        raise ValueError("write 'Vĩnh viễn' or a number of years, e.g. '10 năm'")
    return f"{m.group(1)}y"


def retention_text(cls: str | None) -> str:
    if cls is None:
        return ""
    return "Vĩnh viễn" if cls == "permanent" else f"{cls[:-1]} năm"


def parse_validity(text: str) -> tuple[str, int | None, date | None]:
    value = text.strip().lower()
    if value in ("", "không thời hạn", "không", "none", "vô thời hạn"):
        return "none", None, None
    months = re.fullmatch(r"(\d{1,4})\s*(tháng|months?)?", value)
    if months and 0 < int(months.group(1)) <= 1200:
        return "months", int(months.group(1)), None
    until = re.fullmatch(r"(đến|until)\s+(.+)", value)
    if until:
        return "until", None, parse_date(until.group(2))
    raise ValueError("write 'Không thời hạn', a number of months ('60 tháng') or 'đến dd/mm/yyyy'")


def parse_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("write the date as dd/mm/yyyy")


def parse_levels(text: str) -> list[str]:
    levels = []
    for word in re.split(r"[;,/]", text):
        word = word.strip().lower()
        if not word:
            continue
        if word not in LEVEL_WORDS:
            raise ValueError("name the levels as 'Cấp tỉnh', 'Cấp huyện' or 'Cấp xã', separated by ';'")
        if LEVEL_WORDS[word] not in levels:
            levels.append(LEVEL_WORDS[word])
    return levels


def check_version(v: ProcedureVersion) -> list[str]:
    """What is wrong with a version as a whole (the cells themselves were checked on the way in)."""
    problems = []
    if not re.fullmatch(PROCEDURE_CODE, v.procedure_code):
        problems.append(f"{v.procedure_code!r} is not a procedure code (e.g. 1.001234 or 1.001234.000.00.00.H42)")
    if not v.components and not v.result_types:
        problems.append(f"procedure {v.procedure_code} lists no component and no result type")
    codes = [c.code for c in v.components] + [r.code for r in v.result_types]
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        problems.append(f"procedure {v.procedure_code} uses the code(s) {', '.join(twice)} twice")
    return problems


def _cell(row: list[Any], i: int) -> str:
    value = row[i] if i < len(row) else None
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("\x00", "").strip()


def versions_from_rows(rows: list[list[Any]]) -> list[ProcedureVersion]:
    """Versions from a sheet (its first row the header); refuses the whole sheet if any cell is wrong."""
    if not rows:
        raise Invalid("catalogue_empty", "The file is empty. Start from the export (GET /api/v1/procedures/export).")
    header = [_cell(rows[0], i).lstrip("\ufeff") for i in range(len(rows[0]))]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise Invalid(
            "catalogue_columns_missing",
            f"The first row must name the columns {', '.join(COLUMNS)}; missing: {', '.join(missing)}.",
            extra={"errors": [{"row": 1, "column": c, "detail": "column missing"} for c in missing]},
        )
    at = {name: header.index(name) for name in COLUMNS}
    if RETENTION_COLUMN in header:
        at[RETENTION_COLUMN] = header.index(RETENTION_COLUMN)
    errors: list[CellError] = []
    heads: dict[tuple[str, date], tuple[str, str | None, list[str], int]] = {}
    parts: dict[tuple[str, date], tuple[list[Component], list[ResultType]]] = {}
    for n, row in enumerate(rows[1:], start=2):
        cells = {name: _cell(row, i) for name, i in at.items()}
        if not any(cells.values()):
            continue

        def bad(column: str, detail: str, n: int = n) -> None:
            errors.append(CellError(n, column, detail))

        code = cells["Mã TTHC"]
        if not re.fullmatch(PROCEDURE_CODE, code):
            bad("Mã TTHC", "not a procedure code (e.g. 1.001234 or 1.001234.000.00.00.H42)")
            continue
        try:
            effective = parse_date(row[at["Ngày hiệu lực"]] if at["Ngày hiệu lực"] < len(row) else "")
        except ValueError as exc:
            bad("Ngày hiệu lực", str(exc))
            continue
        name = cells["Tên thủ tục"]
        if not name:
            bad("Tên thủ tục", "the procedure needs its name")
        long = [c for c in COLUMNS if len(cells[c]) > MAX_CELL]
        if long:
            bad(long[0], f"a cell holds at most {MAX_CELL} characters")
            continue
        try:
            levels = parse_levels(cells["Cấp thực hiện"])
        except ValueError as exc:
            bad("Cấp thực hiện", str(exc))
            levels = []
        key = (code, effective)
        head = (name, cells["Lĩnh vực"] or None, levels, n)
        if key in heads and heads[key][:3] != head[:3]:
            bad("Tên thủ tục", f"differs from row {heads[key][3]} of the same procedure and date")
        heads.setdefault(key, head)
        components, results = parts.setdefault(key, ([], []))
        kind = cells["Loại"].lower()
        part_code, part_name = cells["Mã"], cells["Tên"]
        if not re.fullmatch(PART_CODE, part_code):
            bad("Mã", "a component or result type code has 1 to 32 letters, digits, '.', '_' or '-'")
            continue
        if not part_name:
            bad("Tên", "give the component's or result's name")
            continue
        if kind == COMPONENT.lower():
            required = cells["Bắt buộc số hóa"].lower()
            if required not in YES + NO:
                bad("Bắt buộc số hóa", "write 'Có' or 'Không'")
                continue
            components.append(Component(part_code, part_name, required in YES))
        elif kind == RESULT.lower():
            try:
                validity, months, until = parse_validity(cells["Thời hạn hiệu lực"])
            except ValueError as exc:
                bad("Thời hạn hiệu lực", str(exc))
                continue
            try:
                retention = parse_retention(cells.get(RETENTION_COLUMN, ""))
            except ValueError as exc:
                bad(RETENTION_COLUMN, str(exc))
                continue
            results.append(ResultType(part_code, part_name, validity, months, until, retention))
        else:
            bad("Loại", f"write '{COMPONENT}' or '{RESULT}'")
        if len(errors) >= MAX_ERRORS:
            break
    versions = []
    for key, (name, field, levels, first_row) in heads.items():
        components, results = parts[key]
        v = ProcedureVersion(key[0], key[1], name, field, levels, components, results)
        errors += [CellError(first_row, "Mã", p) for p in check_version(v) if components or results]
        versions.append(v)
    if errors:
        shown = errors[:MAX_ERRORS]
        first = shown[0]
        raise Invalid(
            "catalogue_invalid",
            f"Nothing was imported: {len(errors)} cell(s) need correcting, first row {first.row}, column "
            f"'{first.column}': {first.detail}.",
            extra={"errors": [{"row": e.row, "column": e.column, "detail": e.detail} for e in shown]},
        )
    if not versions:
        raise Invalid("catalogue_empty", "The file has a header but no procedure rows.")
    return versions


def rows_of(versions: list[ProcedureVersion]) -> list[list[Any]]:
    out: list[list[Any]] = [[*COLUMNS, RETENTION_COLUMN]]
    for v in versions:
        head = [
            v.procedure_code,
            v.name,
            v.field or "",
            "; ".join(LEVEL_LABELS.get(level, level) for level in v.levels),
            v.effective_from.strftime("%d/%m/%Y"),
        ]
        for c in v.components:
            out.append([*head, COMPONENT, c.code, c.name, "Có" if c.required else "Không", "", ""])
        for r in v.result_types:
            out.append([*head, RESULT, r.code, r.name, "", validity_text(r), retention_text(r.retention)])
    return out


def as_csv(versions: list[ProcedureVersion]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows_of(versions))
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM: a spreadsheet reads the UTF-8 right


def as_xlsx(versions: list[ProcedureVersion]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Danh mục TTHC"
    for row in rows_of(versions):
        sheet.append(row)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for column, width in zip("ABCDEFGHIJ", (26, 40, 24, 24, 14, 18, 10, 44, 16, 18), strict=True):
        sheet.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def read_sheet(data: bytes, media_type: str, *, max_rows: int, max_unpacked: int) -> list[list[Any]]:
    """The rows of an uploaded CSV or XLSX (its first sheet), refusing what is too large to be a
    catalogue before reading it whole (an XLSX is a zip: its unpacked size is checked first)."""
    rows: list[list[Any]] = []
    if media_type == XLSX_TYPE or data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                if sum(i.file_size for i in z.infolist()) > max_unpacked:
                    raise TooLarge(
                        "catalogue_too_large",
                        f"The spreadsheet unpacks to more than {max_unpacked // (1024 * 1024)} MiB. "
                        "Keep only the catalogue's sheet.",
                    )
            from openpyxl import load_workbook

            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            sheet = book.worksheets[0]
            for values in sheet.iter_rows(values_only=True):
                rows.append(list(values))
                if len(rows) > max_rows + 1:
                    break
            book.close()
        except TooLarge:
            raise
        except Exception as exc:  # an untrusted file: whatever the reader trips on, the answer is the same
            raise UnsupportedKind(
                "catalogue_unreadable", f"The spreadsheet could not be read ({exc}). Save it again as .xlsx or .csv."
            ) from None
    elif media_type in ("text/csv", "text/plain", "application/csv", ""):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UnsupportedKind(
                "catalogue_not_utf8", "The CSV is not UTF-8. Save it as 'CSV UTF-8' and import it again."
            ) from None
        try:
            for cells in csv.reader(io.StringIO(text)):
                rows.append(list(cells))
                if len(rows) > max_rows + 1:
                    break
        except csv.Error as exc:
            raise UnsupportedKind(
                "catalogue_unreadable", f"The CSV could not be read ({exc}). Save it again as CSV UTF-8."
            ) from None
    else:
        raise UnsupportedKind(
            "catalogue_unsupported_type",
            f"Send the catalogue as CSV (text/csv) or XLSX ({XLSX_TYPE}), not {media_type}.",
        )
    if len(rows) > max_rows + 1:
        raise TooLarge(
            "catalogue_too_many_rows", f"The catalogue has more than {max_rows} rows. Split it into several files."
        )
    return rows


async def version_of(services: Services, procedure_code: str, on: date) -> ProcedureVersion | None:
    """The catalogue's version of the procedure in force on that day (None: not catalogued)."""
    return in_force((await services.catalogue.versions([procedure_code])).get(procedure_code, []), on)


async def check_part(services: Services, dossier: Dossier, kind: str, raw: object) -> str | None:
    """The component or result type a file digitizes (``X-Part-Code`` or the ``part_code`` field): one
    of the procedure's, as the catalogue lists it for the day the dossier was received."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    code = raw.strip() if isinstance(raw, str) else ""
    if not re.fullmatch(PART_CODE, code):
        raise Invalid(
            "invalid_part_code",
            "The part code (X-Part-Code, or the 'part_code' field) names a component or result type of the "
            "procedure, e.g. TP1 or KQ1: 1 to 32 letters, digits, '.', '_' or '-'.",
        )
    version = await version_of(services, dossier.procedure_code, dossier.received_on)
    if version is None:
        return code  # not catalogued yet: kept as given, counted once the catalogue lists it
    known = [c.code for c in version.components] if kind == "component" else [r.code for r in version.result_types]
    if code not in known:
        what = "component" if kind == "component" else "result type"
        raise Invalid(
            "unknown_part_code",
            f"Procedure {dossier.procedure_code} has no {what} {code}. Its {what}s are: "
            f"{', '.join(known) or 'none'} (GET /api/v1/procedures/{dossier.procedure_code}).",
            extra={"known": known},
        )
    return code


@dataclass(frozen=True, slots=True)
class Recorded:
    procedures: int
    versions: int
    dossiers_judged: int


async def record_versions(services: Services, principal: Principal, versions: list[ProcedureVersion]) -> Recorded:
    """Record versions (the province administrator's), judging again the dossiers they apply to."""
    require_province_admin(principal)
    problems = [p for v in versions for p in check_version(v)]
    if problems:
        raise Invalid("catalogue_invalid", f"Nothing was recorded: {problems[0]}.", extra={"problems": problems})
    async with services.db.transaction() as conn:
        judged = await services.catalogue.put(conn, versions, principal.account.id)
    return Recorded(len({v.procedure_code for v in versions}), len(versions), judged)


def _c(code: str, name: str, required: bool = True) -> Component:
    return Component(code, name, required)


_SINCE = date(2020, 1, 1)

# The procedures the synthetic data and the load suite use, with plausible components and results.
# SAMPLE DATA: replace it with the province's own catalogue (import the spreadsheet).
STARTER: list[ProcedureVersion] = [
    ProcedureVersion(
        "1.001612",
        _SINCE,
        "Đăng ký khai sinh",
        "Hộ tịch",
        ["commune"],
        [_c("TP1", "Tờ khai đăng ký khai sinh"), _c("TP2", "Giấy chứng sinh"), _c("TP3", "Văn bản ủy quyền", False)],
        [ResultType("KQ1", "Giấy khai sinh")],
    ),
    ProcedureVersion(
        "1.001193",
        _SINCE,
        "Đăng ký kết hôn",
        "Hộ tịch",
        ["commune"],
        [_c("TP1", "Tờ khai đăng ký kết hôn"), _c("TP2", "Giấy xác nhận tình trạng hôn nhân", False)],
        [ResultType("KQ1", "Giấy chứng nhận kết hôn")],
    ),
    ProcedureVersion(
        "1.000656",
        _SINCE,
        "Đăng ký khai tử",
        "Hộ tịch",
        ["commune"],
        [_c("TP1", "Tờ khai đăng ký khai tử"), _c("TP2", "Giấy báo tử")],
        [ResultType("KQ1", "Trích lục khai tử")],
    ),
    ProcedureVersion(
        "1.003583",
        _SINCE,
        "Chứng thực bản sao từ bản chính",
        "Chứng thực",
        ["district", "commune"],
        [_c("TP1", "Bản chính giấy tờ cần chứng thực")],
        [ResultType("KQ1", "Bản sao được chứng thực")],
    ),
    ProcedureVersion(
        "1.004227",
        _SINCE,
        "Cấp giấy chứng nhận quyền sử dụng đất",
        "Đất đai",
        ["department", "district"],
        [
            _c("TP1", "Đơn đăng ký, cấp giấy chứng nhận"),
            _c("TP2", "Giấy tờ về quyền sử dụng đất"),
            _c("TP3", "Sơ đồ thửa đất", False),
        ],
        [ResultType("KQ1", "Giấy chứng nhận quyền sử dụng đất")],
    ),
    ProcedureVersion(
        "1.002255",
        _SINCE,
        "Cấp giấy phép xây dựng nhà ở riêng lẻ",
        "Xây dựng",
        ["district"],
        [_c("TP1", "Đơn đề nghị cấp giấy phép xây dựng"), _c("TP2", "Bản vẽ thiết kế xây dựng")],
        [ResultType("KQ1", "Giấy phép xây dựng", "months", 12)],
    ),
    ProcedureVersion(
        "1.001757",
        _SINCE,
        "Đăng ký hộ kinh doanh",
        "Thành lập và hoạt động của hộ kinh doanh",
        ["district"],
        [_c("TP1", "Giấy đề nghị đăng ký hộ kinh doanh"), _c("TP2", "Bản sao giấy tờ pháp lý của cá nhân")],
        [ResultType("KQ1", "Giấy chứng nhận đăng ký hộ kinh doanh")],
    ),
    ProcedureVersion(
        "2.000488",
        _SINCE,
        "Xác nhận tình trạng hôn nhân",
        "Hộ tịch",
        ["commune"],
        [_c("TP1", "Tờ khai cấp giấy xác nhận tình trạng hôn nhân")],
        [ResultType("KQ1", "Giấy xác nhận tình trạng hôn nhân", "months", 6)],
    ),
    ProcedureVersion(
        "1.004945",
        _SINCE,
        "Cấp phiếu lý lịch tư pháp",
        "Lý lịch tư pháp",
        ["department"],
        [_c("TP1", "Tờ khai yêu cầu cấp phiếu lý lịch tư pháp"), _c("TP2", "Bản chụp giấy tờ tùy thân")],
        [ResultType("KQ1", "Phiếu lý lịch tư pháp")],
    ),
    ProcedureVersion(
        "2.001159",
        _SINCE,
        "Trợ cấp xã hội hằng tháng",
        "Bảo trợ xã hội",
        ["district", "commune"],
        [_c("TP1", "Tờ khai đề nghị trợ giúp xã hội")],
        [ResultType("KQ1", "Quyết định trợ cấp xã hội hằng tháng")],
    ),
]

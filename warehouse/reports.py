"""The progress report: Appendix I of the province's 2023 report, per unit and level.

Per unit: declared total of dossiers for the year, dossiers digitized (complete: every part the
procedure's catalogue version requires passed inspection), dossiers started (a first file passed
inspection, what "digitized" meant before the catalogue), results owed (returned by the one-stop desks
without their electronic file), the rate, the target rate (set per unit and year, else 70% for provincial departments,
60% for districts, 55% for communes), the gap (dossiers still to digitize to reach the target) and the
weekly trend. As JSON, CSV, XLSX (openpyxl) or a PNG chart (matplotlib).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from storage.progress import UnitProgress
from warehouse.context import Services
from warehouse.principal import Principal, readable, require_admin, visible_subtree, visible_unit
from warehouse.refusals import Invalid

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
DEFAULT_TARGETS = {"province": 0.70, "department": 0.70, "district": 0.60, "commune": 0.55}
LEVEL_NAMES = {"department": "Cấp tỉnh (sở, ngành)", "district": "Cấp huyện", "commune": "Cấp xã", "province": "Tỉnh"}
TREND_WEEKS = 8


@dataclass
class Row:
    unit_code: str
    unit_name: str
    level: str
    declared_total: int | None
    digitized: int
    rate: float | None
    target_rate: float
    gap: int | None
    weekly: list[dict[str, Any]] = field(default_factory=list)
    started: int = 0
    owed: int = 0


@dataclass
class Report:
    year: int
    level: str | None
    parent: str | None
    rows: list[Row]
    levels: list[dict[str, Any]]
    parent_name: str | None = None
    weeks: list[str] = field(default_factory=list)  # the trend's weeks (their Mondays), oldest first

    def as_json(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "level": self.level,
            "parent": self.parent,
            "units": [asdict(r) for r in self.rows],
            "parent_name": self.parent_name,
            "levels": self.levels,
        }


def _row(r: UnitProgress, weekly: list[dict[str, Any]]) -> Row:
    declared = r.declared_total
    target = r.target_rate if r.target_rate is not None else DEFAULT_TARGETS[r.level]
    rate = r.digitized / declared if declared else None
    gap = max(0, round(target * declared) - r.digitized) if declared is not None else None
    return Row(r.code, r.name, r.level, declared, r.digitized, rate, target, gap, weekly, r.started, r.owed)


async def progress_report(
    services: Services, principal: Principal, *, year: int | None, level: str | None, parent: str | None
) -> Report:
    year = year or datetime.now(VIETNAM).year
    if not 2000 <= year <= 2100:
        raise Invalid("invalid_year", "Give a year between 2000 and 2100.")
    if level is not None and level not in ("department", "district", "commune"):
        raise Invalid("invalid_level", "The level is department, district or commune.")
    scope = readable(principal, await visible_subtree(services, principal, parent))
    units = await services.units.find(level=level, parent_id=None, scope=scope)
    units = [u for u in units if u.level != "province" or level == "province"]
    ids = [u.id for u in units]
    records = await services.progress.rows(year, ids)
    today = datetime.now(VIETNAM).date()
    since = today - timedelta(days=today.weekday() + 7 * (TREND_WEEKS - 1))
    weeks = [since + timedelta(days=7 * i) for i in range(TREND_WEEKS)]
    counts: dict[tuple[int, date], int] = {
        (w.unit_id, w.week): w.digitized for w in await services.progress.weekly(year, ids, since)
    }
    rows = [
        _row(r, [{"week": w.isoformat(), "digitized": counts.get((r.unit_id, w), 0)} for w in weeks]) for r in records
    ]
    levels = []
    for name in ("department", "district", "commune"):
        of_level = [r for r in rows if r.level == name]
        if not of_level:
            continue
        declared = sum(r.declared_total or 0 for r in of_level)
        digitized = sum(r.digitized for r in of_level)
        levels.append(
            {
                "level": name,
                "units": len(of_level),
                "declared_total": declared,
                "digitized": digitized,
                "started": sum(r.started for r in of_level),
                "owed": sum(r.owed for r in of_level),
                "rate": digitized / declared if declared else None,
                "target_rate": DEFAULT_TARGETS[name],
            }
        )
    parent_unit = await services.units.get_by_code(parent) if parent else None
    return Report(
        year,
        level,
        parent,
        rows,
        levels,
        parent_name=parent_unit.name if parent_unit else None,
        weeks=[w.isoformat() for w in weeks],
    )


COLUMNS = [
    "Mã đơn vị",
    "Tên đơn vị",
    "Cấp",
    "Tổng số hồ sơ",
    "Đã số hóa",
    "Tỷ lệ",
    "Chỉ tiêu",
    "Còn thiếu",
    "Đã bắt đầu số hóa",
    "Kết quả còn nợ",
]
NO_TOTAL = "chưa khai báo tổng số hồ sơ"


def title(report: Report) -> str:
    where = f" — {report.parent_name}" if report.parent_name else ""
    return f"Tiến độ số hóa hồ sơ năm {report.year}{where}"


def _week_columns(report: Report) -> list[str]:
    return [f"Tuần {date.fromisoformat(w):%d/%m}" for w in report.weeks]


def _header(report: Report) -> list[str]:
    return [*COLUMNS, "Ghi chú", *_week_columns(report)]


def _cells(r: Row) -> list[Any]:
    return [
        r.unit_code,
        r.unit_name,
        LEVEL_NAMES.get(r.level, r.level),
        r.declared_total,
        r.digitized,
        round(r.rate, 4) if r.rate is not None else None,
        r.target_rate,
        r.gap,
        r.started,
        r.owed,
        "" if r.declared_total else NO_TOTAL,
        *(w["digitized"] for w in r.weekly),
    ]


def _level_cells(report: Report) -> list[list[Any]]:
    """One row per level: its units' totals (the report's closing lines)."""
    out = []
    for t in report.levels:
        name = LEVEL_NAMES.get(t["level"], t["level"])
        out.append(
            [
                "",
                f"Tổng {name.lower()} ({t['units']} đơn vị)",
                name,
                t["declared_total"],
                t["digitized"],
                round(t["rate"], 4) if t["rate"] is not None else None,
                t["target_rate"],
                None,
                t["started"],
                t["owed"],
                "" if t["declared_total"] else NO_TOTAL,
            ]
        )
    return out


def as_csv(report: Report) -> bytes:
    """The units, each with its 8-week trend, then one total line per level."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_header(report))
    for r in report.rows:
        writer.writerow(["" if v is None else v for v in _cells(r)])
    for cells in _level_cells(report):
        writer.writerow(["" if v is None else v for v in cells])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM makes Excel read the UTF-8 names right


def as_xlsx(report: Report) -> bytes:
    """Sheet one: the units with their 8-week trend; sheet two: the totals per level."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = f"Tiến độ số hóa {report.year}"
    sheet.append([title(report)])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append(_header(report))
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for r in report.rows:
        sheet.append(_cells(r))
    for row in sheet.iter_rows(min_row=3, min_col=6, max_col=7):
        for cell in row:
            cell.number_format = "0.0%"
    for column, width in zip("ABCDEFGHIJK", (16, 40, 20, 14, 12, 10, 10, 12, 16, 14, 28), strict=True):
        sheet.column_dimensions[column].width = width
    levels = book.create_sheet("Tổng theo cấp")
    levels.append([title(report)])
    levels["A1"].font = Font(bold=True, size=13)
    levels.append(["Cấp", "Số đơn vị", "Tổng số hồ sơ", "Đã số hóa", "Tỷ lệ", "Chỉ tiêu", "Đã bắt đầu", "Còn nợ"])
    for cell in levels[2]:
        cell.font = Font(bold=True)
    for t in report.levels:
        levels.append(
            [
                LEVEL_NAMES.get(t["level"], t["level"]),
                t["units"],
                t["declared_total"],
                t["digitized"],
                round(t["rate"], 4) if t["rate"] is not None else None,
                t["target_rate"],
                t["started"],
                t["owed"],
            ]
        )
    for row in levels.iter_rows(min_row=3, min_col=5, max_col=6):
        for cell in row:
            cell.number_format = "0.0%"
    for column, width in zip("ABCDEFGH", (24, 10, 14, 12, 10, 10, 12, 10), strict=True):
        levels.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def short_name(name: str, limit: int = 30) -> str:
    """A unit's name short enough for a chart's axis."""
    for prefix in ("UBND thành phố ", "UBND huyện ", "UBND ", "Sở "):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return name if len(name) <= limit else name[: limit - 1] + "…"


def as_png(report: Report) -> bytes:
    """Bars of the rate per unit, named (not only coded), with each unit's target; a unit that has not
    declared its total gets a grey hatched bar marked as such instead of a false 0%."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = report.rows[:60]  # a chart of more bars than this is not readable; the table has them all
    fig, ax = plt.subplots(figsize=(max(7.0, 0.4 * len(rows) + 2), 6.0), dpi=100)
    known = [i for i, r in enumerate(rows) if r.rate is not None]
    unknown = [i for i, r in enumerate(rows) if r.rate is None]
    ax.bar(known, [(rows[i].rate or 0) * 100 for i in known], color="#2b7bb9")
    ax.bar(unknown, [100] * len(unknown), color="#eeeeee", edgecolor="#999999", hatch="//")
    ax.scatter(range(len(rows)), [r.target_rate * 100 for r in rows], color="#d62728", marker="_", s=200)
    ax.set_xticks(range(len(rows)), [short_name(r.unit_name) for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.set_title(title(report))
    ax.legend(
        handles=[
            Patch(color="#2b7bb9", label="Đã số hóa (%)"),
            Patch(facecolor="#eeeeee", edgecolor="#999999", hatch="//", label="Chưa khai báo tổng số"),
            Line2D([], [], color="#d62728", marker="_", linestyle="", markersize=14, label="Chỉ tiêu"),
        ],
        loc="upper right",
        fontsize=8,
    )
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


async def set_target(
    services: Services, principal: Principal, unit_code: str, year: int, declared_total: int, target_rate: float | None
) -> dict[str, Any]:
    """The declared total of dossiers of a unit for a year, and its target rate (0-1; the level's
    default when None). Administrators of the unit or above."""
    require_admin(principal)
    unit = await visible_unit(services, principal, unit_code)
    if not 2000 <= year <= 2100:
        raise Invalid("invalid_year", "Give a year between 2000 and 2100.")
    if declared_total < 0:
        raise Invalid("invalid_declared_total", "The declared total is a number of dossiers, 0 or more.")
    if target_rate is not None and not 0 <= target_rate <= 1:
        raise Invalid("invalid_target_rate", "The target rate is a share between 0 and 1 (0.55 for 55%).")
    await services.progress.set_target(unit.id, year, declared_total, target_rate)
    return {"unit_code": unit.code, "year": year, "declared_total": declared_total, "target_rate": target_rate}

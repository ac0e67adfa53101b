"""Progress against the targets (Appendix I of the report) and the targets themselves."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Response, get, put
from litestar.params import FromPath, FromQuery, JSONBody

from warehouse.api.deps import Caller, Deps
from warehouse.api.formats import wanted_format
from warehouse.api.problems import XLSX
from warehouse.auth import admins_only
from warehouse.reports import as_csv, as_png, as_xlsx, progress_report
from warehouse.reports import set_target as set_unit_target


class TargetIn(msgspec.Struct, forbid_unknown_fields=True):
    declared_total: int
    target_rate: float | None = None


class ReportsController(Controller):
    path = "/api/v1"
    tags = ["reports"]

    @get("/reports/progress", operation_id="progress_report", response_model=None)
    async def progress(
        self,
        request: Caller,
        services: Deps,
        year: FromQuery[int | None] = None,
        level: FromQuery[str | None] = None,
        parent: FromQuery[str | None] = None,
        format: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """Per unit of the units the caller may see (under `parent`, at `level`): declared total,
        digitized, rate, target rate, gap and the weekly trend; with totals per level. JSON, or CSV,
        XLSX or a PNG chart by `Accept` (or `?format=csv|xlsx|png`)."""
        report = await progress_report(services, request.user, year=year, level=level, parent=parent)
        wanted = wanted_format(request, format, (XLSX, "text/csv", "image/png"))
        name = f"tien-do-so-hoa-{report.year}"
        if wanted == "text/csv":
            return Response(
                as_csv(report),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
            )
        if wanted == XLSX:
            return Response(
                as_xlsx(report), media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'}
            )
        if wanted == "image/png":
            return Response(as_png(report), media_type="image/png")
        return Response(report.as_json())

    @put("/targets/{unit_code:str}/{year:int}", operation_id="set_target", guards=[admins_only])
    async def set_target(
        self,
        unit_code: FromPath[str],
        year: FromPath[int],
        data: JSONBody[TargetIn],
        request: Caller,
        services: Deps,
    ) -> dict[str, Any]:
        """The declared total of dossiers of a unit for a year, and its target rate (0-1; the level's
        default when left out). Administrators of the unit or above."""
        return await set_unit_target(services, request.user, unit_code, year, data.declared_total, data.target_rate)

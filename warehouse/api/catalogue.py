"""The procedure catalogue: read by everyone signed in, changed by the province administrator."""

from __future__ import annotations

import asyncio
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, cast

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from storage.catalogue import Component, ProcedureVersion, ResultType
from warehouse.api.body import read_body
from warehouse.api.deps import Caller, Deps
from warehouse.api.formats import wanted_format
from warehouse.catalogue import (
    XLSX_TYPE,
    as_csv,
    as_xlsx,
    read_sheet,
    record_versions,
    versions_from_rows,
)
from warehouse.errors import Problem
from warehouse.principal import require_province_admin
from warehouse.rules import PART_CODE, PROCEDURE_CODE

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
PartCode = Annotated[str, msgspec.Meta(pattern=PART_CODE)]
Level = Literal["department", "district", "commune"]
Validity = Literal["none", "months", "until"]


class ComponentIO(msgspec.Struct, forbid_unknown_fields=True):
    code: PartCode
    name: Text
    required: bool = True


class ResultTypeIO(msgspec.Struct, forbid_unknown_fields=True):
    """validity: none (no end), months (`months` from issue) or until (a fixed date, `until`)."""

    code: PartCode
    name: Text
    validity: Validity = "none"
    months: Annotated[int, msgspec.Meta(ge=1, le=1200)] | None = None
    until: date | None = None
    # how long its dossiers are kept: 'permanent' or years ('10y'); the longest of a procedure's applies
    retention: Annotated[str, msgspec.Meta(pattern=r"^(permanent|[1-9][0-9]{0,2}y)$")] | None = None


class VersionIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Text
    field: Text | None = None
    levels: Annotated[list[Level], msgspec.Meta(max_length=3)] = msgspec.field(default_factory=list)
    components: Annotated[list[ComponentIO], msgspec.Meta(max_length=200)] = msgspec.field(default_factory=list)
    result_types: Annotated[list[ResultTypeIO], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)


class VersionOut(msgspec.Struct):
    procedure_code: str
    effective_from: date
    name: str
    field: str | None
    levels: list[str]
    components: list[ComponentIO]
    result_types: list[ResultTypeIO]
    recorded_at: datetime | None = None

    @classmethod
    def of(cls, v: ProcedureVersion) -> VersionOut:
        return cls(
            procedure_code=v.procedure_code,
            effective_from=v.effective_from,
            name=v.name,
            field=v.field,
            levels=v.levels,
            components=[ComponentIO(c.code, c.name, c.required) for c in v.components],
            result_types=[
                ResultTypeIO(r.code, r.name, cast("Validity", r.validity), r.months, r.until, r.retention)
                for r in v.result_types
            ],
            recorded_at=v.recorded_at,
        )


class ProcedurePage(msgspec.Struct):
    items: list[VersionOut]
    next_cursor: str | None


class ProcedureOut(msgspec.Struct):
    code: str
    versions: list[VersionOut]


class RecordedOut(msgspec.Struct):
    procedures: int
    versions: int
    dossiers_judged: int  # dossiers of these procedures whose completeness was judged again


def _version(code: str, effective_from: date, data: VersionIn) -> ProcedureVersion:
    for r in data.result_types:
        if (r.validity == "months") != (r.months is not None) or (r.validity == "until") != (r.until is not None):
            raise Problem(
                422,
                "invalid_validity",
                f"Result type {r.code}: give 'months' with validity 'months', 'until' with validity 'until', "
                "and neither with 'none'.",
            )
    return ProcedureVersion(
        code,
        effective_from,
        data.name.strip(),
        data.field.strip() if data.field else None,
        list(dict.fromkeys(data.levels)),
        [Component(c.code, c.name.strip(), c.required) for c in data.components],
        [ResultType(r.code, r.name.strip(), r.validity, r.months, r.until, r.retention) for r in data.result_types],
    )


class ProceduresController(Controller):
    path = "/api/v1/procedures"
    tags = ["catalogue"]

    @get("/", operation_id="list_procedures", response_model=None)
    async def list_procedures(
        self,
        request: Caller,
        services: Deps,
        q: Annotated[str | None, QueryParameter(max_length=100, description="part of a code or a name")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, QueryParameter(max_length=64)] = None,
        format: FromQuery[Literal["json", "csv", "xlsx"] | None] = None,
    ) -> Response[Any]:
        """The catalogue: each procedure's newest version, by code. With `Accept: text/csv` or XLSX (or
        `?format=csv|xlsx`): every version, as the spreadsheet an import takes (Vietnamese headers)."""
        wanted = wanted_format(request, format, (XLSX_TYPE, "text/csv"))
        if wanted == "text/csv":
            return Response(
                await asyncio.to_thread(as_csv, await services.catalogue.all()),
                media_type="text/csv",
                headers={"Content-Disposition": 'attachment; filename="danh-muc-tthc.csv"'},
            )
        if wanted == XLSX_TYPE:
            return Response(
                await asyncio.to_thread(as_xlsx, await services.catalogue.all()),
                media_type=XLSX_TYPE,
                headers={"Content-Disposition": 'attachment; filename="danh-muc-tthc.xlsx"'},
            )
        rows = await services.catalogue.latest(q=q.strip() if q else None, limit=limit + 1, after=cursor)
        items = [VersionOut.of(v) for v in rows[:limit]]
        return Response(
            ProcedurePage(items=items, next_cursor=rows[limit - 1].procedure_code if len(rows) > limit else None)
        )

    @get("/{procedure_code:str}", operation_id="get_procedure")
    async def get_procedure(self, procedure_code: FromPath[str], services: Deps) -> ProcedureOut:
        """Every version of one procedure, oldest first: a dossier is judged by the one in force on the day
        it was received."""
        versions = (await services.catalogue.versions([procedure_code])).get(procedure_code)
        if not versions:
            raise Problem(404, "procedure_not_found", f"Procedure {procedure_code} is not in the catalogue.")
        return ProcedureOut(code=procedure_code, versions=[VersionOut.of(v) for v in versions])

    @put("/{procedure_code:str}/versions/{effective_from:date}", operation_id="put_procedure_version")
    async def put_version(
        self,
        procedure_code: FromPath[str],
        effective_from: FromPath[date],
        data: JSONBody[VersionIn],
        request: Caller,
        services: Deps,
    ) -> RecordedOut:
        """Record the version of a procedure in force from `effective_from` (the same date again replaces
        it). The procedure's dossiers received since are judged again. Province administrator only."""
        require_province_admin(request.user)
        if re.fullmatch(PROCEDURE_CODE, procedure_code) is None:
            raise Problem(
                422, "invalid_procedure_code", "A procedure code looks like 1.001234 or 1.001234.000.00.00.H42."
            )
        recorded = await record_versions(services, request.user, [_version(procedure_code, effective_from, data)])
        request.state.audit_details = {"procedure": procedure_code, "effective_from": effective_from.isoformat()}
        return RecordedOut(recorded.procedures, recorded.versions, recorded.dossiers_judged)

    @post("/import", operation_id="import_procedures", status_code=200, request_max_body_size=None)
    async def import_catalogue(self, request: Caller, services: Deps) -> RecordedOut:
        """Import the catalogue from a spreadsheet (the body: CSV as text/csv, or XLSX), one row per
        component or result type (the export's columns). All or nothing: a bad cell is named by row and
        column and nothing is imported. Province administrator only."""
        require_province_admin(request.user)
        settings = services.settings
        body = await read_body(request, settings.catalogue_max_bytes, what="catalogue file")
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        # Reading a spreadsheet is CPU work of a second or more: in a thread, so the process keeps answering.
        versions = await asyncio.to_thread(
            lambda: versions_from_rows(
                read_sheet(
                    body,
                    media,
                    max_rows=settings.catalogue_max_rows,
                    max_unpacked=settings.catalogue_max_unpacked_bytes,
                )
            )
        )
        recorded = await record_versions(services, request.user, versions)
        request.state.audit_details = {"procedures": recorded.procedures, "versions": recorded.versions}
        return RecordedOut(recorded.procedures, recorded.versions, recorded.dossiers_judged)

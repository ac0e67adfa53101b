"""Dossier endpoints: create, read, list with filters, change, delete."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from storage import DossierFilter, InvalidCursor, decode_cursor, encode_cursor
from warehouse.api.deps import Caller, Deps
from warehouse.api.schemas import DossierOut, DossierPage
from warehouse.auth import require_writer, visible_subtree
from warehouse.dossier_rules import today_local
from warehouse.dossiers import create_dossier, dossier_for_read, dossier_for_write, update_dossier
from warehouse.errors import Problem
from warehouse.retention import delete_dossier
from warehouse.rules import DOSSIER_CODE, PROCEDURE_CODE

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ProcedureCode = Annotated[str, msgspec.Meta(pattern=PROCEDURE_CODE, max_length=64)]


class SubjectIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Text
    id_kind: ShortText
    id_number: ShortText


class ResultIn(msgspec.Struct, forbid_unknown_fields=True):
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    issued_on: date | None = None
    issuer: Text | None = None
    valid_until: date | None = None
    kind_code: ShortText | None = None


class DossierCreate(msgspec.Struct, forbid_unknown_fields=True):
    procedure_code: ProcedureCode
    subject: SubjectIn
    code: Annotated[str, msgspec.Meta(pattern=DOSSIER_CODE)] | None = None
    unit_code: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Z.]{1,35}$")] | None = None
    title: Text | None = None
    received_on: date | None = None
    result: ResultIn | None = None


class DossierPatch(msgspec.Struct, forbid_unknown_fields=True):
    procedure_code: ProcedureCode | msgspec.UnsetType = msgspec.UNSET
    subject: SubjectIn | msgspec.UnsetType = msgspec.UNSET
    title: Text | msgspec.UnsetType | None = msgspec.UNSET
    received_on: date | msgspec.UnsetType = msgspec.UNSET
    result: ResultIn | msgspec.UnsetType | None = msgspec.UNSET


def _subject_values(s: SubjectIn) -> dict[str, Any]:
    return {"subject_name": s.name, "subject_id_kind": s.id_kind.lower(), "subject_id_number": s.id_number}


def _result_values(r: ResultIn | None) -> dict[str, Any]:
    return {
        "result_number": r.number if r else None,
        "result_issued_on": r.issued_on if r else None,
        "result_issuer": r.issuer if r else None,
        "result_valid_until": r.valid_until if r else None,
        "result_kind_code": r.kind_code if r else None,
    }


def _patch_values(p: DossierPatch) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("procedure_code", "title", "received_on"):
        value = getattr(p, name)
        if value is not msgspec.UNSET:
            out[name] = value
    if not isinstance(p.subject, msgspec.UnsetType):
        out.update(_subject_values(p.subject))
    if not isinstance(p.result, msgspec.UnsetType):
        out.update(_result_values(p.result))
    return out


class DossiersController(Controller):
    path = "/api/v1/dossiers"
    tags = ["dossiers"]

    @post("/", operation_id="create_dossier", status_code=HTTP_201_CREATED)
    async def create(self, data: JSONBody[DossierCreate], request: Caller, services: Deps) -> Response[DossierOut]:
        """Create a dossier. Its code (<unit code>-YYMMDD-XXXX) is generated when not given."""
        require_writer(request.user)
        values = {
            "procedure_code": data.procedure_code,
            "title": data.title,
            "received_on": data.received_on,
            **_subject_values(data.subject),
            **_result_values(data.result),
        }
        dossier = await create_dossier(services, request.user, data.unit_code, data.code, values)
        return Response(
            DossierOut.of(dossier, today=today_local(), files=[]),
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/v1/dossiers/{dossier.id}"},
        )

    @get("/{dossier_id:uuid}", operation_id="get_dossier")
    async def get_one(self, dossier_id: FromPath[UUID], request: Caller, services: Deps) -> DossierOut:
        """A dossier with its files."""
        dossier = await dossier_for_read(services, request.user, dossier_id)
        files = await services.files.for_dossier(dossier.id)
        return DossierOut.of(dossier, today=today_local(), files=files)

    @get("/", operation_id="list_dossiers")
    async def list_dossiers(
        self,
        request: Caller,
        services: Deps,
        q: Annotated[str | None, QueryParameter(max_length=200, description="codes, names, file text")] = None,
        unit: Annotated[str | None, QueryParameter(description="unit code: that unit and the units below")] = None,
        procedure: FromQuery[str | None] = None,
        subject_id: FromQuery[str | None] = None,
        valid: FromQuery[bool | None] = None,
        received_from: FromQuery[date | None] = None,
        received_to: FromQuery[date | None] = None,
        complete: Annotated[
            bool | None, QueryParameter(description="true: complete dossiers only; false: those still missing parts")
        ] = None,
        record_state: Annotated[Literal["active", "deleted"], QueryParameter(name="state")] = "active",
        limit: Annotated[int | None, QueryParameter(ge=1)] = None,
        cursor: FromQuery[str | None] = None,
    ) -> DossierPage:
        """Dossiers the caller may see, newest first, one page at a time (follow next_cursor). With `q`:
        Vietnamese full text over codes, names and the files' text (OCR included), with or without
        diacritics, "quoted phrases", -excluded words and fuzzy names; most relevant first (words as
        written above words matched without diacritics), each with a highlighted `snippet`."""
        settings = services.settings
        page_size = limit or settings.page_size_default
        if page_size > settings.page_size_max:
            raise Problem(422, "limit_too_large", f"limit may be at most {settings.page_size_max}.")
        after = None
        if cursor:
            try:
                after = decode_cursor(cursor)
            except InvalidCursor:
                raise Problem(
                    422,
                    "invalid_cursor",
                    "cursor is not one this warehouse gave out; start from the first page.",
                ) from None
        unit_ids = await visible_subtree(services, request.user, unit)
        flt = DossierFilter(
            q=q,
            unit_ids=unit_ids,
            procedure_code=procedure,
            subject_id_number=subject_id.strip() if subject_id else None,
            valid=valid,
            received_from=received_from,
            received_to=received_to,
            state=record_state,
            complete=complete,
        )
        try:
            rows = await services.dossiers.list(flt, scope=request.user.read_scope, limit=page_size + 1, after=after)
        except InvalidCursor:
            raise Problem(
                422, "invalid_cursor", "This cursor belongs to another list or search; start from the first page."
            ) from None
        today = today_local()
        items = [DossierOut.of(d, today=today) for d in rows[:page_size]]
        last = rows[page_size - 1] if len(rows) > page_size else None
        next_cursor = encode_cursor(last.created_at, last.id, last.rank, bool(last.fuzzy)) if last else None
        return DossierPage(items=items, next_cursor=next_cursor)

    @patch("/{dossier_id:uuid}", operation_id="update_dossier")
    async def update(
        self,
        dossier_id: FromPath[UUID],
        data: JSONBody[DossierPatch],
        request: Caller,
        services: Deps,
    ) -> DossierOut:
        """Change a dossier's fields; its code and unit stay."""
        dossier = await update_dossier(services, request.user, dossier_id, _patch_values(data))
        files = await services.files.for_dossier(dossier.id)
        return DossierOut.of(dossier, today=today_local(), files=files)

    @delete("/{dossier_id:uuid}", operation_id="delete_dossier", status_code=HTTP_204_NO_CONTENT)
    async def remove(self, dossier_id: FromPath[UUID], request: Caller, services: Deps) -> None:
        """Mark a dossier deleted. It is kept, and can still be listed with state=deleted; an administrator
        can undo it for `WAREHOUSE_DELETE_UNDO_DAYS` (`POST .../restore`). 409 under a legal hold."""
        dossier = await dossier_for_write(services, request.user, dossier_id)
        await delete_dossier(services, dossier)


class ResultsController(Controller):
    path = "/api/v1/results"
    tags = ["dossiers"]

    @get("", operation_id="find_results")
    async def results(
        self,
        request: Caller,
        services: Deps,
        subject_id: Annotated[str, QueryParameter(min_length=1, max_length=40, description="the holder's ID number")],
        valid: FromQuery[bool] = True,
    ) -> dict[str, Any]:
        """Reuse instead of asking the citizen again: the results of this person or organisation (with
        `valid=true`, only those still valid today) in every unit the caller may read, with their files."""
        flt = DossierFilter(subject_id_number=subject_id.strip(), valid=valid, unit_ids=request.user.read_scope)
        limit = services.settings.page_size_max
        rows = await services.dossiers.list(flt, scope=request.user.read_scope, limit=limit, after=None)
        today = today_local()
        results = [d for d in rows if d.result_number is not None]  # one still being handled has none yet
        files = await services.files.for_dossiers([d.id for d in results])
        return {"items": [DossierOut.of(d, today=today, files=files.get(d.id, [])) for d in results]}

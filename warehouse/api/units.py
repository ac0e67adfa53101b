"""The unit tree: read it (as it is, or as it stood on a date) and change it (province admin)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from storage import Unit
from warehouse.api.deps import Caller, Deps
from warehouse.auth import visible_unit
from warehouse.errors import Problem
from warehouse.units import UNIT_CODE_PATTERN, create_unit, import_units, merge_unit, move_unit

Level = Literal["province", "department", "district", "commune"]
UnitCode = Annotated[str, msgspec.Meta(pattern=UNIT_CODE_PATTERN, max_length=35)]


class UnitOut(msgspec.Struct):
    id: int
    code: str
    name: str
    level: str
    parent_code: str | None
    placeholder: bool
    valid_from: date
    valid_to: date | None
    successor_code: str | None

    @classmethod
    def of(cls, u: Unit) -> UnitOut:
        return cls(
            u.id, u.code, u.name, u.level, u.parent_code, u.placeholder, u.valid_from, u.valid_to, u.successor_code
        )


class UnitIn(msgspec.Struct, forbid_unknown_fields=True):
    code: UnitCode
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    level: Literal["department", "district", "commune"]
    parent_code: UnitCode


class MergeIn(msgspec.Struct, forbid_unknown_fields=True):
    into: UnitCode
    effective_on: date


class MoveIn(msgspec.Struct, forbid_unknown_fields=True):
    parent: UnitCode
    effective_on: date


class ImportOut(msgspec.Struct):
    created: int
    updated: int


class UnitsController(Controller):
    path = "/api/v1/units"
    tags = ["units"]

    @get("/", operation_id="list_units")
    async def list_units(
        self,
        request: Caller,
        services: Deps,
        level: FromQuery[Level | None] = None,
        parent: Annotated[str | None, QueryParameter(description="code of the parent unit")] = None,
        on: Annotated[date | None, QueryParameter(description="the tree as it stood on this date")] = None,
        include_retired: FromQuery[bool] = False,
    ) -> list[UnitOut]:
        """Units the caller may see, filtered by level and parent; with ?on= the tree of that date."""
        if on is not None:
            units = await services.units.tree_on(on, scope=request.user.read_scope)
            return [
                UnitOut.of(u)
                for u in units
                if (level is None or u.level == level) and (parent is None or u.parent_code == parent)
            ]
        parent_id = (await visible_unit(services, request.user, parent)).id if parent is not None else None
        units = await services.units.find(
            level=level, parent_id=parent_id, scope=request.user.read_scope, include_retired=include_retired
        )
        return [UnitOut.of(u) for u in units]

    @get("/{code:str}", operation_id="get_unit")
    async def get_unit(self, code: FromPath[str], request: Caller, services: Deps) -> UnitOut:
        """One unit the caller may see, by its code: its name, level, parent and whether it is current."""
        return UnitOut.of(await visible_unit(services, request.user, code))

    @post("/", operation_id="create_unit", status_code=HTTP_201_CREATED)
    async def create(self, data: JSONBody[UnitIn], request: Caller, services: Deps) -> Response[UnitOut]:
        """Add a unit under a parent (province admin)."""
        unit = await create_unit(
            services, request.user, code=data.code, name=data.name, level=data.level, parent_code=data.parent_code
        )
        return Response(
            UnitOut.of(unit), status_code=HTTP_201_CREATED, headers={"Location": f"/api/v1/units/{unit.code}"}
        )

    @post("/import", operation_id="import_units", status_code=HTTP_200_OK, request_max_body_size=5 * 1024 * 1024)
    async def import_csv(self, request: Caller, services: Deps) -> ImportOut:
        """Load units from CSV (code,name,level,parent_code, UTF-8): new codes are added, known ones
        (the placeholder communes) take the row's name. Every row is checked first; any error imports nothing."""
        body = await request.body()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Problem(415, "not_utf8", "Save the CSV as UTF-8 and send it again.") from None
        report = await import_units(services, request.user, text)
        return ImportOut(created=report.created, updated=report.updated)

    @post("/{code:str}/merge", operation_id="merge_unit", status_code=HTTP_200_OK)
    async def merge(
        self,
        code: FromPath[str],
        data: JSONBody[MergeIn],
        request: Caller,
        services: Deps,
    ) -> UnitOut:
        """Merge a unit into another from a date: its records stay and the successor's accounts see them."""
        return UnitOut.of(
            await merge_unit(services, request.user, code, into=data.into, effective_on=data.effective_on)
        )

    @post("/{code:str}/move", operation_id="move_unit", status_code=HTTP_200_OK)
    async def move(
        self,
        code: FromPath[str],
        data: JSONBody[MoveIn],
        request: Caller,
        services: Deps,
    ) -> UnitOut:
        """Put a unit under a new parent from a date."""
        return UnitOut.of(
            await move_unit(services, request.user, code, parent=data.parent, effective_on=data.effective_on)
        )

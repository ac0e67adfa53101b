"""The unit tree as callers may see it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from storage import Unit
from warehouse.auth import Principal
from warehouse.context import Services
from warehouse.errors import Problem

Level = Literal["province", "department", "district", "commune"]


class UnitOut(msgspec.Struct):
    id: int
    code: str
    name: str
    level: str
    parent_code: str | None
    placeholder: bool

    @classmethod
    def of(cls, u: Unit) -> UnitOut:
        return cls(u.id, u.code, u.name, u.level, u.parent_code, u.placeholder)


class UnitsController(Controller):
    path = "/api/v1/units"
    tags = ["units"]

    @get("/", operation_id="list_units")
    async def list_units(
        self,
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
        level: FromQuery[Level | None] = None,
        parent: Annotated[str | None, QueryParameter(description="code of the parent unit")] = None,
    ) -> list[UnitOut]:
        """Units the caller may see, filtered by level and parent."""
        parent_id = None
        if parent is not None:
            parent_unit = await services.units.get_by_code(parent)
            if parent_unit is None or not request.user.can_read(parent_unit.id):
                raise Problem(404, "unit_not_found", f"There is no unit with code {parent!r} that you may see.")
            parent_id = parent_unit.id
        units = await services.units.list(level=level, parent_id=parent_id, scope=request.user.read_scope)
        return [UnitOut.of(u) for u in units]

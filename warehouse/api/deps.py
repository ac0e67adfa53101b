"""What every handler takes besides its own parameters, named once: the signed-in caller (its
account, role and the units it may read and write) and the warehouse's services."""

from __future__ import annotations

from typing import Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency

from warehouse.auth import Principal
from warehouse.context import Services

Caller: TypeAlias = Request[Principal, Any, Any]
Deps: TypeAlias = NamedDependency[Services]

__all__ = ["Caller", "Deps"]

"""Who is asking, and what they may see and change: the signed-in account with its read and write scope
by role, and the checks use cases make of it. Knows nothing of HTTP (the sign-in middleware in
warehouse/auth.py builds a Principal for each request; the operator CLI builds one for an account)."""

from __future__ import annotations

from dataclasses import dataclass

from storage import Account, Unit
from warehouse.context import Services
from warehouse.refusals import Forbidden, NotFound


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in account and the units it may read and write (None: every unit)."""

    account: Account
    read_scope: list[int] | None
    write_scope: list[int] | None

    @property
    def role(self) -> str:
        return self.account.role

    def can_read(self, unit_id: int) -> bool:
        return self.read_scope is None or unit_id in self.read_scope

    def can_write(self, unit_id: int) -> bool:
        return self.write_scope is None or unit_id in self.write_scope

    @property
    def writes_anything(self) -> bool:
        return self.write_scope is None or bool(self.write_scope)


async def principal_for(services: Services, account: Account, key_units: list[int] | None = None) -> Principal:
    """Scope by role: operators their own unit; admins, viewers and a one-stop system's account their
    unit and below. An API key bound to units narrows that to those units and the units below them."""
    principal = await _by_role(services, account)
    if key_units is None:
        return principal
    bound: set[int] = set()
    for unit_id in key_units:
        bound.update(await services.subtree(unit_id))

    def narrow(scope: list[int] | None) -> list[int]:
        return sorted(bound) if scope is None else [u for u in scope if u in bound]

    return Principal(account, narrow(principal.read_scope), narrow(principal.write_scope))


async def _by_role(services: Services, account: Account) -> Principal:
    if account.role == "province_admin":
        return Principal(account, None, None)
    subtree = await services.subtree(account.unit_id)
    if account.role in ("unit_admin", "one_stop"):
        return Principal(account, subtree, subtree)
    if account.role in ("viewer", "signer"):  # a signer changes no record: it signs copies beside them
        return Principal(account, subtree, [])
    own = await services.own_units(account.unit_id)
    return Principal(account, own, own)


async def visible_unit(services: Services, principal: Principal, code: str) -> Unit:
    """The unit with that code, if the caller may see it; 404 otherwise (codes do not leak)."""
    unit = await services.units.get_by_code(code)
    if unit is None or not principal.can_read(unit.id):
        raise NotFound("unit_not_found", f"There is no unit with code {code!r} that you may see.")
    return unit


async def visible_subtree(services: Services, principal: Principal, code: str | None) -> list[int] | None:
    """A ``unit=`` filter: that unit and the units below it, or None (no filter) without a code."""
    if code is None:
        return None
    return await services.subtree((await visible_unit(services, principal, code)).id)


def readable(principal: Principal, units: list[int] | None) -> list[int] | None:
    """Of ``units`` (None: every unit), those the caller may read."""
    if principal.read_scope is None:
        return units
    if units is None:
        return principal.read_scope
    allowed = set(principal.read_scope)
    return [u for u in units if u in allowed]


ADMIN_ROLES = ("province_admin", "unit_admin")


def require_admin(principal: Principal) -> None:
    if principal.role not in ADMIN_ROLES:
        raise Forbidden("forbidden", "Only an administrator may do this.")


def require_province_admin(principal: Principal) -> None:
    if principal.role != "province_admin":
        raise Forbidden("forbidden", "Only the province administrator may do this.")


def require_writer(principal: Principal) -> None:
    if not principal.writes_anything:
        raise Forbidden("forbidden", "Your account can read records but not change them.")

"""Who is calling, and which units they may read and write. Scope is decided here and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from storage import Account, Unit
from warehouse.context import Services
from warehouse.errors import Problem
from warehouse.fair_share import check_request
from warehouse.security import InvalidToken, read_token

PASSWORD_CHANGE_PATH = "/api/v1/me/password"
# Exact: a public prefix must not make a longer path public.
PUBLIC_PATHS = ["^/$", "^/health/(live|ready)/?$", "^/schema(/.*)?$", "^/metrics/?$", "^/api/v1/auth/login/?$"]


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


async def principal_for(services: Services, account: Account) -> Principal:
    """Scope by role: operators their own unit; admins and viewers their unit and below."""
    if account.role == "province_admin":
        return Principal(account, None, None)
    subtree = await services.subtree(account.unit_id)
    if account.role == "unit_admin":
        return Principal(account, subtree, subtree)
    if account.role == "viewer":
        return Principal(account, subtree, [])
    own = await services.own_units(account.unit_id)
    return Principal(account, own, own)


def _unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", detail, headers={"WWW-Authenticate": 'Bearer realm="warehouse"'})


class AuthMiddleware(AbstractAuthenticationMiddleware):
    """Reads the bearer token or API key, checks the account is still active, counts the request
    against the fair-share limits, and attaches the caller's principal."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        services: Services = connection.app.state.services
        account = await _account_of(services, connection)
        if account.state != "active":
            raise _unauthenticated("This account is disabled. Ask your unit's administrator.")
        if account.password_change_required and connection.url.path != PASSWORD_CHANGE_PATH:
            raise Problem(
                403,
                "password_change_required",
                "Change your one-time password first (POST /api/v1/me/password), then sign in again.",
            )
        rate = await check_request(services, account)
        if rate is not None:
            connection.scope.setdefault("state", {})["ratelimit"] = rate
        return AuthenticationResult(user=await principal_for(services, account), auth=None)


async def _account_of(services: Services, connection: ASGIConnection[Any, Any, Any, Any]) -> Account:
    key = connection.headers.get("x-api-key")
    if key:
        account_id = await services.api_key_account(key.strip())
        if account_id is None:
            raise _unauthenticated("This API key is not valid or was revoked. Ask for a new one.")
    else:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated(
                "Sign in first: send 'Authorization: Bearer <token>' from /api/v1/auth/login, or 'X-API-Key'."
            )
        try:
            claims = read_token(services.settings.secret_key, token.strip())
        except InvalidToken:
            raise _unauthenticated("Your sign-in has expired or is not valid. Sign in again.") from None
        account_id = claims.account_id
    account = await services.account(account_id)
    if not key and account is not None and account.credentials_version != claims.credentials_version:
        raise _unauthenticated("This account's password was changed or reset since you signed in. Sign in again.")
    if account is None:
        raise _unauthenticated("This account no longer exists.")
    return account


async def visible_unit(services: Services, principal: Principal, code: str) -> Unit:
    """The unit with that code, if the caller may see it; 404 otherwise (codes do not leak)."""
    unit = await services.units.get_by_code(code)
    if unit is None or not principal.can_read(unit.id):
        raise Problem(404, "unit_not_found", f"There is no unit with code {code!r} that you may see.")
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
        raise Problem(403, "forbidden", "Only an administrator may do this.")


def require_province_admin(principal: Principal) -> None:
    if principal.role != "province_admin":
        raise Problem(403, "forbidden", "Only the province administrator may do this.")


def require_writer(principal: Principal) -> None:
    if not principal.writes_anything:
        raise Problem(403, "forbidden", "Your account can read records but not change them.")

"""Who is calling, and which units they may read and write. Scope is decided here and nowhere else."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from storage import Account
from warehouse.context import Services
from warehouse.errors import Problem
from warehouse.fair_share import check_request, over_limit_sentence, rate_headers, reset_seconds
from warehouse.principal import (
    ADMIN_ROLES,
    Principal,
    principal_for,
    readable,
    require_admin,
    require_province_admin,
    require_writer,
    visible_subtree,
    visible_unit,
)
from warehouse.security import InvalidToken, read_token

PASSWORD_CHANGE_PATH = "/api/v1/me/password"
# Exact: a public prefix must not make a longer path public.
__all__ = [
    "ADMIN_ROLES",
    "PUBLIC_PATHS",
    "AuthMiddleware",
    "Principal",
    "admins_only",
    "principal_for",
    "readable",
    "require_admin",
    "require_province_admin",
    "require_writer",
    "visible_subtree",
    "visible_unit",
]

PUBLIC_PATHS = [
    "^/$",
    "^/health/(live|ready)/?$",
    "^/schema(/.*)?$",
    "^/metrics/?$",
    "^/api/v1/auth/login/?$",
    "^/verify/[^/]+$",  # the public check of a result, opened from its QR
]


def _unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", detail, headers={"WWW-Authenticate": 'Bearer realm="warehouse"'})


class AuthMiddleware(AbstractAuthenticationMiddleware):
    """Reads the bearer token or API key, checks the account is still active, counts the request
    against the fair-share limits, and attaches the caller's principal."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        services: Services = connection.app.state.services
        account, key_units = await _account_of(services, connection)
        if account.state != "active":
            raise _unauthenticated("This account is disabled. Ask your unit's administrator.")
        if account.password_change_required and connection.url.path != PASSWORD_CHANGE_PATH:
            raise Problem(
                403,
                "password_change_required",
                "Change your one-time password first (POST /api/v1/me/password), then sign in again.",
            )
        rate, over = await check_request(services, account)
        if over is not None and rate is not None:
            raise Problem(
                429,
                "rate_limited",
                over_limit_sentence(rate, over),
                headers={"Retry-After": str(reset_seconds(rate)), **rate_headers(rate)},
            )
        if rate is not None:
            connection.scope.setdefault("state", {})["ratelimit"] = rate
        return AuthenticationResult(user=await principal_for(services, account, key_units), auth=None)


async def _account_of(
    services: Services, connection: ASGIConnection[Any, Any, Any, Any]
) -> tuple[Account, list[int] | None]:
    """The calling account, and the units its API key is bound to (None: no binding)."""
    key = connection.headers.get("x-api-key")
    key_units: list[int] | None = None
    if key:
        holder = await services.api_key_account(key.strip())
        if holder is None:
            raise _unauthenticated("This API key is not valid or was revoked. Ask for a new one.")
        account_id, key_units = holder.account_id, holder.unit_ids
    else:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated(
                "Sign in first: send 'Authorization: Bearer <token>' from /api/v1/auth/login, or 'X-API-Key'."
            )
        return await account_for_token(services, token.strip()), None
    account = await services.account(account_id)
    if account is None:
        raise _unauthenticated("This account no longer exists.")
    return account, key_units


async def account_for_token(services: Services, token: str) -> Account:
    """The account a signed token (the API's bearer token, the console's cookie) belongs to, while the
    token is still good for it: not expired, the account there, its password not changed since."""
    try:
        claims = read_token(services.settings.secret_key, token)
    except InvalidToken:
        raise _unauthenticated("Your sign-in has expired or is not valid. Sign in again.") from None
    account = await services.account(claims.account_id)
    if account is None:
        raise _unauthenticated("This account no longer exists.")
    if account.credentials_version != claims.credentials_version:
        raise _unauthenticated("This account's password was changed or reset since you signed in. Sign in again.")
    return account


def admins_only(connection: ASGIConnection[Any, Principal, Any, Any], _: BaseRouteHandler) -> None:
    """A route guard: administrators of the province or of a unit."""
    require_admin(connection.user)

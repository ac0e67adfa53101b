"""Signing in, and the signed-in account."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from storage import Window
from warehouse.auth import Principal
from warehouse.context import Services
from warehouse.dossier_rules import LOCAL_TZ
from warehouse.errors import Problem
from warehouse.security import PasswordChecksBusy, issue_token

Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    login: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Password


class TokenOut(msgspec.Struct):
    access_token: str
    expires_in: int
    token_type: str = "bearer"
    password_change_required: bool = False


class UnitRef(msgspec.Struct):
    id: int
    code: str
    name: str


class MeOut(msgspec.Struct):
    id: int
    login: str
    role: str
    state: str
    unit: UnitRef
    password_change_required: bool


class PasswordChangedOut(msgspec.Struct):
    access_token: str
    expires_in: int
    token_type: str = "bearer"
    status: str = "changed"


class PasswordChangeIn(msgspec.Struct, forbid_unknown_fields=True):
    current_password: Password
    new_password: Annotated[str, msgspec.Meta(min_length=10, max_length=256)]


_BAD_LOGIN = Problem(401, "bad_credentials", "The login or password is wrong. Check them and try again.")


def _locked(until: datetime, now: datetime) -> Problem:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    local = until.astimezone(LOCAL_TZ)
    return Problem(
        429,
        "account_locked",
        f"Too many wrong passwords from your address: this login is locked until {local:%H:%M:%S %d/%m/%Y}. "
        f"Try again in {seconds} seconds, or ask your administrator to unlock it.",
        headers={"Retry-After": str(seconds)},
        extra={"locked_until": until.isoformat()},
    )


class SessionController(Controller):
    path = "/api/v1"
    tags = ["auth"]

    @post("/auth/login", operation_id="login", status_code=HTTP_200_OK, security=[])
    async def login(
        self, data: JSONBody[LoginIn], request: Request[Any, Any, Any], services: NamedDependency[Services]
    ) -> TokenOut:
        """Exchange a login and password for a bearer token. Wrong passwords from one address lock that
        address out of that login for a while (never the login everywhere); each address has a number
        of sign-ins a minute."""
        settings = services.settings
        address = client_address(request, settings.trusted_proxies)
        await _check_address(services, address)
        login = data.login.strip().lower()
        now = datetime.now(UTC)
        locked_ms = await services.logins.locked_for_ms(login, address)
        if locked_ms:
            raise _locked(now + timedelta(milliseconds=locked_ms), now)
        account = await services.accounts.get_by_login(login)
        try:
            ok = await services.passwords.verify_async(account.password_hash if account else None, data.password)
        except PasswordChecksBusy:
            raise Problem(
                503,
                "sign_in_busy",
                "Too many people are signing in right now. Wait a few seconds and try again.",
                headers={"Retry-After": "2"},
            ) from None
        if account is not None:
            request.state.audit_account = account.id
            request.state.audit_unit = account.unit_id
        if not ok:
            if account is not None:
                await services.accounts.record_failed_login(account.id)
            locked_ms = await services.logins.failed(
                login,
                address,
                free_attempts=settings.login_free_attempts,
                base_seconds=settings.login_lock_seconds,
                max_seconds=settings.login_lock_max_seconds,
            )
            if locked_ms:
                raise _locked(now + timedelta(milliseconds=locked_ms), now)
            raise _BAD_LOGIN
        assert account is not None
        if account.state != "active":
            raise Problem(401, "account_disabled", "This account is disabled. Ask your unit's administrator.")
        await services.logins.succeeded(login, address)
        await services.accounts.record_login(account.id)
        if services.passwords.needs_rehash(account.password_hash):
            new_hash = await services.passwords.hash_async(data.password)
            await services.accounts.set_password(
                account.id, new_hash, change_required=account.password_change_required, end_sign_ins=False
            )
        ttl = settings.token_ttl_seconds
        return TokenOut(
            access_token=issue_token(
                settings.secret_key, account.id, ttl, credentials_version=account.credentials_version
            ),
            expires_in=ttl,
            password_change_required=account.password_change_required,
        )

    @get("/me", operation_id="me")
    async def me(self, request: Request[Principal, Any, Any]) -> MeOut:
        """The signed-in account, its role and its unit."""
        a = request.user.account
        return MeOut(
            id=a.id,
            login=a.login,
            role=a.role,
            state=a.state,
            unit=UnitRef(id=a.unit_id, code=a.unit_code, name=a.unit_name),
            password_change_required=a.password_change_required,
        )

    @post("/me/password", operation_id="change_password", status_code=HTTP_200_OK)
    async def change_password(
        self,
        data: JSONBody[PasswordChangeIn],
        request: Request[Principal, Any, Any],
        services: NamedDependency[Services],
    ) -> PasswordChangedOut:
        """Set a new password; required once after a one-time password. Every earlier sign-in of the
        account ends; the answer carries a fresh token."""
        account = request.user.account
        try:
            right = await services.passwords.verify_async(account.password_hash, data.current_password)
        except PasswordChecksBusy:
            raise Problem(
                503,
                "sign_in_busy",
                "The warehouse is busy checking passwords. Try again shortly.",
                headers={"Retry-After": "2"},
            ) from None
        if not right:
            raise Problem(422, "wrong_current_password", "The current password is wrong.")
        if data.new_password == data.current_password:
            raise Problem(422, "password_unchanged", "Choose a new password different from the current one.")
        version = await services.accounts.set_password(
            account.id, await services.passwords.hash_async(data.new_password), change_required=False
        )
        services.forget_account(account.id)
        ttl = services.settings.token_ttl_seconds
        return PasswordChangedOut(
            access_token=issue_token(services.settings.secret_key, account.id, ttl, credentials_version=version),
            expires_in=ttl,
        )


async def _check_address(services: Services, address: str) -> None:
    states = await services.counters.hit(
        [Window(f"signin:addr:{address}", services.settings.login_address_per_minute, 60)]
    )
    if states and states[0].exceeded:
        wait = max(1, math.ceil(states[0].resets_in_ms / 1000))
        raise Problem(
            429,
            "too_many_sign_ins",
            f"Too many sign-in attempts from your address. Wait {wait} seconds and try again.",
            headers={"Retry-After": str(wait)},
        )


def client_address(request: Request[Any, Any, Any], trusted_proxies: list[str]) -> str:
    """The caller's address: the peer's, or the nearest untrusted one a trusted proxy forwarded."""
    peer = request.client.host if request.client else "unknown"
    if peer not in trusted_proxies:
        return peer
    forwarded = [a.strip() for a in request.headers.get("x-forwarded-for", "").split(",") if a.strip()]
    for address in reversed(forwarded):
        if address not in trusted_proxies:
            return address[:64]
    return peer

"""Signing in, and the signed-in account."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from warehouse.auth import Principal
from warehouse.context import Services
from warehouse.dossier_rules import LOCAL_TZ
from warehouse.errors import Problem
from warehouse.security import issue_token

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
        f"Too many wrong passwords: this account is locked until {local:%H:%M:%S %d/%m/%Y}. "
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
        """Exchange a login and password for a bearer token. Repeated failures lock the account for a while."""
        settings = services.settings
        account = await services.accounts.get_by_login(data.login.strip().lower())
        # Verify even for unknown logins so timing does not reveal which logins exist.
        ok = await services.passwords.verify_async(account.password_hash if account else _DUMMY_HASH, data.password)
        if account is None:
            raise _BAD_LOGIN
        request.state.audit_account = account.id
        request.state.audit_unit = account.unit_id
        now = datetime.now(UTC)
        if account.locked_until is not None and account.locked_until > now:
            raise _locked(account.locked_until, now)
        if not ok:
            locked_until = await services.accounts.record_failed_login(
                account.id,
                free_attempts=settings.login_free_attempts,
                base_seconds=settings.login_lock_seconds,
                max_seconds=settings.login_lock_max_seconds,
            )
            if locked_until is not None and locked_until > now:
                raise _locked(locked_until, now)
            raise _BAD_LOGIN
        if account.state != "active":
            raise Problem(401, "account_disabled", "This account is disabled. Ask your unit's administrator.")
        await services.accounts.record_login(account.id)
        if services.passwords.needs_rehash(account.password_hash):
            new_hash = await services.passwords.hash_async(data.password)
            await services.accounts.set_password(account.id, new_hash, change_required=account.password_change_required)
        ttl = settings.token_ttl_seconds
        return TokenOut(
            access_token=issue_token(settings.secret_key, account.id, ttl),
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
    ) -> dict[str, str]:
        """Set a new password; required once after a one-time password."""
        account = request.user.account
        if not await services.passwords.verify_async(account.password_hash, data.current_password):
            raise Problem(422, "wrong_current_password", "The current password is wrong.")
        if data.new_password == data.current_password:
            raise Problem(422, "password_unchanged", "Choose a new password different from the current one.")
        await services.accounts.set_password(
            account.id, await services.passwords.hash_async(data.new_password), change_required=False
        )
        services.forget_account(account.id)
        return {"status": "changed"}


_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$0Yl+kdC8ncGd8ncXf5Cm0fGVBx+7vDDeh4HF8sVLcEI"

"""Signing in, and the signed-in account."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from warehouse.auth import Principal
from warehouse.context import Services
from warehouse.errors import Problem
from warehouse.security import hash_password_async, issue_token, verify_password_async

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


class SessionController(Controller):
    path = "/api/v1"
    tags = ["auth"]

    @post("/auth/login", operation_id="login", status_code=HTTP_200_OK, security=[])
    async def login(self, data: JSONBody[LoginIn], services: NamedDependency[Services]) -> TokenOut:
        """Exchange a login and password for a bearer token."""
        account = await services.accounts.get_by_login(data.login.strip().lower())
        # Verify even for unknown logins so timing does not reveal which logins exist.
        ok = await verify_password_async(account.password_hash if account else _DUMMY_HASH, data.password)
        if account is None or not ok:
            raise _BAD_LOGIN
        if account.state != "active":
            raise Problem(401, "account_disabled", "This account is disabled. Ask your unit's administrator.")
        ttl = services.settings.token_ttl_seconds
        return TokenOut(
            access_token=issue_token(services.settings.secret_key, account.id, ttl),
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
        if not await verify_password_async(account.password_hash, data.current_password):
            raise Problem(422, "wrong_current_password", "The current password is wrong.")
        if data.new_password == data.current_password:
            raise Problem(422, "password_unchanged", "Choose a new password different from the current one.")
        await services.accounts.set_password(
            account.id, await hash_password_async(data.new_password), change_required=False
        )
        return {"status": "changed"}


_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0c2FsdA$0Yl+kdC8ncGd8ncXf5Cm0fGVBx+7vDDeh4HF8sVLcEI"

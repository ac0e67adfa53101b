"""Signing in, and the signed-in account."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from storage import Account
from warehouse import signin
from warehouse.api.deps import Caller, Deps

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


class SessionController(Controller):
    path = "/api/v1"
    tags = ["auth"]

    @post("/auth/login", operation_id="login", status_code=HTTP_200_OK, security=[])
    async def login(self, data: JSONBody[LoginIn], request: Request[Any, Any, Any], services: Deps) -> TokenOut:
        """Exchange a login and password for a bearer token. Wrong passwords from one address lock that
        address out of that login for a while (never the login everywhere); each address has a number
        of sign-ins a minute."""

        def seen(account: Account) -> None:
            request.state.audit_account = account.id
            request.state.audit_unit = account.unit_id

        address = client_address(request, services.settings.trusted_proxies)
        signed = await signin.sign_in(services, data.login, data.password, address, seen=seen)
        return TokenOut(
            access_token=signed.token,
            expires_in=signed.expires_in,
            password_change_required=signed.account.password_change_required,
        )

    @get("/me", operation_id="me")
    async def me(self, request: Caller) -> MeOut:
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
        request: Caller,
        services: Deps,
    ) -> PasswordChangedOut:
        """Set a new password; required once after a one-time password. Every earlier sign-in of the
        account ends; the answer carries a fresh token."""
        account = request.user.account
        signed = await signin.change_password(services, account, data.current_password, data.new_password)
        return PasswordChangedOut(access_token=signed.token, expires_in=signed.expires_in)


def trusted(address: str, trusted_proxies: list[str]) -> bool:
    """Whether ``address`` is one of the proxies: named exactly, or inside a network given as CIDR."""
    if address in trusted_proxies:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in trusted_proxies:
        if "/" in entry:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def client_address(request: Request[Any, Any, Any], trusted_proxies: list[str]) -> str:
    """The caller's address: the peer's, or the nearest untrusted one a trusted proxy forwarded."""
    peer = request.client.host if request.client else "unknown"
    if not trusted(peer, trusted_proxies):
        return peer
    forwarded = [a.strip() for a in request.headers.get("x-forwarded-for", "").split(",") if a.strip()]
    for address in reversed(forwarded):
        if not trusted(address, trusted_proxies):
            return address[:64]
    return peer

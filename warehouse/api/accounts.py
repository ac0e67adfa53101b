"""Accounts, provisioning, API keys and the audit trail (administrators)."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Annotated, Any, Literal, cast

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from storage import Account, ApiKey, AuditEvent, AuditFilter
from warehouse.accounts import (
    NewCredentials,
    change_account,
    create_account,
    create_api_key,
    provision,
    reset_password,
    revoke_api_key,
    write_credentials,
)
from warehouse.api.deps import Caller, Deps
from warehouse.auth import admins_only, visible_subtree
from warehouse.context import Services
from warehouse.errors import Problem
from warehouse.fair_share import account_limits
from warehouse.rules import UNIT_CODE

Role = Literal["province_admin", "unit_admin", "operator", "viewer", "one_stop", "signer"]
Level = Literal["department", "district", "commune"]


class AccountIn(msgspec.Struct, forbid_unknown_fields=True):
    login: Annotated[str, msgspec.Meta(min_length=2, max_length=63)]
    unit_code: Annotated[str, msgspec.Meta(max_length=35)]
    role: Role
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None


class AccountPatch(msgspec.Struct, forbid_unknown_fields=True):
    state: Literal["active", "disabled"] | None = None
    role: Role | None = None
    limits: dict[str, int] | None = None


class ProvisionIn(msgspec.Struct, forbid_unknown_fields=True):
    parent_unit_code: Annotated[str, msgspec.Meta(max_length=35)]
    level: Level
    per_unit: Annotated[int, msgspec.Meta(ge=1, le=50)]
    role: Role = "operator"


class AccountOut(msgspec.Struct):
    id: int
    login: str
    unit_code: str
    role: str
    state: str
    password_change_required: bool
    locked_until: datetime | None
    limits: dict[str, int]
    created_at: datetime


class CredentialsOut(msgspec.Struct):
    id: int
    login: str
    unit_code: str
    role: str
    password: str | None
    unit_name: str = ""


class ProvisionOut(msgspec.Struct):
    accounts: list[CredentialsOut]


UnitCode = Annotated[str, msgspec.Meta(pattern=UNIT_CODE)]


class KeyIn(msgspec.Struct, forbid_unknown_fields=True):
    label: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    # Bind the key to these units (each with the units below it), within the account's own reach:
    # a one-stop system's key for the units it serves, a scanner's for one commune.
    units: Annotated[list[UnitCode], msgspec.Meta(max_length=300)] | None = None


class KeyOut(msgspec.Struct):
    id: int
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    key: str | None = None
    units: list[str] | None = None


class AuditOut(msgspec.Struct):
    id: int
    at: datetime
    account_id: int | None
    login: str | None
    unit_code: str | None
    action: str
    record_type: str | None
    record_id: str | None
    status: int | None
    client_addr: str | None
    request_id: str | None
    details: dict[str, Any]


class AuditPage(msgspec.Struct):
    items: list[AuditOut]
    next_cursor: str | None


def _account_out(services: Services, a: Account) -> AccountOut:
    return AccountOut(
        id=a.id,
        login=a.login,
        unit_code=a.unit_code,
        role=a.role,
        state=a.state,
        password_change_required=a.password_change_required,
        locked_until=a.locked_until,
        limits=account_limits(services.settings, a),
        created_at=a.created_at,
    )


def _credentials(c: NewCredentials) -> CredentialsOut:
    return CredentialsOut(
        id=c.account_id,
        login=c.login,
        unit_code=c.unit_code,
        role=c.role,
        password=c.password or None,
        unit_name=c.unit_name,
    )


async def _key_out(services: Services, k: ApiKey, key: str | None = None) -> KeyOut:
    units = None
    if k.unit_ids is not None:
        units = [u.code for u in [await services.units.get(i) for i in k.unit_ids] if u is not None]
    return KeyOut(
        id=k.id,
        label=k.label,
        created_at=k.created_at,
        last_used_at=k.last_used_at,
        revoked_at=k.revoked_at,
        key=key,
        units=units,
    )


def _csv(rows: list[CredentialsOut]) -> bytes:
    """With a byte-order mark, so that a spreadsheet opens the Vietnamese unit names as UTF-8."""
    out = io.StringIO()
    write_credentials(out, [(r.login, r.password or "", r.unit_code, r.unit_name, r.role) for r in rows])
    return out.getvalue().encode("utf-8-sig")


def _wants_csv(request: Request[Any, Any, Any]) -> bool:
    return "text/csv" in request.headers.get("accept", "")


class AccountsController(Controller):
    path = "/api/v1/accounts"
    tags = ["accounts"]

    @post("/", operation_id="create_account", status_code=HTTP_201_CREATED)
    async def create(self, data: JSONBody[AccountIn], request: Caller, services: Deps) -> Response[CredentialsOut]:
        """Create an account. Without a password it gets a one-time password, shown here once."""
        created = await create_account(
            services, request.user, login=data.login, password=data.password, unit_code=data.unit_code, role=data.role
        )
        return Response(
            _credentials(created),
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/v1/accounts/{created.account_id}"},
        )

    @get("/", operation_id="list_accounts", guards=[admins_only])
    async def list_accounts(
        self,
        request: Caller,
        services: Deps,
        unit: Annotated[str | None, QueryParameter(description="unit code: that unit and the units below")] = None,
    ) -> list[AccountOut]:
        """Accounts of the units the administrator manages."""
        unit_ids = await visible_subtree(services, request.user, unit) or request.user.read_scope
        return [_account_out(services, a) for a in await services.accounts.list(unit_ids=unit_ids)]

    @get("/{account_id:int}", operation_id="get_account", guards=[admins_only])
    async def get_account(self, account_id: FromPath[int], request: Caller, services: Deps) -> AccountOut:
        """One account of the units the administrator manages: login, role, unit, state and limits."""
        a = await services.accounts.get(account_id)
        if a is None or not request.user.can_read(a.unit_id):
            raise Problem(404, "account_not_found", f"There is no account {account_id} that you may see.")
        return _account_out(services, a)

    @patch("/{account_id:int}", operation_id="update_account")
    async def update(
        self,
        account_id: FromPath[int],
        data: JSONBody[AccountPatch],
        request: Caller,
        services: Deps,
    ) -> AccountOut:
        """Disable or enable an account, change its role, or override its limits. Enabling unlocks."""
        changed = await change_account(
            services, request.user, account_id, state=data.state, role=data.role, limits=data.limits
        )
        return _account_out(services, changed)

    @post("/{account_id:int}/reset-password", operation_id="reset_password", status_code=HTTP_200_OK)
    async def reset(self, account_id: FromPath[int], request: Caller, services: Deps) -> CredentialsOut:
        """Give the account a new one-time password (shown once) and lift any lockout."""
        return _credentials(await reset_password(services, request.user, account_id))

    @post("/provision", operation_id="provision_accounts", status_code=HTTP_201_CREATED)
    async def provision_accounts(
        self, data: JSONBody[ProvisionIn], request: Caller, services: Deps
    ) -> Response[ProvisionOut]:
        """Create per_unit accounts for every unit of the level under the parent; again, only the missing ones.

        The answer lists the new accounts with their one-time passwords, once (CSV with Accept: text/csv)."""
        created = [
            _credentials(c)
            for c in await provision(
                services,
                request.user,
                parent_code=data.parent_unit_code,
                level=data.level,
                per_unit=data.per_unit,
                role=data.role,
            )
        ]
        request.state.audit_details = {"created": len(created), "parent": data.parent_unit_code, "level": data.level}
        if _wants_csv(request):  # declared beside the JSON in the OpenAPI document (api/problems.py)
            csv_answer: Response[Any] = Response(
                _csv(created),
                media_type="text/csv",
                status_code=HTTP_201_CREATED,
                headers={"Content-Disposition": 'attachment; filename="tai-khoan-moi.csv"'},
            )
            return cast("Response[ProvisionOut]", csv_answer)
        return Response(ProvisionOut(accounts=created), status_code=HTTP_201_CREATED)


class ApiKeysController(Controller):
    path = "/api/v1/api-keys"
    tags = ["accounts"]

    @post("/", operation_id="create_api_key", status_code=HTTP_201_CREATED)
    async def create(self, data: JSONBody[KeyIn], request: Caller, services: Deps) -> Response[KeyOut]:
        """A key for scanner software or a one-stop system, acting with this account's rights, or only
        within `units` (each with the units below it) when given. The key is shown once."""
        key, secret = await create_api_key(services, request.user, data.label, data.units)
        return Response(
            await _key_out(services, key, secret),
            status_code=HTTP_201_CREATED,
            headers={"Location": f"/api/v1/api-keys/{key.id}"},
        )

    @get("/", operation_id="list_api_keys")
    async def list_keys(self, request: Caller, services: Deps) -> list[KeyOut]:
        """This account's keys, with when each was last used."""
        return [await _key_out(services, k) for k in await services.api_keys.list(request.user.account.id)]

    @delete("/{key_id:int}", operation_id="revoke_api_key", status_code=HTTP_204_NO_CONTENT)
    async def revoke(self, key_id: FromPath[int], request: Caller, services: Deps) -> None:
        """Revoke a key at once. Administrators may revoke the keys of accounts they manage."""
        await revoke_api_key(services, request.user, key_id)


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ["accounts"]

    @get("/", operation_id="list_audit_events", guards=[admins_only])
    async def list_events(
        self,
        request: Caller,
        services: Deps,
        record: FromQuery[str | None] = None,
        account: FromQuery[int | None] = None,
        unit: FromQuery[str | None] = None,
        since: Annotated[datetime | None, QueryParameter(name="from")] = None,
        until: Annotated[datetime | None, QueryParameter(name="to")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        cursor: FromQuery[str | None] = None,
    ) -> AuditPage:
        """Who did what, newest first: writes, logins and reads of file content in the caller's units."""
        unit_ids = await visible_subtree(services, request.user, unit)
        try:
            before = int(cursor) if cursor else None
        except ValueError:
            raise Problem(422, "invalid_cursor", "cursor is not one this warehouse gave out.") from None
        rows = await services.audit.list(
            AuditFilter(record_id=record, account_id=account, unit_ids=unit_ids, since=since, until=until),
            scope=request.user.read_scope,
            limit=limit + 1,
            before_id=before,
        )
        items = [_audit_out(e) for e in rows[:limit]]
        return AuditPage(items=items, next_cursor=str(rows[limit - 1].id) if len(rows) > limit else None)


def _audit_out(e: AuditEvent) -> AuditOut:
    return AuditOut(
        id=e.id,
        at=e.at,
        account_id=e.account_id,
        login=e.login,
        unit_code=e.unit_code,
        action=e.action,
        record_type=e.record_type,
        record_id=e.record_id,
        status=e.status,
        client_addr=e.client_addr,
        request_id=e.request_id,
        details=e.details,
    )

"""Who may manage which accounts, and provisioning a whole district's communes in one step."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, TextIO

from storage import ROLES, Account, ApiKey, Unit
from warehouse.context import Services
from warehouse.fair_share import LIMIT_KEYS, account_limits
from warehouse.principal import Principal, require_admin, visible_unit
from warehouse.refusals import Conflict, Forbidden, Invalid, NotFound
from warehouse.security import generate_password, hash_one_time_password

LOGIN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
ROLE_ABBREVIATIONS = {
    "operator": "op",
    "viewer": "vw",
    "unit_admin": "qt",
    "province_admin": "qtt",
    "one_stop": "mc",
    "signer": "ks",  # ký số
}
MAX_PER_UNIT = 50


@dataclass(frozen=True, slots=True)
class NewCredentials:
    account_id: int
    login: str
    password: str
    unit_code: str
    role: str
    unit_name: str = ""


CREDENTIALS_HEADER = ("login", "password", "unit_code", "unit_name", "role")


def write_credentials(out: TextIO, rows: Iterable[tuple[str, str, str, str, str]]) -> None:
    """The CSV of new accounts an administrator hands out: login, one-time password, unit, role."""
    writer = csv.writer(out)
    writer.writerow(CREDENTIALS_HEADER)
    writer.writerows(rows)


def roles_granted_by(principal: Principal) -> tuple[str, ...]:
    """A unit admin hands out any role but the province's; the province admin, any role."""
    if principal.role == "province_admin":
        return ROLES
    if principal.role == "unit_admin":
        return ("unit_admin", "operator", "viewer")
    return ()


def check_role(principal: Principal, role: str) -> None:
    if role not in ROLES:
        raise Invalid("invalid_role", f"role must be one of {', '.join(ROLES)}.")
    if role not in roles_granted_by(principal):
        raise Forbidden("forbidden", f"Your account may not give the role {role}.")


async def managed_unit(services: Services, principal: Principal, unit_code: str) -> Unit:
    """A unit whose accounts the caller may manage (404 outside the caller's units)."""
    require_admin(principal)
    unit = await visible_unit(services, principal, unit_code)
    if not principal.can_write(unit.id):
        raise Forbidden("forbidden", f"Your account may not manage the accounts of unit {unit.code}.")
    if unit.retired:
        raise Conflict("unit_retired", f"Unit {unit.code} was merged into {unit.successor_code}; add accounts there.")
    return unit


async def managed_account(services: Services, principal: Principal, account_id: int) -> Account:
    require_admin(principal)
    account = await services.accounts.get(account_id)
    if account is None or not principal.can_read(account.unit_id):
        raise NotFound("account_not_found", f"There is no account {account_id} that you may see.")
    if not principal.can_write(account.unit_id) or account.role not in roles_granted_by(principal):
        raise Forbidden("forbidden", f"Your account may not manage the account {account.login}.")
    return account


async def create_account(
    services: Services, principal: Principal, *, login: str, password: str | None, unit_code: str, role: str
) -> NewCredentials:
    unit = await managed_unit(services, principal, unit_code)
    check_role(principal, role)
    login = login.strip().lower()
    if not LOGIN.fullmatch(login):
        raise Invalid(
            "invalid_login",
            "A login has 2 to 63 characters: lower-case letters without diacritics, digits, '.', '_' or '-'.",
        )
    one_time = password is None
    secret = password if password is not None else generate_password()
    if not one_time and len(secret) < 10:
        raise Invalid("password_too_short", "A password has at least 10 characters.")
    password_hash = hash_one_time_password(secret) if one_time else await services.passwords.hash_async(secret)
    account_id = await services.accounts.create(
        login=login,
        unit_id=unit.id,
        role=role,
        password_hash=password_hash,
        password_change_required=one_time,
        created_by=principal.account.id,
    )
    if account_id is None:
        raise Conflict("login_taken", f"The login {login} is already used. Choose another.")
    return NewCredentials(account_id, login, secret if one_time else "", unit.code, role, unit.name)


def generated_login(unit: Unit, role: str, n: int) -> str:
    """Readable and tied to the unit: ``000.03.22.hxx-op01`` is operator 1 of commune 000.03.22.HXX."""
    return f"{unit.code.lower()}-{ROLE_ABBREVIATIONS[role]}{n:02d}"


async def provision(
    services: Services, principal: Principal, *, parent_code: str, level: str, per_unit: int, role: str
) -> list[NewCredentials]:
    """``per_unit`` accounts of ``role`` for every current unit of ``level`` under the parent.

    Running it again creates only the ones missing; each new account gets a one-time password,
    returned here once and never again.
    """
    parent = await managed_unit(services, principal, parent_code)
    check_role(principal, role)
    if not 1 <= per_unit <= MAX_PER_UNIT:
        raise Invalid("invalid_per_unit", f"per_unit must be between 1 and {MAX_PER_UNIT}.")
    subtree = set(await services.subtree(parent.id, max_age=0))
    units = [
        u
        for u in await services.units.find(level=level, parent_id=None, scope=list(subtree))
        if not u.retired and principal.can_write(u.id)
    ]
    if not units:
        raise NotFound("no_units", f"There is no current {level} under {parent.code}.")
    created: list[NewCredentials] = []
    for unit in units:
        existing = await services.accounts.logins_with_prefix(f"{unit.code.lower()}-")
        for n in range(1, per_unit + 1):
            login = generated_login(unit, role, n)
            if login in existing:
                continue
            secret = generate_password()
            account_id = await services.accounts.create(
                login=login,
                unit_id=unit.id,
                role=role,
                password_hash=hash_one_time_password(secret),
                password_change_required=True,
                created_by=principal.account.id,
            )
            if account_id is not None:
                created.append(NewCredentials(account_id, login, secret, unit.code, role, unit.name))
    return created


async def reset_password(services: Services, principal: Principal, account_id: int) -> NewCredentials:
    account = await managed_account(services, principal, account_id)
    secret = generate_password()
    # A reset ends every sign-in of the account and revokes its API keys: whoever held them may be why.
    await services.accounts.set_password(account.id, hash_one_time_password(secret), change_required=True)
    await services.api_keys.revoke_all(account.id)
    await services.accounts.record_login(account.id)  # a reset also lifts a lockout
    await services.logins.forget(account.login)
    services.forget_account(account.id)
    return NewCredentials(account.id, account.login, secret, account.unit_code, account.role, account.unit_name)


async def change_account(
    services: Services,
    principal: Principal,
    account_id: int,
    *,
    state: str | None,
    role: str | None,
    limits: dict[str, Any] | None,
) -> Account:
    account = await managed_account(services, principal, account_id)
    if account.id == principal.account.id and (state or role):
        raise Forbidden("forbidden", "You cannot change your own state or role; ask another administrator.")
    if role is not None:
        check_role(principal, role)
    if state is not None and state not in ("active", "disabled"):
        raise Invalid("invalid_state", "state must be 'active' or 'disabled'.")
    if limits is not None:
        unknown = set(limits) - set(LIMIT_KEYS)
        bad = [k for k, v in limits.items() if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 1_000_000]
        if unknown or bad:
            raise Invalid(
                "invalid_limits",
                f"limits take whole numbers from 1 to 1000000 for {', '.join(LIMIT_KEYS)}.",
            )
        if principal.role != "province_admin":
            if account.id == principal.account.id:
                raise Forbidden("forbidden", "You cannot change your own limits; ask the province administrator.")
            defaults = account_limits(services.settings, replace(account, limits={}))
            raised = [k for k, v in limits.items() if v > defaults[k]]
            if raised:
                raise Forbidden(
                    "forbidden",
                    f"Only the province administrator may raise {', '.join(raised)} above the default "
                    f"({', '.join(f'{k} {defaults[k]}' for k in raised)}); you may lower them.",
                )
    await services.accounts.update(account.id, state=state, role=role, limits=limits)
    services.forget_account(account.id)
    changed = await services.accounts.get(account.id)
    assert changed is not None
    return changed


async def create_api_key(
    services: Services, principal: Principal, label: str, unit_codes: list[str] | None
) -> tuple[ApiKey, str]:
    """A key acting with this account's rights, or only within ``unit_codes`` (each with the units
    below it) when given; the secret is returned here once."""
    label = label.strip()
    if not 1 <= len(label) <= 100:
        raise Invalid("invalid_label", "Give the key a label of 1 to 100 characters (what uses it).")
    unit_ids = None
    if unit_codes is not None:
        if not unit_codes:
            raise Invalid("invalid_units", "Name at least one unit the key is for, or leave 'units' out.")
        unit_ids = sorted({(await visible_unit(services, principal, code)).id for code in unit_codes})
    return await services.api_keys.create(principal.account.id, label, unit_ids)


async def revoke_api_key(services: Services, principal: Principal, key_id: int) -> None:
    """Revoke a key at once: the caller's own, or one of an account an administrator manages."""
    key = await services.api_keys.get(key_id)
    owner = await services.accounts.get(key.account_id) if key else None
    mine = key is not None and key.account_id == principal.account.id
    managed = (
        owner is not None and principal.role in ("province_admin", "unit_admin") and principal.can_write(owner.unit_id)
    )
    if key is None or not (mine or managed):
        raise NotFound("api_key_not_found", f"There is no API key {key_id} that you may revoke.")
    await services.api_keys.revoke(key.id)

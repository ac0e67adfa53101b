"""What the person at the server's console may do without signing in: create a province administrator,
or give an existing account a new password. Whoever can run ``warehouse`` with the owner's database
settings already holds every record, so this grants nothing new; it is how an install whose admin
password was lost (or never seen) is entered again. Each use is in the audit trail."""

from __future__ import annotations

from dataclasses import dataclass

from storage import Accounts, ApiKeys, Audit, Database, SignIns, Units
from warehouse.accounts import LOGIN
from warehouse.security import Passwords, generate_password

MIN_PASSWORD = 10


class ConsoleRefusal(Exception):
    """What the console cannot do, in a sentence for the person typing."""


@dataclass(frozen=True, slots=True)
class ConsoleCredentials:
    login: str
    password: str  # shown once when generated; empty when the person chose it
    unit_code: str
    created: bool


def _checked(password: str | None) -> tuple[str, bool]:
    if password is None:
        return generate_password(16), True
    if len(password) < MIN_PASSWORD:
        raise ConsoleRefusal(f"A password has at least {MIN_PASSWORD} characters.")
    return password, False


async def reset_password(
    db: Database, sign_ins: SignIns, passwords: Passwords, *, login: str, password: str | None
) -> ConsoleCredentials:
    """A new password for ``login`` (generated unless given), no change required at the next sign-in.
    The account is made active again, its locks are lifted, and every token and API key issued before
    stops working."""
    accounts = Accounts(db.pool)
    account = await accounts.get_by_login(login.strip().lower())
    if account is None:
        raise ConsoleRefusal(f"There is no account {login!r}. `warehouse admin create --login {login}` makes one.")
    secret, generated = _checked(password)
    await accounts.set_password(account.id, await passwords.hash_async(secret), change_required=False)
    await accounts.update(account.id, state="active", role=None, limits=None)
    await ApiKeys(db.pool).revoke_all(account.id)
    await sign_ins.forget(account.login)
    await Audit(db.pool).record(
        action="console.reset_password",
        account_id=None,
        unit_id=account.unit_id,
        record_type="account",
        record_id=str(account.id),
        details={"login": account.login},
    )
    return ConsoleCredentials(account.login, secret if generated else "", account.unit_code, created=False)


async def create_admin(db: Database, passwords: Passwords, *, login: str, password: str | None) -> ConsoleCredentials:
    """A new province administrator (the role of the seeded ``admin``) at the province's unit."""
    login = login.strip().lower()
    if not LOGIN.fullmatch(login):
        raise ConsoleRefusal(
            "A login has 2 to 63 characters: lower-case letters without diacritics, digits, '.', '_' or '-'."
        )
    secret, generated = _checked(password)
    provinces = await Units(db.pool).find(level="province", parent_id=None, scope=None)
    if not provinces:
        raise ConsoleRefusal("The province's units are not there yet: run `warehouse seed` first.")
    province = provinces[0]
    account_id = await Accounts(db.pool).create(
        login=login,
        unit_id=province.id,
        role="province_admin",
        password_hash=await passwords.hash_async(secret),
        password_change_required=False,
    )
    if account_id is None:
        raise ConsoleRefusal(
            f"The login {login} is already used; "
            f"`warehouse admin reset-password --login {login}` gives it a new password."
        )
    await Audit(db.pool).record(
        action="console.create_admin",
        account_id=None,
        unit_id=province.id,
        record_type="account",
        record_id=str(account_id),
        details={"login": login},
    )
    return ConsoleCredentials(login, secret if generated else "", province.code, created=True)

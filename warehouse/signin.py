"""Signing in and changing a password: who may, how often, and the token that comes of it.

Wrong passwords lock a login only for the address they came from; each address has a number of
sign-ins a minute; password checks run on a bounded pool. A change or a reset of the password ends every
token issued before it (tokens carry the account's credentials version).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage import Account, Window
from warehouse.context import Services
from warehouse.dossier_rules import LOCAL_TZ
from warehouse.fair_share import reset_seconds
from warehouse.refusals import Busy, Invalid, NotSignedIn, Refusal, TooMany
from warehouse.security import PasswordChecksBusy, issue_token

_BAD_LOGIN = NotSignedIn("bad_credentials", "The login or password is wrong. Check them and try again.")


@dataclass(frozen=True, slots=True)
class SignedIn:
    account: Account
    token: str
    expires_in: int


def _locked(until: datetime, now: datetime) -> Refusal:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    local = until.astimezone(LOCAL_TZ)
    return TooMany(
        "account_locked",
        f"Too many wrong passwords from your address: this login is locked until {local:%H:%M:%S %d/%m/%Y}. "
        f"Try again in {seconds} seconds, or ask your administrator to unlock it.",
        retry_after=seconds,
        extra={"locked_until": until.isoformat()},
    )


def _busy() -> Refusal:
    return Busy(
        "sign_in_busy",
        "Too many people are signing in right now. Wait a few seconds and try again.",
        retry_after=2,
    )


async def _check_address(services: Services, address: str) -> None:
    states = await services.counters.hit(
        [Window(f"signin:addr:{address}", services.settings.login_address_per_minute, 60)]
    )
    if states and states[0].exceeded:
        wait = reset_seconds(states[0])
        raise TooMany(
            "too_many_sign_ins",
            f"Too many sign-in attempts from your address. Wait {wait} seconds and try again.",
            retry_after=wait,
        )


async def sign_in(
    services: Services,
    login: str,
    password: str,
    address: str,
    *,
    seen: Callable[[Account], None] | None = None,
) -> SignedIn:
    """A token for the login and password, from this client address; a Refusal when refused.
    ``seen`` is told the account as soon as the login is known (the audit trail records failed
    sign-ins of an account too)."""
    settings = services.settings
    await _check_address(services, address)
    login = login.strip().lower()
    now = datetime.now(UTC)
    locked_ms = await services.logins.locked_for_ms(login, address)
    if locked_ms:
        raise _locked(now + timedelta(milliseconds=locked_ms), now)
    account = await services.accounts.get_by_login(login)
    if account is not None and seen is not None:
        seen(account)
    try:
        ok = await services.passwords.verify_async(account.password_hash if account else None, password)
    except PasswordChecksBusy:
        raise _busy() from None
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
        raise NotSignedIn("account_disabled", "This account is disabled. Ask your unit's administrator.")
    await services.logins.succeeded(login, address)
    await services.accounts.record_login(account.id)
    if services.passwords.needs_rehash(account.password_hash):
        new_hash = await services.passwords.hash_async(password)
        await services.accounts.set_password(
            account.id, new_hash, change_required=account.password_change_required, end_sign_ins=False
        )
    ttl = settings.token_ttl_seconds
    token = issue_token(settings.secret_key, account.id, ttl, credentials_version=account.credentials_version)
    return SignedIn(account, token, ttl)


async def change_password(services: Services, account: Account, current: str, new: str) -> SignedIn:
    """Set a new password; every earlier token of the account ends, and a fresh one is issued."""
    try:
        right = await services.passwords.verify_async(account.password_hash, current)
    except PasswordChecksBusy:
        raise _busy() from None
    if not right:
        raise Invalid("wrong_current_password", "The current password is wrong.")
    if new == current:
        raise Invalid("password_unchanged", "Choose a new password different from the current one.")
    version = await services.accounts.set_password(
        account.id, await services.passwords.hash_async(new), change_required=False
    )
    services.forget_account(account.id)
    ttl = services.settings.token_ttl_seconds
    token = issue_token(services.settings.secret_key, account.id, ttl, credentials_version=version)
    return SignedIn(account, token, ttl)

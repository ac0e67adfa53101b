"""Accounts: who may log in, for which unit, with which role."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

ROLES = ("province_admin", "unit_admin", "operator", "viewer", "one_stop", "signer")


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    login: str
    unit_id: int
    unit_code: str
    unit_name: str
    role: str
    state: str
    password_hash: str
    password_change_required: bool
    failed_logins: int
    locked_until: datetime | None
    limits: dict[str, Any]
    created_at: datetime
    credentials_version: int

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> Account:
        return cls(**{f.name: r[f.name] for f in fields(cls)})


_SELECT = """
SELECT a.id, a.login, a.unit_id, u.code AS unit_code, u.name AS unit_name, a.role, a.state,
       a.password_hash, a.password_change_required, a.failed_logins, a.locked_until, a.limits, a.created_at,
       a.credentials_version
FROM accounts a JOIN units u ON u.id = a.unit_id
"""


class Accounts:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, account_id: int) -> Account | None:
        r = await self._pool.fetchrow(_SELECT + " WHERE a.id = $1", account_id)
        return Account.from_record(r) if r else None

    async def get_by_login(self, login: str) -> Account | None:
        r = await self._pool.fetchrow(_SELECT + " WHERE a.login = $1", login)
        return Account.from_record(r) if r else None

    async def create(
        self,
        *,
        login: str,
        unit_id: int,
        role: str,
        password_hash: str,
        password_change_required: bool,
        created_by: int | None = None,
    ) -> int | None:
        """Create an account; None when the login is taken."""
        account_id: int | None = await self._pool.fetchval(
            """
            INSERT INTO accounts (login, unit_id, role, password_hash, password_change_required, created_by)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (login) DO NOTHING
            RETURNING id
            """,
            login,
            unit_id,
            role,
            password_hash,
            password_change_required,
            created_by,
        )
        return account_id

    async def list(self, *, unit_ids: list[int] | None) -> list[Account]:
        rows = await self._pool.fetch(
            _SELECT + " WHERE ($1::bigint[] IS NULL OR a.unit_id = ANY($1)) ORDER BY u.code, a.login", unit_ids
        )
        return [Account.from_record(r) for r in rows]

    async def logins_with_prefix(self, prefix: str) -> set[str]:
        rows = await self._pool.fetch("SELECT login FROM accounts WHERE starts_with(login, $1)", prefix)
        return {r["login"] for r in rows}

    async def update(
        self, account_id: int, *, state: str | None, role: str | None, limits: dict[str, Any] | None
    ) -> None:
        await self._pool.execute(
            """
            UPDATE accounts SET state = coalesce($2, state), role = coalesce($3, role),
                limits = coalesce($4, limits), updated_at = now(),
                failed_logins = CASE WHEN $2 = 'active' THEN 0 ELSE failed_logins END,
                locked_until = CASE WHEN $2 = 'active' THEN NULL ELSE locked_until END
            WHERE id = $1
            """,
            account_id,
            state,
            role,
            limits,
        )

    async def record_failed_login(self, account_id: int) -> None:
        """Count a failed sign-in (shown to administrators; locks are per address, see SignIns)."""
        await self._pool.execute("UPDATE accounts SET failed_logins = failed_logins + 1 WHERE id = $1", account_id)

    async def record_login(self, account_id: int) -> None:
        await self._pool.execute(
            "UPDATE accounts SET failed_logins = 0, locked_until = NULL WHERE id = $1 AND failed_logins > 0",
            account_id,
        )

    async def set_password(
        self, account_id: int, password_hash: str, *, change_required: bool, end_sign_ins: bool = True
    ) -> int:
        """Store a new password hash. With ``end_sign_ins`` (a reset or a change, not a rehash) every
        token issued before stops working. Returns the account's credentials version."""
        version: int = await self._pool.fetchval(
            """
            UPDATE accounts SET password_hash = $2, password_change_required = $3, updated_at = now(),
                credentials_version = credentials_version + CASE WHEN $4 THEN 1 ELSE 0 END
            WHERE id = $1 RETURNING credentials_version
            """,
            account_id,
            password_hash,
            change_required,
            end_sign_ins,
        )
        return version

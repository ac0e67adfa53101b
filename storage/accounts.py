"""Accounts: who may log in, for which unit, with which role."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

ROLES = ("province_admin", "unit_admin", "operator", "viewer")


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

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> Account:
        return cls(
            id=r["id"],
            login=r["login"],
            unit_id=r["unit_id"],
            unit_code=r["unit_code"],
            unit_name=r["unit_name"],
            role=r["role"],
            state=r["state"],
            password_hash=r["password_hash"],
            password_change_required=r["password_change_required"],
        )


_SELECT = """
SELECT a.id, a.login, a.unit_id, u.code AS unit_code, u.name AS unit_name, a.role, a.state,
       a.password_hash, a.password_change_required
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
    ) -> int | None:
        """Create an account; None when the login is taken."""
        account_id: int | None = await self._pool.fetchval(
            """
            INSERT INTO accounts (login, unit_id, role, password_hash, password_change_required)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (login) DO NOTHING
            RETURNING id
            """,
            login,
            unit_id,
            role,
            password_hash,
            password_change_required,
        )
        return account_id

    async def set_password(self, account_id: int, password_hash: str, *, change_required: bool) -> None:
        await self._pool.execute(
            """
            UPDATE accounts SET password_hash = $2, password_change_required = $3, updated_at = now()
            WHERE id = $1
            """,
            account_id,
            password_hash,
            change_required,
        )

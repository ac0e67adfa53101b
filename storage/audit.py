"""The audit trail: append-only (the database refuses updates and deletes on it)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from storage.db import Transaction


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    at: datetime
    account_id: int | None
    login: str | None
    unit_id: int | None
    unit_code: str | None
    action: str
    record_type: str | None
    record_id: str | None
    status: int | None
    client_addr: str | None
    request_id: str | None
    details: dict[str, Any]

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> AuditEvent:
        return cls(**{f.name: r[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class AuditFilter:
    record_id: str | None = None
    account_id: int | None = None
    unit_ids: list[int] | None = None
    since: datetime | None = None
    until: datetime | None = None


class Audit:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(
        self,
        *,
        action: str,
        account_id: int | None,
        unit_id: int | None,
        record_type: str | None = None,
        record_id: str | None = None,
        status: int | None = None,
        client_addr: str | None = None,
        request_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        await self._pool.execute(
            """
            INSERT INTO audit_events (account_id, unit_id, action, record_type, record_id, status,
                                      client_addr, request_id, details)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            account_id,
            unit_id,
            action,
            record_type,
            record_id,
            status,
            client_addr,
            request_id,
            details or {},
        )

    async def record_many(self, conn: Transaction, events: list[dict[str, Any]]) -> None:
        """Several events at once, in the caller's transaction (each: action, account_id, unit_id,
        record_type, record_id, details; optional status, client_addr, request_id)."""
        if not events:
            return
        await conn.executemany(
            """
            INSERT INTO audit_events (account_id, unit_id, action, record_type, record_id, status,
                                      client_addr, request_id, details)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            [
                (
                    e["account_id"],
                    e["unit_id"],
                    e["action"],
                    e.get("record_type"),
                    e.get("record_id"),
                    e.get("status"),
                    e.get("client_addr"),
                    e.get("request_id"),
                    e.get("details") or {},
                )
                for e in events
            ],
        )

    async def list(
        self, flt: AuditFilter, *, scope: list[int] | None, limit: int, before_id: int | None
    ) -> list[AuditEvent]:
        rows = await self._pool.fetch(
            """
            SELECT e.id, e.at, e.account_id, a.login, e.unit_id, u.code AS unit_code, e.action, e.record_type,
                   e.record_id, e.status, e.client_addr, e.request_id, e.details
            FROM audit_events e
            LEFT JOIN accounts a ON a.id = e.account_id
            LEFT JOIN units u ON u.id = e.unit_id
            WHERE ($1::bigint[] IS NULL OR e.unit_id = ANY($1))
              AND ($2::text IS NULL OR e.record_id = $2)
              AND ($3::bigint IS NULL OR e.account_id = $3)
              AND ($4::bigint[] IS NULL OR e.unit_id = ANY($4))
              AND ($5::timestamptz IS NULL OR e.at >= $5)
              AND ($6::timestamptz IS NULL OR e.at < $6)
              AND ($7::bigint IS NULL OR e.id < $7)
            ORDER BY e.id DESC
            LIMIT $8
            """,
            scope,
            flt.record_id,
            flt.account_id,
            flt.unit_ids,
            flt.since,
            flt.until,
            before_id,
            limit,
        )
        return [AuditEvent.from_record(r) for r in rows]

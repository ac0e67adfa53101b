"""The Postgres pool and the migrations that shape it."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, TypeAlias
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every process of the warehouse.
_MIGRATION_LOCK = 0x6B686F5F736F  # "kho_so"


# A pooled connection inside an open transaction, as storage's methods take it.
Transaction: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"


class Database:
    """One asyncpg pool for the process. Repositories borrow connections from it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 2, max_size: int = 20) -> Database:
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            reset=_reset_connection,
            command_timeout=60,
            # A restarted server leaves dead connections in the pool; recycle idle ones.
            max_inactive_connection_lifetime=60,
            # JIT compiling a search's plan took 0.5 s of a 0.9 s query at ten million dossiers; the
            # warehouse's queries are short and many, where JIT only costs.
            server_settings={"jit": "off"},
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """An open transaction, to hand to storage's own methods (the use cases run no SQL on it)."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1", timeout=2)


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Make a released connection reusable without the default reset query's round trip.

    The warehouse keeps no session state (no SET, LISTEN, cursors or session advisory locks on pooled
    connections), so only an unfinished transaction needs undoing.
    """
    try:
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        conn.terminate()  # broken (the server restarted mid-query): the pool opens a new one


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


def _admin_url(url: str) -> tuple[str, str]:
    """The URL of the server's maintenance database, and the name of the configured one."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "postgres"
    return urlunsplit(parts._replace(path="/postgres")), name


async def ensure_database(url: str) -> bool:
    """Create the configured database when the server lacks it. True when it was created."""
    admin_url, name = _admin_url(url)
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            # Identifiers cannot be bound as parameters; quote it the way Postgres does.
            quoted = await conn.fetchval("SELECT quote_ident($1)", name)
            await conn.execute(f"CREATE DATABASE {quoted}")
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            # Another process created it a moment ago.
            return False
        return True
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    """Drop the configured database (used by the test suite for a clean start)."""
    admin_url, name = _admin_url(url)
    conn = await asyncpg.connect(admin_url)
    try:
        quoted = await conn.fetchval("SELECT quote_ident($1)", name)
        await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await conn.close()


async def holds_records(url: str) -> bool:
    """Whether the database exists and holds the warehouse's tables."""
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        return False
    try:
        found: bool = await conn.fetchval("SELECT to_regclass('public.dossiers') IS NOT NULL")
        return found
    finally:
        await conn.close()


async def grant_app_role(conn: Any, app_url: str) -> None:
    """The API's and workers' role: it logs in, reads and writes the warehouse's tables, may only add
    to and read the audit trail, and owns nothing, so it cannot drop triggers, change tables or turn
    off the audit trail's protection (``session_replication_role`` needs a superuser). Created when
    missing (the owner needs CREATEROLE for that); the grants are renewed at every migration."""
    parts = urlsplit(app_url)
    user = unquote(parts.username or "")
    password = unquote(parts.password) if parts.password else None
    owner = await conn.fetchval("SELECT current_user")
    if not user or user == owner:
        log.warning("the API and workers connect as the owner %r: give them a role of their own", owner)
        return
    role = await conn.fetchval("SELECT quote_ident($1)", user)
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", user)
    secret = f" PASSWORD {await conn.fetchval('SELECT quote_literal($1)', password)}" if password else ""
    if not exists:
        # Another database's migration may make it a moment ago (roles belong to the whole server).
        with contextlib.suppress(asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE{secret}")
    elif secret:
        await conn.execute(f"ALTER ROLE {role}{secret}")
    database = await conn.fetchval("SELECT quote_ident(current_database())")
    for statement in (
        f"GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role}",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_events FROM {role}",
        f"REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM {role}",
        # a result code and a signed copy, once given, are kept (a code is withdrawn, never deleted)
        f"REVOKE DELETE, TRUNCATE ON result_codes, signed_copies FROM {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
    ):
        await conn.execute(statement)


def migration_files() -> list[tuple[str, str]]:
    """(name, sql) of every migration, in the order they apply."""
    folder = resources.files("storage").joinpath("migrations")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(n, folder.joinpath(n).read_text(encoding="utf-8")) for n in names]


async def migrate(url: str, *, app_url: str | None = None) -> list[str]:
    """Apply the migrations not applied yet, each once and in its own transaction, then give the
    role of ``app_url`` (the API's and workers') what it needs and nothing more (``grant_app_role``).

    Safe when several processes start at once: they queue on an advisory lock, and the later ones
    find nothing left to do.
    """
    await ensure_database(url)
    conn: Any = await asyncpg.connect(url)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
            for name, sql in migration_files():
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                log.info("applied migration %s", name)
                applied_now.append(name)
            if app_url is not None:
                await grant_app_role(conn, app_url)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    finally:
        await conn.close()
    return applied_now

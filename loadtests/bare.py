"""The floor for a request's CPU: a bare Litestar handler doing one indexed asyncpg query.

Served by the same server (granian, ASGI, uvloop, one process) as the warehouse, on the benchmark's
database; ``GET /units/{code}`` reads one row of the units table by its primary key and answers it as
JSON. Nothing else: no sign-in, no limits, no metrics, no audit. ``python -m loadtests.bench_api``
measures it beside the warehouse in the same run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, get
from litestar.exceptions import NotFoundException


def create_app() -> Litestar:
    pool: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool["db"] = await asyncpg.create_pool(os.environ["BARE_DATABASE_URL"], min_size=2, max_size=10)
        try:
            yield
        finally:
            await pool["db"].close()

    @get("/units/{code:str}")
    async def unit(code: str) -> dict[str, Any]:
        row = await pool["db"].fetchrow("SELECT code, name, level FROM units WHERE code = $1", code)
        if row is None:
            raise NotFoundException()
        return dict(row)

    @get("/health/live")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(route_handlers=[unit, live], lifespan=[lifespan], openapi_config=None)

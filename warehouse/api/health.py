"""Liveness and readiness for probes and load balancers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Controller, Response, get

from warehouse.api.deps import Deps

CHECK_TIMEOUT_SECONDS = 2.0


async def _check(probe: Callable[[], Awaitable[Any]]) -> str | None:
    try:
        await asyncio.wait_for(probe(), timeout=CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    return None


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]
    include_in_schema = True

    @get("/live", operation_id="health_live", security=[])
    async def live(self) -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @get("/ready", operation_id="health_ready", security=[])
    async def ready(self, services: Deps) -> Response[dict[str, Any]]:
        """200 when Postgres and Redis answer and the object store takes a write; 503 naming the ones
        that do not."""
        names = ("postgres", "redis", "object_store")
        results = await asyncio.gather(
            _check(services.db.ping), _check(services.queue.ping), _check(services.objects.check_writable)
        )
        checks = {n: ("ok" if err is None else f"failing: {err}") for n, err in zip(names, results, strict=True)}
        failing = [n for n, err in zip(names, results, strict=True) if err is not None]
        if failing:
            return Response(
                {"status": "unavailable", "failing": failing, "checks": checks},
                status_code=503,
                headers={"Retry-After": "10"},
            )
        return Response({"status": "ok", "checks": checks})

"""The inspection pipeline for administrators: what waits where, whether workers are alive, what failed."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.params import FromQuery
from redis.exceptions import RedisError

from storage import OCR_QUEUE_NAME, QUEUE_NAME
from warehouse.api.deps import Caller, Deps
from warehouse.api.schemas import FileOut
from warehouse.auth import admins_only

# arq writes "<queue>:health-check" with a short expiry each time a worker beats.
HEALTH_SUFFIX = ":health-check"


class PipelineController(Controller):
    path = "/api/v1/pipeline"
    tags = ["pipeline"]

    @get("", operation_id="pipeline_status", guards=[admins_only])
    async def status(self, request: Caller, services: Deps) -> dict[str, Any]:
        """Files per stage, jobs waiting per queue, and each kind of worker's last heartbeat."""
        stages = await services.files.stage_counts()
        workers: dict[str, Any] = {}
        queues: dict[str, int] | None = None
        try:
            queues = await services.queue.depths()
            for kind, name in (("inspection", QUEUE_NAME), ("ocr", OCR_QUEUE_NAME)):
                beat = await services.queue.redis.get(name + HEALTH_SUFFIX)
                workers[kind] = {"alive": beat is not None, "heartbeat": beat.decode() if beat else None}
        except (RedisError, OSError) as exc:
            workers = {"error": f"the queue is unreachable: {exc}"}
        return {"stages": stages, "queues": queues, "workers": workers}

    @get("/failed", operation_id="pipeline_failed", guards=[admins_only])
    async def failed(
        self,
        request: Caller,
        services: Deps,
        limit: FromQuery[int] = 50,
    ) -> dict[str, Any]:
        """The dead-letter list: files whose inspection gave up after transient faults, newest first.
        Send one back with `POST /api/v1/files/{id}/reprocess`."""
        limit = max(1, min(limit, services.settings.page_size_max))
        files = await services.files.failed(limit=limit, scope=request.user.read_scope)
        return {"items": [FileOut.of(f) for f in files]}

"""The job-queue contract: job names and how to enqueue them.

arq sits behind this module alone, so the queue can be replaced here without touching callers.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from arq.connections import ArqRedis, RedisSettings
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from redis.asyncio import ConnectionPool
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

QUEUE_NAME = "warehouse:inspect"
INSPECT_FILE = "inspect_file"
# OCR has a queue of its own, served by its own workers, so inspections never wait behind it.
OCR_QUEUE_NAME = "warehouse:ocr"
OCR_FILE = "ocr_file"


def inspection_job_id(file_id: UUID | str) -> str:
    """One job id per file, so a file is never queued twice at once."""
    return f"inspect:{file_id}"


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_timeout = 2
    return settings


class Queue:
    """Enqueues jobs by name. Connects lazily, so the API starts and accepts uploads with Redis down."""

    def __init__(self, redis: ArqRedis) -> None:
        self._redis = redis

    @classmethod
    def from_url(cls, url: str) -> Queue:
        pool = ConnectionPool.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        return cls(ArqRedis(pool, default_queue_name=QUEUE_NAME))

    @property
    def redis(self) -> ArqRedis:
        """The connection pool, shared with the other Redis users of the process (rate counters)."""
        return self._redis

    async def close(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> None:
        await self._redis.ping()

    async def enqueue_inspection(self, file_id: UUID | str) -> bool:
        """Queue the inspection of a file. False when Redis is unreachable: the sweeper retries later."""
        return await self._enqueue(INSPECT_FILE, str(file_id), job_id=inspection_job_id(file_id))

    async def enqueue_ocr(self, file_id: UUID | str) -> bool:
        """Queue the OCR of a file's image-only pages. False when Redis is unreachable."""
        return await self._enqueue(OCR_FILE, str(file_id), job_id=f"ocr:{file_id}", queue=OCR_QUEUE_NAME)

    async def forget_inspections(self, file_ids: list[UUID]) -> bool:
        """Remove the inspection jobs of these files from the queue, running or not, so they can be
        queued again (a job lost with its worker). False when Redis is unreachable."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for file_id in file_ids:
                    job_id = inspection_job_id(file_id)
                    pipe.delete(in_progress_key_prefix + job_id, job_key_prefix + job_id, retry_key_prefix + job_id)
                    pipe.zrem(QUEUE_NAME, job_id)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("could not forget %d lost inspection jobs: %s", len(file_ids), exc)
            return False
        return True

    async def depths(self) -> dict[str, int]:
        """Jobs waiting per queue."""
        return {name: int(await self._redis.zcard(name)) for name in (QUEUE_NAME, OCR_QUEUE_NAME)}

    async def _enqueue(self, name: str, *args: Any, job_id: str, queue: str = QUEUE_NAME) -> bool:
        try:
            await self._redis.enqueue_job(name, *args, _job_id=job_id, _queue_name=queue)
        except (RedisError, OSError) as exc:
            log.warning("could not enqueue %s %s: %s", name, job_id, exc)
            return False
        return True

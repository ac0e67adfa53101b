"""Listening for changes other processes make, so caches can trust what they hold.

One connection per process LISTENs; while it is up, a cache may serve from memory and drops an entry
the moment its notification arrives. When the connection is lost the caches are emptied and bypassed
until it is back, so a missed notification can never keep a stale entry alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)


class ChangeWatch:
    def __init__(self, database_url: str, channels: dict[str, Callable[[str], None]], on_lost: Callable[[], None]):
        self._url = database_url
        self._channels = channels
        self._on_lost = on_lost
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def live(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_listening())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.live:
            await self._conn.close()

    async def _keep_listening(self) -> None:
        while True:
            if not self.live:
                try:
                    conn = await asyncpg.connect(self._url)
                    for channel, handler in self._channels.items():
                        await conn.add_listener(channel, lambda _c, _p, _ch, payload, h=handler: h(payload))
                    conn.add_termination_listener(lambda _c: self._on_lost())
                    self._on_lost()  # whatever changed while nobody listened is forgotten
                    self._conn = conn
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("cannot listen for changes (%s); caches are bypassed", exc)
                    self._conn = None
            await asyncio.sleep(1)

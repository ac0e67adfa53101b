"""The worker's side of the inspection outbox: drain it whenever a file is recorded.

A Postgres notification (``storage.outbox.CHANNEL``) wakes the loop at once, and a slow poll catches
anything a notification missed (the listening connection lost, a notification sent while it was down).
"""

from __future__ import annotations

import asyncio
import contextlib

from storage import Database, Queue, drain_safely
from storage.outbox import CHANNEL
from storage.watch import ChangeWatch


async def run_drainer(
    db: Database, database_url: str, queue: Queue, *, poll_seconds: float = 5.0, gather_seconds: float = 0.0
) -> None:
    """Drain on every notification, and every ``poll_seconds`` regardless. Runs until cancelled.

    After a notification it waits ``gather_seconds`` for others, so files recorded together (a batch
    of verdicts, a burst of uploads) are queued in one round rather than one round each.
    """
    wake = asyncio.Event()
    watch = ChangeWatch(database_url, {CHANNEL: lambda _payload: wake.set()}, wake.set)
    watch.start()
    try:
        while True:
            await drain_safely(db, queue)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=poll_seconds)
            wake.clear()
            if gather_seconds:
                await asyncio.sleep(gather_seconds)
                wake.clear()
    finally:
        await watch.stop()

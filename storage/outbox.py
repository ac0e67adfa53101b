"""The inspection outbox: recorded files whose inspection job is not queued yet.

The API only writes the file's row (in the same statement that records it); a worker drains the
outbox into the job queue (its loop is ``workers.outbox``), woken by a notification on ``CHANNEL``.
"""

from __future__ import annotations

import logging

import asyncpg

from storage.db import Database
from storage.queue import Queue

log = logging.getLogger(__name__)

CHANNEL = "file_recorded"


async def drain(db: Database, queue: Queue, *, limit: int = 200) -> int:
    """Queue the inspection, or the OCR, of files waiting in the outbox. Returns how many were queued.

    Each outbox is claimed and marked in one statement (SKIP LOCKED, so several workers drain side by
    side without doubling work), then its jobs are queued in order. When Redis refuses, the files not
    queued are unmarked and wait for the next round; a worker that dies between the two leaves them
    marked, and the sweeper (``requeue_lost``) returns them after ``stuck_after_seconds``.
    """
    queued = 0
    for claim, column, enqueue in (
        (
            """
            UPDATE files SET queued_at = clock_timestamp()
            WHERE id IN (SELECT id FROM files WHERE state = 'processing' AND queued_at IS NULL
                         AND stage IN ('queued', 'inspecting') ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING id, created_at AS waiting_since
            """,
            "queued_at",
            queue.enqueue_inspection,
        ),
        (
            """
            UPDATE files SET ocr_queued_at = clock_timestamp()
            WHERE id IN (SELECT id FROM files WHERE stage = 'ocr' AND ocr_queued_at IS NULL
                         ORDER BY updated_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING id, updated_at AS waiting_since
            """,
            "ocr_queued_at",
            queue.enqueue_ocr,
        ),
    ):
        rows = sorted(await db.pool.fetch(claim, limit), key=lambda r: r["waiting_since"])
        ids = [r["id"] for r in rows]
        for n, file_id in enumerate(ids):
            if not await enqueue(file_id):
                await db.pool.execute(f"UPDATE files SET {column} = NULL WHERE id = ANY($1::uuid[])", ids[n:])
                raise _QueueDown
        queued += len(ids)
    return queued


class _QueueDown(Exception):
    pass


async def drain_safely(db: Database, queue: Queue, *, limit: int = 200) -> int:
    """``drain`` until the outboxes hold less than a round; what could not be queued is logged and waits."""
    total = 0
    try:
        while True:
            n = await drain(db, queue, limit=limit)
            total += n
            if n < limit:
                break
    except _QueueDown:
        log.warning("the queue is unreachable; %d files queued, the rest wait in the outbox", total)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("outbox drain interrupted: %s", exc)
    return total


async def requeue_lost(db: Database, queue: Queue, *, older_than_seconds: int, max_attempts: int = 5) -> int:
    """Put back into the outbox files queued long ago and still not inspected (their job was lost);
    a file whose inspection was started ``max_attempts`` times without an end is parked as 'failed'
    (the dead-letter list) with the reason, so nothing stays 'inspecting' for ever.

    A job lost with a killed worker still holds its id in the queue (marked as running for as long as
    the longest job a worker runs may take: hours, for the fixity check), so queueing it again would be
    refused as a duplicate; the lost jobs are first forgotten from the ``queue``, then their files go
    back to the outbox. A job that was only slow and still ends is harmless: the file's verdict is
    recorded once."""
    await db.pool.execute(
        """
        UPDATE files SET stage = 'failed',
            last_error = coalesce(last_error, 'inspection did not finish after ' || attempts || ' tries '
                                  '(the worker died or was killed each time)'),
            stage_times = stage_times || jsonb_build_object('failed', clock_timestamp()),
            updated_at = clock_timestamp()
        WHERE state = 'processing' AND stage IN ('queued', 'inspecting') AND attempts >= $2
          AND queued_at < clock_timestamp() - make_interval(secs => $1)
        """,
        older_than_seconds,
        max_attempts,
    )
    lost = [
        r["id"]
        for r in await db.pool.fetch(
            """
            SELECT id FROM files WHERE state = 'processing' AND stage IN ('queued', 'inspecting')
              AND queued_at < clock_timestamp() - make_interval(secs => $1)
            """,
            older_than_seconds,
        )
    ]
    if lost:
        await queue.forget_inspections(lost)
    status: str = await db.pool.execute(
        """
        UPDATE files SET queued_at = NULL
        WHERE id = ANY($2::uuid[]) AND state = 'processing' AND stage IN ('queued', 'inspecting')
          AND queued_at < clock_timestamp() - make_interval(secs => $1)
        """,
        older_than_seconds,
        lost,
    )
    # OCR waits behind a backlog that can last hours at peak: queue its job again after a longer
    # while (the job id keeps a job that is still waiting from being queued twice).
    ocr_status: str = await db.pool.execute(
        """
        UPDATE files SET ocr_queued_at = NULL
        WHERE stage = 'ocr' AND ocr_queued_at < clock_timestamp() - make_interval(secs => $1)
        """,
        older_than_seconds * 12,
    )
    return int(status.split()[-1]) + int(ocr_status.split()[-1])

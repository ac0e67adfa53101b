"""Gauges the API adds to ``/metrics`` beside request counts and latencies: how many files wait at each
pipeline stage and how many jobs wait in each queue, read every ``WAREHOUSE_METRICS_REFRESH_SECONDS``."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Gauge

from storage import Files, Queue

log = logging.getLogger(__name__)

PIPELINE_FILES = Gauge("warehouse_pipeline_files", "Files still in the pipeline, by stage", ["stage"])
QUEUE_JOBS = Gauge("warehouse_queue_jobs", "Jobs waiting in each queue", ["queue"])
STAGES = ("queued", "inspecting", "ocr", "failed")


async def refresh(files: Files, queue: Queue) -> None:
    counts = await files.stage_counts()
    for stage in STAGES:
        PIPELINE_FILES.labels(stage).set(counts.get(stage, 0))
    for name, depth in (await queue.depths()).items():
        QUEUE_JOBS.labels(name).set(depth)


async def keep_fresh(files: Files, queue: Queue, every: float) -> None:
    """Refresh the gauges until cancelled; a failed read leaves the last values and is logged."""
    while True:
        try:
            await refresh(files, queue)
        except Exception as exc:  # Postgres or Redis away: /health/ready says so; keep trying
            log.warning("pipeline gauges not refreshed: %s", exc)
        await asyncio.sleep(every)

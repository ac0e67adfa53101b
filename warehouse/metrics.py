"""Gauges the API adds to ``/metrics`` beside request counts and latencies: how many files wait at each
pipeline stage and how many jobs wait in each queue, read at a scrape when older than
``WAREHOUSE_METRICS_REFRESH_SECONDS``."""

from __future__ import annotations

import logging
import time

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


_last_refresh = -1e18


def mark_stale() -> None:
    global _last_refresh
    _last_refresh = -1e18


async def refresh_if_stale(files: Files, queue: Queue, every: float) -> None:
    """Refresh the gauges when older than ``every`` seconds; a failed read leaves the last values (the
    scrape still answers, and /health/ready says what is down)."""
    global _last_refresh
    now = time.monotonic()
    if now - _last_refresh < every:
        return
    _last_refresh = now
    try:
        await refresh(files, queue)
    except Exception as exc:
        log.warning("pipeline gauges not refreshed: %s", exc)

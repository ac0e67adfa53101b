"""The arq worker: which jobs it runs, with what limits, and the clients it shares between them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import uvloop
from arq.cron import cron
from arq.worker import Worker, func

from storage import (
    INSPECT_FILE,
    OCR_FILE,
    OCR_QUEUE_NAME,
    QUEUE_NAME,
    Database,
    Files,
    Queue,
    Settings,
    app_database_url,
    get_settings,
    object_store,
    redis_settings,
)
from storage.legal import Legal
from workers import metrics
from workers.deliveries import run_dispatcher
from workers.housekeeping import check_fixity, expire_uploads, lock_originals, sweep_orphans
from workers.inspection import batches, inspect_file, requeue_stuck
from workers.ocr import ocr_file, tesseract_languages
from workers.outbox import run_drainer
from workers.sandbox import Sandbox
from workers.standard import Standard

log = logging.getLogger(__name__)


def build_worker(
    settings: Settings | None = None, *, ocr: bool = False, drain_outbox: bool = True, **overrides: Any
) -> Worker:
    """An inspection worker, or with ``ocr`` an OCR worker; ``overrides`` go to arq (tests pass ``burst``).

    ``drain_outbox`` runs the outbox drainer beside the jobs (every worker may: they share the work).
    """
    settings = settings or get_settings()
    standard = Standard.from_settings(settings)
    if ocr:
        missing = set(settings.ocr_languages.split("+")) - tesseract_languages()
        if missing:
            raise SystemExit(
                f"OCR needs Tesseract with the languages {sorted(missing)}; "
                "install tesseract-ocr and tesseract-ocr-vie (make install does) or set WAREHOUSE_OCR_ENABLED=false"
            )

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["settings"] = settings
        ctx["db"] = await Database.connect(
            app_database_url(settings), min_size=1, max_size=max(4, settings.worker_max_jobs)
        )
        ctx["files"] = Files(ctx["db"].pool)
        ctx["objects"] = object_store(settings)
        ctx["queue"] = Queue.from_url(settings.redis_url)
        ctx["standard"] = standard
        if ocr:
            ctx["sandbox"] = Sandbox(
                workers=settings.ocr_max_jobs,
                memory_mb=settings.ocr_memory_mb,
                max_tasks=settings.inspect_child_max_files,
                niceness=settings.ocr_niceness,
                idle=settings.ocr_idle,
                preload=("workers.pdfcheck", "pypdf", "ocrmypdf"),
            )
        else:
            ctx["sandbox"] = Sandbox(
                workers=settings.inspect_children,
                memory_mb=settings.inspect_memory_mb,
                max_tasks=settings.inspect_child_max_files,
                preload=("workers.inspection", "pypdf"),
            )
            ctx.update(batches(ctx["files"], Legal(ctx["db"].pool), settings))
        if drain_outbox:
            ctx["drainer"] = asyncio.create_task(
                run_drainer(
                    ctx["db"],
                    app_database_url(settings),
                    ctx["queue"],
                    gather_seconds=settings.inspect_batch_ms / 1000,
                )
            )
            if not ocr:  # the change feed's sequencer and the push deliveries
                ctx["dispatcher"] = asyncio.create_task(run_dispatcher(ctx["db"], settings, ctx["objects"]))

    async def shutdown(ctx: dict[str, Any]) -> None:
        for name in ("claims", "verdicts"):
            if name in ctx and ctx[name].calls:
                log.info("%s of %d inspections sent in %d statements", name, ctx[name].items, ctx[name].calls)
        for name in ("drainer", "dispatcher"):
            if name in ctx:
                ctx[name].cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ctx[name]
        if "sandbox" in ctx:
            ctx["sandbox"].close()
        if "queue" in ctx:
            await ctx["queue"].close()
        if "objects" in ctx:
            await ctx["objects"].aclose()
        if "db" in ctx:
            await ctx["db"].close()

    if ocr:
        job = func(ocr_file, name=OCR_FILE, timeout=None, max_tries=settings.worker_job_tries)
        queue_name, max_jobs, cron_jobs = OCR_QUEUE_NAME, settings.ocr_max_jobs, []
        # On SIGTERM an OCR job is given a minute, then abandoned: its job stays queued and runs again.
        completion_wait = 60
    else:
        job = func(
            inspect_file,
            name=INSPECT_FILE,
            # the child has its own limits; this one only catches a job stuck elsewhere
            timeout=settings.inspect_fetch_timeout_seconds + settings.inspect_timeout_seconds + 120,
            max_tries=settings.worker_job_tries,
        )
        queue_name, max_jobs = QUEUE_NAME, settings.worker_max_jobs
        cron_jobs = [
            # every 15 s: a job lost with a killed worker comes back within stuck_after_seconds + 15 s
            cron(requeue_stuck, minute=set(range(60)), second={0, 15, 30, 45}, run_at_startup=True, unique=True),
            cron(lock_originals, minute=set(range(60)), second={30}, unique=True),
            cron(expire_uploads, minute={7}, unique=True),
            cron(sweep_orphans, minute={37}, unique=True),
            cron(check_fixity, hour={settings.fixity_hour}, minute={17}, unique=True, timeout=6 * 3600),
        ]
        # On SIGTERM, finish the current inspections (up to this long) before stopping.
        completion_wait = int(settings.inspect_fetch_timeout_seconds + settings.inspect_timeout_seconds) + 30
    options: dict[str, Any] = {
        "functions": [job],
        "cron_jobs": cron_jobs,
        "queue_name": queue_name,
        "redis_settings": redis_settings(settings.redis_url),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": max_jobs,
        # arq reads at most max_jobs per poll: with 2 jobs every 0.5 s a worker could not start more than
        # 4 inspections a second, and the communes' busy hour makes about 4.5 files a second.
        "poll_delay": settings.worker_poll_seconds,
        # Results are in Postgres; keeping none lets a lost job's id be queued again at once.
        "keep_result": 0,
        # Each worker writes a heartbeat to Redis every interval: `warehouse worker --check` reads it.
        "health_check_interval": timedelta(seconds=HEALTH_CHECK_SECONDS),
        "job_completion_wait": completion_wait,
    }
    options.update(overrides)
    return Worker(**options)


HEALTH_CHECK_SECONDS = 30


class _QuietSweeps(logging.Filter):
    """Drops the job queue's lines for what runs every few seconds: the start and end of the frequent
    sweeps (most find nothing; what they do, they log themselves) and the heartbeat it records."""

    FREQUENT = ("cron:requeue_stuck", "cron:lock_originals", "recording health")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(name in message for name in self.FREQUENT)


def run(*, ocr: bool = False) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("arq.worker").addFilter(_QuietSweeps())
    settings = get_settings()
    metrics.serve(settings.worker_metrics_port, settings.worker_metrics_host)
    # The worker's loop is uvloop, as the API's is: most of its own work is small reads and writes to
    # Postgres, Redis and the children's pipes, which uvloop does in C.
    asyncio.set_event_loop(uvloop.new_event_loop())
    build_worker(settings, ocr=ocr).run()

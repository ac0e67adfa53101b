"""The inspection job: a limited child fetches a file's bytes and reads them; the job judges and records."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any
from uuid import UUID

from arq import Retry

from storage import (
    File,
    Files,
    Inspection,
    ObjectNotFound,
    ObjectStoreUnavailable,
    ObjectTooLarge,
    Settings,
    Verdict,
    drain_safely,
    fetch_signed,
    requeue_lost,
)
from storage.inspection import InspectionDetails, OcrOutcome
from storage.legal import FileFacts, Legal, default_policy
from storage.objects import ObjectStore
from workers.batching import Batch
from workers.metrics import record_verdict, timed
from workers.pdfcheck import MIN_TEXT_CHARS_PER_PAGE, Report, inspect_pdf
from workers.sandbox import Sandbox
from workers.standard import judge, rejection

log = logging.getLogger(__name__)


def pages_for_ocr(result: Inspection) -> list[int]:
    """Pages without a text layer that are not blank: the ones OCR can make findable."""
    if result.state != "ready":
        return []
    blank = {p for f in result.details.findings if f.code == "page_blank" for p in f.pages}
    return [
        f.page
        for f in result.details.page_facts
        if f.text_chars < MIN_TEXT_CHARS_PER_PAGE and f.page not in blank and not f.unreadable
    ]


def blank_check_here(settings: Settings) -> bool:
    """Whether inspection decodes image-only pages to find blank ones.

    Decoding the pixels is most of the cost of reading a scan, and the OCR stage decodes those pages
    anyway: with OCR on, blank pages are found there (and not OCR'd) unless a blank page rejects the
    file, when the verdict needs it at once.
    """
    return not settings.ocr_enabled or "page_blank" in settings.inspect_reject


class _OutOfTime(BaseException):
    """Raised in a child by its alarm when reading a file runs past the limit (not an ``Exception``, so
    no parser's error handling swallows it)."""


def _out_of_time(signum: int, frame: object) -> None:
    raise _OutOfTime


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raise _OutOfTime in this (main) thread after ``seconds``, unless the block ends first."""
    previous = signal.signal(signal.SIGALRM, _out_of_time)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def read_stored(url: str, fetch_seconds: float, max_bytes: int, limit_seconds: float, *args: Any) -> tuple[str, Any]:
    """In a limited child: fetch the file from the store, then read it (``inspect_pdf(data, *args)``).

    The bytes go from the store to the child and nowhere else. The fetch gets ``fetch_seconds`` and
    reading gets ``limit_seconds`` of its own after it, so a slow store is a transient fault rather
    than a rejected file.
    Returns ``("report", report)``, or ``(fault, detail)`` with fault ``missing``, ``too_large``,
    ``unavailable`` or ``timeout``.
    """
    try:
        with _alarm(fetch_seconds):
            data = fetch_signed(url, read_timeout_seconds=fetch_seconds, max_bytes=max_bytes)
    except _OutOfTime:
        return "unavailable", f"fetching the file took longer than {fetch_seconds:g}s"
    except ObjectNotFound as exc:
        return "missing", str(exc)
    except ObjectTooLarge as exc:
        return "too_large", str(exc)
    except ObjectStoreUnavailable as exc:
        return "unavailable", str(exc)
    try:
        with _alarm(limit_seconds):
            report = inspect_pdf(data, *args)
    except _OutOfTime:
        return "timeout", f"no answer within {limit_seconds:g}s"
    return "report", report


def batches(files: Files, legal: Legal, settings: Settings) -> dict[str, Batch[Any, Any]]:
    """The claims and the verdicts of the jobs in flight, each sent to Postgres as one statement per
    batch (``WAREHOUSE_INSPECT_BATCH_FILES`` at most, gathered for ``WAREHOUSE_INSPECT_BATCH_MS``)."""

    async def claim(ids: list[UUID]) -> list[tuple[File | None, FileFacts | None]]:
        started = await files.start_inspections(ids)
        facts = await legal.files_facts(list(started)) if started else {}
        return [(started.get(i), facts.get(i)) for i in ids]

    size, wait = settings.inspect_batch_files, settings.inspect_batch_ms / 1000
    return {
        "claims": Batch(claim, size=size, wait_seconds=wait),
        "verdicts": Batch(files.record_inspections, size=size, wait_seconds=wait),
    }


@timed("inspect_file")
async def inspect_file(ctx: dict[str, Any], file_id: str) -> str:
    """Inspect one file. Idempotent: a file already inspected (or deleted) is left as it is."""
    settings: Settings = ctx["settings"]
    files: Files = ctx["files"]
    objects: ObjectStore = ctx["objects"]
    f, facts = await ctx["claims"](UUID(file_id))
    if f is None:  # already inspected, deleted, or parked as failed
        return "skipped: not waiting for inspection"
    if f.attempts > settings.worker_job_tries + 1:  # started again and again, never ended (a dying worker)
        await files.record_error(f.id, f"inspection did not finish after {f.attempts - 1} tries", give_up=True)
        return "failed: too many tries"
    sandbox: Sandbox = ctx["sandbox"]
    outcome = await sandbox.run(
        read_stored,
        objects.signed_get(f.object_key),
        settings.inspect_fetch_timeout_seconds,
        settings.max_file_bytes,
        settings.inspect_timeout_seconds,
        settings.inspect_max_pages,
        settings.inspect_text_chars,
        settings.inspect_max_stream_mb * 1024 * 1024,
        str(settings.signature_trust_roots) if settings.signature_trust_roots else None,
        blank_check_here(settings),
        str(settings.signature_crl) if settings.signature_crl else None,
        # the child keeps both limits itself; this one catches a child stuck where its alarm cannot reach
        limit_seconds=settings.inspect_fetch_timeout_seconds + settings.inspect_timeout_seconds + 5,
    )
    # The child's own answer, or the sandbox's: "timeout" (killed past both limits) or "crashed".
    fault: str
    value: Any
    fault, value = outcome.value if outcome.status == "ok" else (outcome.status, outcome.detail)
    if fault == "unavailable":
        # Transient: try again later with backoff. After the last try the file is parked as
        # 'failed' (the dead-letter list) for an admin to send back once the store is healthy.
        give_up = f.attempts >= settings.worker_job_tries
        await files.record_error(f.id, f"object store unavailable: {value}", give_up=give_up)
        if give_up:
            return "failed: object store unavailable"
        raise Retry(defer=min(300, 5 * 2**f.attempts))
    try:
        return await _conclude(ctx, f, facts, fault, value)
    except Exception as exc:
        # A fault of ours after the file was read (a report the verdict cannot take, a value Postgres
        # refuses): said in the file's record, tried again a bounded number of times, then parked as
        # 'failed' in the dead-letter list with the reason, never left 'inspecting'.
        log.exception("file %s: inspection could not be recorded", file_id)
        give_up = f.attempts >= settings.worker_job_tries
        await files.record_error(f.id, f"inspection failed: {type(exc).__name__}: {exc}", give_up=give_up)
        if give_up:
            return f"failed: {type(exc).__name__}"
        raise Retry(defer=min(300, 5 * 2**f.attempts)) from exc


async def _conclude(ctx: dict[str, Any], f: File, facts: FileFacts | None, fault: str, value: Any) -> str:
    """The verdict on what the child answered, recorded."""
    settings: Settings = ctx["settings"]
    legal = Legal(ctx["db"].pool)
    if fault == "report":
        policy = facts.policy(f.kind, settings) if facts is not None else default_policy(settings, f.kind)
        result = judge(Report(**value), ctx["standard"], signature_policy=policy)
    elif fault == "missing":
        result = rejection("content_missing")
    elif fault == "timeout":
        result = rejection("pdf_inspection_timeout", InspectionDetails(problem_detail=value))
    elif fault == "too_large":
        result = rejection(
            "pdf_too_complex", InspectionDetails(problem_detail=f"larger than the largest file accepted: {value}")
        )
    else:  # crashed: out of memory, or the parser died
        result = rejection("pdf_too_complex", InspectionDetails(problem_detail=value))
    ocr_pages = pages_for_ocr(result) if settings.ocr_enabled else []
    if len(ocr_pages) > settings.ocr_max_pages:
        result.details.ocr = OcrOutcome(state="skipped", detail=f"{len(ocr_pages)} pages need OCR, above the limit")
        if blank_check_here(settings):
            ocr_pages = []
        # else the OCR stage still looks at those pages for blank ones, and OCRs none of them
    code = None
    if result.state == "ready" and f.kind == "result" and facts is not None:
        # given once: a file inspected again keeps the code it was given
        code = await legal.code_of_file(f.id) or await legal.new_code(
            settings.result_code_format, facts, part_code=f.part_code, file_name=f.name, today=date.today()
        )
    # not counted twice by a repeated job
    if await ctx["verdicts"](Verdict(f, result, ocr_pages, code)):
        record_verdict(result.details, result.state)
    log.info("file %s: %s %s", f.id, result.state, result.reason_code or "")
    return f"{result.state}: {result.reason_code or 'ok'}"


async def requeue_stuck(ctx: dict[str, Any]) -> int:
    """Return to the outbox files whose job was lost (a worker killed mid-job, Redis flushed)."""
    settings: Settings = ctx["settings"]
    n = await requeue_lost(
        ctx["db"],
        ctx["queue"],
        older_than_seconds=settings.stuck_after_seconds,
        max_attempts=settings.worker_job_tries,
    )
    if n:
        log.info("returned %d files with lost jobs to the outbox", n)
        await drain_safely(ctx["db"], ctx["queue"])
    return n

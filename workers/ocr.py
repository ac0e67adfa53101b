"""The OCR job: recognise the text of image-only pages with Tesseract (through OCRmyPDF).

Runs on its own queue in its own worker processes, in children at a lower CPU priority with a
memory limit and a time limit per page, so inspections never wait behind it. The recognised text
is kept per page and made searchable; the OCR'd PDF (a text layer over the same images, PDF/A where
it validates) is kept as a derived object beside the original, which is never replaced.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from arq import Retry

from storage import Files, ObjectNotFound, ObjectStoreUnavailable, Settings
from storage.inspection import Finding, InspectionRecord
from storage.keys import ocr_key
from storage.objects import ObjectStore
from workers.inspection import blank_check_here
from workers.metrics import FINDINGS, OCR_PAGES, timed
from workers.sandbox import Sandbox
from workers.standard import finding

log = logging.getLogger(__name__)


def blank_pages(source: str, pages: list[int], ink_ratio: float) -> list[int]:
    """Which of ``pages`` are blank (less ink than ``ink_ratio``). Runs in a child.

    Inspection leaves this to the OCR stage, which decodes the pages anyway; it is a child call of its
    own so its answer stands when OCR then fails or is skipped.
    """
    from workers.pdfcheck import ink_ratios

    ratios = ink_ratios(source, pages)
    return [n for n in pages if (ratio := ratios.get(n)) is not None and ratio < ink_ratio]


def ocr_pdf(source: str, target: str, pages: list[int], languages: str, pdfa: bool) -> dict[str, Any]:
    """OCR ``pages`` of ``source`` into ``target``; the text of each of those pages. Runs in a child."""
    import ocrmypdf
    from pypdf import PdfReader

    from workers.pdfcheck import pdfa_claim

    os.environ["OMP_THREAD_LIMIT"] = "1"  # one core per child; the concurrency is a setting
    ocrmypdf.ocr(
        source,
        target,
        language=languages.split("+"),
        pages=",".join(str(p) for p in pages),
        skip_text=True,
        output_type="auto" if pdfa else "pdf",
        jobs=1,
        use_threads=True,
        progress_bar=False,
        optimize=0,
    )
    reader = PdfReader(target)
    texts = {n: reader.pages[n - 1].extract_text() or "" for n in pages if n <= len(reader.pages)}
    claim = pdfa_claim(reader.trailer["/Root"].get_object())
    pdfa_level = f"PDF/A-{claim['part']}{claim['conformance']}" if claim else None
    return {"texts": texts, "pdfa": pdfa_level}


def tesseract_languages() -> set[str]:
    """Languages the installed Tesseract knows (empty when Tesseract is missing)."""
    binary = shutil.which("tesseract")
    if binary is None:
        return set()
    try:
        out = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return {line.strip() for line in out.stdout.splitlines()[1:] if line.strip()}


def _count(found: list[Finding], *, blank: int) -> None:
    OCR_PAGES.labels("blank").inc(blank)
    for x in found:
        FINDINGS.labels(x.code, x.severity).inc()


@timed("ocr_file")
async def ocr_file(ctx: dict[str, Any], file_id: str) -> str:
    """OCR one file's image-only pages. Idempotent: a file no longer at the ``ocr`` stage is skipped."""
    settings: Settings = ctx["settings"]
    files: Files = ctx["files"]
    objects: ObjectStore = ctx["objects"]
    f = await files.get_unscoped(UUID(file_id))
    if f is None or f.stage != "ocr" or f.state != "ready":
        return f"skipped: {f.stage if f else 'no such file'}"
    record = InspectionRecord.of(f.inspection)
    pages = record.ocr_pages
    with tempfile.TemporaryDirectory(prefix="ocr-") as tmp:
        source, target = Path(tmp) / "original.pdf", Path(tmp) / "ocr.pdf"
        try:
            await objects.download(f.object_key, source)
        except ObjectNotFound:
            await files.record_ocr(f, {}, {"state": "failed", "detail": "the original is missing"}, None)
            return "failed: original missing"
        except ObjectStoreUnavailable as exc:
            job_try = int(ctx.get("job_try", 1))
            raise Retry(defer=min(600, 10 * 2**job_try)) from exc
        sandbox: Sandbox = ctx["sandbox"]
        summary: dict[str, Any] = {}
        blank: list[int] = []
        if not blank_check_here(settings) and pages:
            # Seconds: decoding a page takes a fraction of one; a file of 2,000 pages gets minutes.
            look = await sandbox.run(
                blank_pages,
                str(source),
                pages,
                settings.inspect_blank_ink_ratio,
                limit_seconds=settings.inspect_timeout_seconds + 0.2 * len(pages),
            )
            if look.status == "ok":
                blank = look.value
                if blank:
                    summary["blank_pages"] = blank
            else:
                summary["blank_check"] = look.detail or "took too long"
        found = [finding("page_blank", pages=blank)] if blank else []  # a warning: the file is already ready
        recognised = [n for n in pages if n not in blank]
        if record.ocr is not None and record.ocr.state == "skipped":
            # Too many pages to OCR (said at inspection): only looked at for blank pages.
            skipped = {"state": "skipped", "detail": record.ocr.detail}
            await files.record_ocr(f, {}, {**skipped, **summary}, None, findings=found)
            _count(found, blank=len(blank))
            return f"skipped: {len(blank)} blank pages"
        texts: dict[int, str] = {}
        key = None
        recognition: dict[str, Any] = {"pdfa": None, "seconds": 0.0}
        if recognised:
            limit = 30 + settings.ocr_seconds_per_page * len(recognised)
            started = time.monotonic()
            outcome = await sandbox.run(
                ocr_pdf,
                str(source),
                str(target),
                recognised,
                settings.ocr_languages,
                settings.ocr_pdfa,
                limit_seconds=limit,
            )
            seconds = round(time.monotonic() - started, 2)
            if outcome.status != "ok":
                # A file OCR cannot read stays ready with its verdict (blank pages included); its pages
                # are simply not findable by text.
                detail = outcome.detail if outcome.status == "crashed" else f"took longer than {limit:g}s"
                failed = {"state": "failed", "detail": detail, "pages": recognised, **summary}
                await files.record_ocr(f, {}, failed, None, findings=found)
                OCR_PAGES.labels("failed").inc(len(recognised))
                _count(found, blank=len(blank))
                log.warning("file %s: OCR failed: %s", file_id, detail)
                return f"failed: {detail}"
            key = ocr_key(f.object_key)
            try:
                await objects.put_file(key, target, content_type="application/pdf")
            except ObjectStoreUnavailable as exc:
                job_try = int(ctx.get("job_try", 1))
                raise Retry(defer=min(600, 10 * 2**job_try)) from exc
            texts = {int(n): t for n, t in outcome.value["texts"].items()}
            recognition = {"pdfa": outcome.value["pdfa"], "seconds": seconds}
        chars = sum(len("".join(t.split())) for t in texts.values())
        summary = {"state": "done", "pages": recognised, "chars": chars, **recognition, **summary}
        await files.record_ocr(f, texts, summary, key, findings=found)
        OCR_PAGES.labels("recognised").inc(len(recognised))
        _count(found, blank=len(blank))
    log.info("file %s: OCR of %d pages, %d characters, %d blank", file_id, len(recognised), chars, len(blank))
    return f"ocr: {len(recognised)} pages"

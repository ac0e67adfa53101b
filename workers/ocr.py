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
from storage.keys import ocr_key
from storage.objects import ObjectStore
from workers.inspection import blank_check_here
from workers.metrics import FINDINGS, OCR_PAGES, timed
from workers.sandbox import Sandbox
from workers.standard import finding

log = logging.getLogger(__name__)


def ocr_pdf(
    source: str, target: str, pages: list[int], languages: str, pdfa: bool, blank_ink_ratio: float | None = None
) -> dict[str, Any]:
    """OCR ``pages`` of ``source`` into ``target``; the text of each of those pages. Runs in a child.

    With ``blank_ink_ratio``, the pages are first looked at for blankness (inspection left that to this
    stage): blank ones are reported in ``blank`` and not OCR'd. ``target`` is not written when no page
    is left to OCR.
    """
    import ocrmypdf
    from pypdf import PdfReader

    from workers.pdfcheck import ink_ratios, pdfa_claim

    blank: list[int] = []
    if blank_ink_ratio is not None:
        ratios = ink_ratios(source, pages)
        blank = [n for n in pages if (ratio := ratios.get(n)) is not None and ratio < blank_ink_ratio]
        pages = [n for n in pages if n not in blank]
    if not pages:
        return {"texts": {}, "pdfa": None, "blank": blank}
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
    return {"texts": texts, "pdfa": pdfa_level, "blank": blank}


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


@timed("ocr_file")
async def ocr_file(ctx: dict[str, Any], file_id: str) -> str:
    """OCR one file's image-only pages. Idempotent: a file no longer at the ``ocr`` stage is skipped."""
    settings: Settings = ctx["settings"]
    files: Files = ctx["files"]
    objects: ObjectStore = ctx["objects"]
    f = await files.get_unscoped(UUID(file_id))
    if f is None or f.stage != "ocr" or f.state != "ready":
        return f"skipped: {f.stage if f else 'no such file'}"
    pages: list[int] = f.inspection.get("ocr_pages", [])
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
        limit = 30 + settings.ocr_seconds_per_page * len(pages)
        started = time.monotonic()
        blank_ratio = None if blank_check_here(settings) else settings.inspect_blank_ink_ratio
        outcome = await sandbox.run(
            ocr_pdf,
            str(source),
            str(target),
            pages,
            settings.ocr_languages,
            settings.ocr_pdfa,
            blank_ratio,
            limit_seconds=limit,
        )
        seconds = round(time.monotonic() - started, 2)
        if outcome.status != "ok":
            # A file OCR cannot read stays ready with its verdict; its pages are simply not findable by text.
            detail = outcome.detail if outcome.status == "crashed" else f"took longer than {limit:g}s"
            await files.record_ocr(f, {}, {"state": "failed", "detail": detail, "pages": pages}, None)
            OCR_PAGES.labels("failed").inc(len(pages))
            log.warning("file %s: OCR failed: %s", file_id, detail)
            return f"failed: {detail}"
        blank: list[int] = outcome.value["blank"]
        recognised = [n for n in pages if n not in blank]
        key = ocr_key(f.object_key) if recognised else None
        if key is not None:
            try:
                await objects.put_file(key, target, content_type="application/pdf")
            except ObjectStoreUnavailable as exc:
                job_try = int(ctx.get("job_try", 1))
                raise Retry(defer=min(600, 10 * 2**job_try)) from exc
        texts: dict[int, str] = {int(n): t for n, t in outcome.value["texts"].items()}
        chars = sum(len("".join(t.split())) for t in texts.values())
        summary = {
            "state": "done",
            "pages": recognised,
            "chars": chars,
            "pdfa": outcome.value["pdfa"],
            "seconds": seconds,
        }
        if blank:
            summary["blank_pages"] = blank
        found = [{**finding("page_blank", pages=blank), "severity": "warning"}] if blank else []
        await files.record_ocr(f, texts, summary, key, findings=found)
        OCR_PAGES.labels("recognised").inc(len(recognised))
        OCR_PAGES.labels("blank").inc(len(blank))
        for x in found:
            FINDINGS.labels(x["code"], x["severity"]).inc()
    log.info("file %s: OCR of %d pages, %d characters, %d blank", file_id, len(recognised), chars, len(blank))
    return f"ocr: {len(recognised)} pages"

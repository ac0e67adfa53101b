"""The inspection job: fetch a file's bytes, read them in a limited child, record the verdict."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any
from uuid import UUID

from arq import Retry

from storage import Files, Inspection, ObjectNotFound, ObjectStoreUnavailable, Settings, drain_safely, requeue_lost
from storage.objects import ObjectStore
from workers.pdfcheck import inspect_pdf
from workers.sandbox import Sandbox

log = logging.getLogger(__name__)

# code -> (Vietnamese, English): what a commune operator reads when a file is rejected.
REASONS: dict[str, tuple[str, str]] = {
    "pdf_truncated": (
        "Tệp PDF bị cắt cụt (tải lên chưa hết). Hãy tải lại tệp đầy đủ.",
        "The PDF is cut short (the upload did not finish). Upload the complete file again.",
    ),
    "pdf_encrypted": (
        "Tệp PDF được đặt mật khẩu hoặc mã hóa. Hãy xuất lại bản scan không mật khẩu rồi tải lên.",
        "The PDF is password-protected or encrypted. Export the scan again without a password and upload it.",
    ),
    "pdf_no_pages": (
        "Tệp PDF không có trang nào. Hãy scan lại tài liệu.",
        "The PDF has no pages. Scan the document again.",
    ),
    "pdf_too_many_pages": (
        "Tệp PDF có quá nhiều trang. Hãy tách thành nhiều tệp nhỏ hơn.",
        "The PDF has more pages than allowed. Split it into several smaller files.",
    ),
    "pdf_too_complex": (
        "Tệp PDF có cấu trúc bất thường hoặc quá phức tạp để đọc an toàn. Hãy scan hoặc xuất lại tệp.",
        "The PDF is built in an abnormal or overly complex way and cannot be read safely. Scan or export it again.",
    ),
    "pdf_inspection_timeout": (
        "Không đọc xong tệp PDF trong thời gian cho phép. Hãy scan hoặc xuất lại tệp.",
        "The PDF could not be read within the time allowed. Scan or export it again.",
    ),
    "pdf_unreadable": (
        "Tệp PDF bị hỏng, không đọc được. Hãy scan hoặc xuất lại tệp rồi tải lên.",
        "The PDF is damaged and cannot be read. Scan or export it again and upload the new file.",
    ),
    "content_missing": (
        "Không tìm thấy nội dung tệp trong kho lưu trữ. Hãy tải lên lại.",
        "The file's bytes are missing from storage. Upload it again.",
    ),
}


def rejection(code: str, details: dict[str, Any], pages: int | None = None) -> Inspection:
    vi, en = REASONS.get(code, REASONS["pdf_unreadable"])
    return Inspection(
        state="rejected",
        pages=pages,
        details={**details, "reason_vi": vi, "reason_en": en},
        text="",
        reason_code=code,
        reason=en,
    )


def verdict(report: dict[str, Any]) -> Inspection:
    """Turn a child's report into what is recorded."""
    text = report.pop("text", "") or ""
    details = {
        "pdf_version": report.get("pdf_version"),
        "encrypted": report.get("encrypted", False),
        "text_layer": report.get("text_pages", 0) > 0,
        "text_pages": report.get("text_pages", 0),
        "text_chars": report.get("text_chars", 0),
        "unreadable_pages": report.get("page_errors", []),
    }
    if report.get("problem"):
        details["problem_detail"] = report.get("problem_detail")
        return rejection(report["problem"], details, report.get("pages"))
    return Inspection(state="ready", pages=report["pages"], details=details, text=text)


async def inspect_file(ctx: dict[str, Any], file_id: str) -> str:
    """Inspect one file. Idempotent: a file already inspected (or deleted) is left as it is."""
    settings: Settings = ctx["settings"]
    files: Files = ctx["files"]
    objects: ObjectStore = ctx["objects"]
    f = await files.get_unscoped(UUID(file_id))
    if f is None or f.state != "processing":
        return f"skipped: {f.state if f else 'no such file'}"
    with tempfile.TemporaryDirectory(prefix="inspect-") as tmp:
        path = Path(tmp) / "file.pdf"
        try:
            await objects.download(f.object_key, path)
        except ObjectNotFound:
            await files.record_inspection(f, rejection("content_missing", {}))
            return "rejected: content_missing"
        except ObjectStoreUnavailable as exc:
            # Transient: try again later with backoff; the file stays 'processing'.
            job_try = int(ctx.get("job_try", 1))
            raise Retry(defer=min(300, 5 * 2**job_try)) from exc
        sandbox: Sandbox = ctx["sandbox"]
        outcome = await sandbox.run(
            inspect_pdf,
            str(path),
            settings.inspect_max_pages,
            settings.inspect_text_chars,
            settings.inspect_max_stream_mb * 1024 * 1024,
            limit_seconds=settings.inspect_timeout_seconds,
        )
    if outcome.status == "ok":
        result = verdict(outcome.value)
    elif outcome.status == "timeout":
        result = rejection("pdf_inspection_timeout", {"problem_detail": outcome.detail})
    else:
        result = rejection("pdf_too_complex", {"problem_detail": outcome.detail})
    await files.record_inspection(f, result)
    log.info("file %s: %s %s", file_id, result.state, result.reason_code or "")
    return f"{result.state}: {result.reason_code or 'ok'}"


async def requeue_stuck(ctx: dict[str, Any]) -> int:
    """Return to the outbox files whose job was lost (a worker killed mid-job, Redis flushed)."""
    settings: Settings = ctx["settings"]
    n = await requeue_lost(ctx["db"], older_than_seconds=settings.stuck_after_seconds)
    if n:
        log.info("returned %d files with lost inspection jobs to the outbox", n)
        await drain_safely(ctx["db"], ctx["queue"])
    return n

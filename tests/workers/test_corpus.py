"""A corpus of hostile and defective PDFs, each judged as a reader would see it, and none left stuck.

Every file is made in code (tests/pdfs.py); none comes from elsewhere. The first test reads each one
the way the worker's child does (``inspect_pdf``, then the verdict); the others take the real path:
upload, worker, record.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from loadtests.pdfgen import scanned_pdf
from storage import Settings
from tests.factories import Api, Subtree, auth
from tests.pdfs import (
    blank_scan_pdf,
    bomb_pdf,
    broken_xref_pdf,
    cyclic_pdf,
    dark_scan_pdf,
    deeply_nested_pdf,
    embedded_file_pdf,
    encrypted_pdf,
    flate_with_trailing_eol_pdf,
    javascript_pdf,
    launch_pdf,
    lost_root_pdf,
    many_pages_pdf,
    nul_text_pdf,
    odd_image_pdf,
    one_bad_page_pdf,
    padded_pdf,
    text_pdf,
    truncated_pdf,
)
from tests.workers.test_standard import inspect_all
from workers.pdfcheck import Report, inspect_pdf
from workers.standard import Standard, judge

MiB = 1024 * 1024

# name -> (the file, the verdict, finding codes that must be there)
CORPUS: dict[str, tuple[Callable[[], bytes], str, set[str]]] = {
    "text": (text_pdf, "ready", set()),
    "nul_text": (nul_text_pdf, "ready", set()),
    "odd_image": (odd_image_pdf, "ready", set()),
    "flate_trailing_eol": (flate_with_trailing_eol_pdf, "ready_with_warnings", {"scan_low_dpi"}),
    "one_bad_page": (one_bad_page_pdf, "ready_with_warnings", {"page_unreadable"}),
    "lost_root": (lost_root_pdf, "ready", set()),
    "padded": (padded_pdf, "ready", set()),
    "dark_scan": (lambda: dark_scan_pdf(), "ready_with_warnings", {"scan_low_dpi"}),
    "blank_scan": (lambda: blank_scan_pdf(dpi=100), "ready_with_warnings", {"page_blank"}),
    "truncated": (truncated_pdf, "rejected", {"pdf_truncated"}),
    "encrypted": (encrypted_pdf, "rejected", {"pdf_encrypted"}),
    "cyclic": (cyclic_pdf, "rejected", set()),
    "bomb": (lambda: bomb_pdf(64), "rejected", {"pdf_too_complex"}),
    "deeply_nested": (deeply_nested_pdf, "rejected", {"pdf_damaged"}),
    "many_pages": (many_pages_pdf, "rejected", {"pdf_too_many_pages"}),
    "broken_xref": (broken_xref_pdf, "rejected", set()),
    "javascript": (javascript_pdf, "rejected", {"pdf_javascript"}),
    "launch": (launch_pdf, "rejected", {"pdf_launch_action"}),
    "embedded_file": (embedded_file_pdf, "rejected", {"pdf_embedded_files"}),
}

# Findings that must not be there: a dark page is not blank, padding is not truncation.
ABSENT = {"dark_scan": {"page_blank"}, "padded": {"pdf_truncated"}, "one_bad_page": {"pdf_too_complex"}}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_defect_is_judged_as_a_reader_would_see_it(name: str) -> None:
    make, verdict, codes = CORPUS[name]
    absent = ABSENT.get(name, set())
    settings = Settings(inspect_max_stream_mb=16, inspect_max_pages=2000)
    started = time.monotonic()
    report = inspect_pdf(make(), settings.inspect_max_pages, 100_000, settings.inspect_max_stream_mb * MiB)
    took = time.monotonic() - started
    result = judge(Report(**report), Standard.from_settings(settings.model_copy(update={"ocr_enabled": False})))
    found = {f.code for f in result.details.findings}
    assert result.details.verdict == verdict, (name, result.details.findings, report.get("problem_detail"))
    assert codes <= found and not absent & found, (name, found)
    assert took < 10, f"{name} took {took:.1f} s to read (a loop, not work)"


def test_a_page_that_fails_is_named_and_the_others_are_read() -> None:
    report = inspect_pdf(one_bad_page_pdf(pages=30, bad=17), 2000, 100_000, 16 * MiB)
    assert report["page_errors"] == [17]
    assert report["text_pages"] == 29
    bad = report["page_facts"][16]
    assert bad["unreadable"] and "inflates" in bad["error"] and bad["width_mm"] == 209.9


def test_nul_characters_are_kept_out_of_the_text_and_the_verdict() -> None:
    report = inspect_pdf(nul_text_pdf(), 10, 100_000)
    assert "\x00" in report["page_texts"][0], "the generated file does carry NUL characters"


pytestmark_async = pytest.mark.asyncio(loop_scope="session")


@pytestmark_async
async def test_files_that_used_to_stick_in_inspection_end_with_a_verdict(api: Api, tree: Subtree) -> None:
    got = await inspect_all(
        api,
        tree.commune(1),
        {"nul": nul_text_pdf(), "odd_image": odd_image_pdf(), "one_bad_page": one_bad_page_pdf()},
    )
    for name, f in got.items():
        stage = f["pipeline"]["stage"]
        assert f["state"] == "ready" and stage in ("ready", "ocr"), (name, f["pipeline"])
    text = await api.db.pool.fetchval("SELECT text_content FROM files WHERE id = $1", got["nul"]["id"])
    assert "\x00" not in text and "chung nhan" in text


@pytestmark_async
async def test_a_file_whose_inspection_never_ends_is_parked_with_its_reason(api: Api, tree: Subtree) -> None:
    """A worker killed in the middle of the same file again and again: after the tries, the file is
    'failed' in the dead-letter list with a reason, not queued again for ever."""
    from workers.inspection import requeue_stuck

    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    r = await api.upload(token, dossier["id"], scanned_pdf(pages=1, dpi=100, seed=161))
    file_id = r.json()["id"]
    await api.db.pool.execute(
        "UPDATE files SET stage = 'inspecting', attempts = $2, queued_at = now() - interval '1 hour' WHERE id = $1",
        file_id,
        api.settings.worker_job_tries,
    )
    from storage import Queue

    queue = Queue.from_url(api.settings.redis_url)
    try:
        await requeue_stuck({"settings": api.settings, "db": api.db, "queue": queue})
    finally:
        await queue.close()
    f = await api.file(token, file_id)
    assert f["pipeline"]["stage"] == "failed" and "did not finish" in (f["pipeline"]["last_error"] or ""), f
    failed = await api.client.get("/api/v1/pipeline/failed", headers=auth(await api.admin()))
    assert file_id in {x["id"] for x in failed.json()["items"]}

"""Image-only scans are OCR'd in Vietnamese, kept per page, findable with and without diacritics."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from loadtests.pdfgen import VIETNAMESE_LINES as LINES
from loadtests.pdfgen import vietnamese_scan_pdf
from tests.factories import Api, Subtree, auth
from tests.pdfs import blank_scan_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_vietnamese_scan_is_ocred_and_found_with_and_without_diacritics(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    original = vietnamese_scan_pdf(LINES)
    file_id = (await api.upload(token, dossier["id"], original)).json()["id"]

    await api.run_worker()
    f = await api.file(token, file_id)
    # Usable at once: the verdict is known, OCR follows at its own pace.
    assert (f["state"], f["pipeline"]["stage"]) == ("ready", "ocr")
    assert f["inspection"]["ocr_pages"] == [1]

    assert await api.run_worker(ocr=True, only=[file_id]) == 1
    f = await api.file(token, file_id)
    assert (f["state"], f["pipeline"]["stage"], f["ocr_copy"]) == ("ready", "ready", True)
    assert set(f["pipeline"]["times"]) >= {"queued", "inspecting", "ocr", "ready"}
    assert f["inspection"]["ocr"]["state"] == "done"

    pages = (await api.client.get(f"/api/v1/files/{file_id}/pages", headers=auth(token))).json()["items"]
    assert [(p["page"], p["source"]) for p in pages] == [(1, "ocr")]
    assert "Hường" in pages[0]["text"] or "Huong" in pages[0]["text"]

    for query in ("quyền sử dụng đất", "quyen su dung dat", "Hoàng Đồng", "HOANG DONG"):
        r = await api.client.get("/api/v1/dossiers", params={"q": query}, headers=auth(token))
        assert [d["id"] for d in r.json()["items"]] == [dossier["id"]], query

    # The original is never replaced; the OCR'd copy is a derived object beside it, with a text layer.
    r = await api.client.get(f"/api/v1/files/{file_id}/content", headers=auth(token))
    assert r.content == original
    r = await api.client.get(f"/api/v1/files/{file_id}/content", params={"variant": "ocr"}, headers=auth(token))
    assert r.status_code == 200
    copy = PdfReader(io.BytesIO(r.content))
    assert "DỤNG" in (copy.pages[0].extract_text() or "").upper()


async def test_no_ocr_copy_is_a_clear_404(api: Api, tree: Subtree) -> None:
    from tests.pdfs import text_pdf

    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], text_pdf())).json()["id"]
    await api.run_worker()
    f = await api.file(token, file_id)
    assert f["pipeline"]["stage"] == "ready", "a file with a text layer needs no OCR"
    r = await api.client.get(f"/api/v1/files/{file_id}/content", params={"variant": "ocr"}, headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (404, "ocr_copy_missing")


def scan_with_blank_page() -> bytes:
    """A Vietnamese scan followed by a blank sheet, as a feeder scans a one-sided page twice."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for part in (vietnamese_scan_pdf(LINES[:3]), blank_scan_pdf()):
        writer.append(PdfReader(io.BytesIO(part)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def test_blank_pages_are_found_where_pages_are_decoded_and_never_ocred(api: Api, tree: Subtree) -> None:
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    data = scan_with_blank_page()

    # OCR on (the default): inspection does not decode pixels; the OCR stage finds the blank page,
    # skips it, and adds the warning to the verdict.
    file_id = (await api.upload(token, dossier["id"], data)).json()["id"]
    await api.run_worker()
    f = await api.file(token, file_id)
    assert (f["state"], f["pipeline"]["stage"], f["verdict"]) == ("ready", "ocr", "ready")
    assert f["inspection"]["ocr_pages"] == [1, 2]
    await api.run_worker(ocr=True, only=[file_id])
    f = await api.file(token, file_id)
    assert (f["pipeline"]["stage"], f["verdict"]) == ("ready", "ready_with_warnings")
    assert [(x["code"], x["pages"], x["severity"]) for x in f["findings"]] == [("page_blank", [2], "warning")]
    assert "2" in f["findings"][0]["vi"] and f["findings"][0]["en"]
    assert (f["inspection"]["ocr"]["pages"], f["inspection"]["ocr"]["blank_pages"]) == ([1], [2])
    pages = (await api.client.get(f"/api/v1/files/{file_id}/pages", headers=auth(token))).json()["items"]
    assert [p["page"] for p in pages] == [1]

    # OCR off: inspection looks at the pixels itself, and the blank page is in the first verdict.
    off = api.settings.model_copy(update={"ocr_enabled": False})
    dossier2 = await api.dossier(token)
    file_id = (await api.upload(token, dossier2["id"], data)).json()["id"]
    await api.run_worker(off)
    f = await api.file(token, file_id)
    assert (f["pipeline"]["stage"], f["verdict"]) == ("ready", "ready_with_warnings")
    assert [(x["code"], x["pages"]) for x in f["findings"]] == [("page_blank", [2])]

    # A province that rejects blank pages gets its verdict at inspection, OCR on or not.
    strict = api.settings.model_copy(update={"inspect_reject": [*api.settings.inspect_reject, "page_blank"]})
    dossier3 = await api.dossier(token)
    file_id = (await api.upload(token, dossier3["id"], data)).json()["id"]
    await api.run_worker(strict)
    f = await api.file(token, file_id)
    assert (f["state"], f["reason_code"]) == ("rejected", "page_blank")


async def test_a_file_with_too_many_pages_to_ocr_is_still_looked_at_for_blank_pages(api: Api, tree: Subtree) -> None:
    few = api.settings.model_copy(update={"ocr_max_pages": 1})
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], scan_with_blank_page())).json()["id"]
    await api.run_worker(few)
    f = await api.file(token, file_id)
    assert (f["state"], f["pipeline"]["stage"]) == ("ready", "ocr")
    assert f["inspection"]["ocr"]["state"] == "skipped"

    await api.run_worker(few, ocr=True, only=[file_id])
    f = await api.file(token, file_id)
    assert (f["pipeline"]["stage"], f["verdict"]) == ("ready", "ready_with_warnings")
    assert [(x["code"], x["pages"]) for x in f["findings"]] == [("page_blank", [2])]
    assert f["inspection"]["ocr"]["state"] == "skipped"
    assert "above the limit" in f["inspection"]["ocr"]["detail"]
    assert f["inspection"]["ocr"]["blank_pages"] == [2]
    pages = (await api.client.get(f"/api/v1/files/{file_id}/pages", headers=auth(token))).json()["items"]
    assert pages == [], "nothing was OCR'd"
    r = await api.client.get(f"/api/v1/files/{file_id}/content", params={"variant": "ocr"}, headers=auth(token))
    assert r.status_code == 404

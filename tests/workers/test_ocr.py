"""Image-only scans are OCR'd in Vietnamese, kept per page, findable with and without diacritics."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from loadtests.pdfgen import VIETNAMESE_LINES as LINES
from loadtests.pdfgen import vietnamese_scan_pdf
from tests.factories import Api, auth, commune

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_vietnamese_scan_is_ocred_and_found_with_and_without_diacritics(api: Api) -> None:
    _, token = await api.account("operator", commune(27, 1))
    dossier = await api.dossier(token)
    original = vietnamese_scan_pdf(LINES)
    file_id = (await api.upload(token, dossier["id"], original)).json()["id"]

    await api.run_worker()
    f = await api.file(token, file_id)
    # Usable at once: the verdict is known, OCR follows at its own pace.
    assert (f["state"], f["pipeline"]["stage"]) == ("ready", "ocr")
    assert f["inspection"]["ocr_pages"] == [1]

    assert await api.run_worker(ocr=True) >= 1
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


async def test_no_ocr_copy_is_a_clear_404(api: Api) -> None:
    from tests.pdfs import text_pdf

    _, token = await api.account("operator", commune(27, 2))
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], text_pdf())).json()["id"]
    await api.run_worker()
    f = await api.file(token, file_id)
    assert f["pipeline"]["stage"] == "ready", "a file with a text layer needs no OCR"
    r = await api.client.get(f"/api/v1/files/{file_id}/content", params={"variant": "ocr"}, headers=auth(token))
    assert (r.status_code, r.json()["code"]) == (404, "ocr_copy_missing")

"""Each file is checked against the scan standard page by page; every finding has a code and two sentences."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from loadtests.pdfgen import scanned_pdf
from tests.factories import Api, Subtree
from tests.pdfs import (
    broken_xref_pdf,
    deeply_nested_pdf,
    embedded_file_pdf,
    javascript_pdf,
    launch_pdf,
    letter_pdf,
    many_pages_pdf,
    mixed_pdf,
    old_version_pdf,
    pdfa_pdf,
    rotated_scan_pdf,
    signed_pdf,
    tampered,
    text_pdf,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def inspect_all(api: Api, unit: str, files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    _, token = await api.account("operator", unit)
    dossier = await api.dossier(token)
    ids = {}
    for name, data in files.items():
        r = await api.upload(token, dossier["id"], data, filename=f"{name}.pdf")
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    await api.run_worker()
    return {name: await api.file(token, file_id) for name, file_id in ids.items()}


def codes(f: dict[str, Any]) -> dict[str, str]:
    return {x["code"]: x["severity"] for x in f["findings"]}


async def test_a_scan_to_the_standard_is_ready_without_findings(api: Api, tree: Subtree) -> None:
    got = await inspect_all(api, tree.commune(1), {"good": scanned_pdf(pages=2, dpi=200, seed=5)})
    f = got["good"]
    assert (f["state"], f["verdict"], f["findings"]) == ("ready", "ready", [])
    facts = f["inspection"]["page_facts"]
    sizes = [(p["dpi"], p["colour"], round(p["width_mm"]), round(p["height_mm"])) for p in facts]
    assert sizes == [(200, "colour", 210, 297)] * 2


async def test_falling_short_of_the_standard_gives_warnings_with_the_pages(api: Api, tree: Subtree) -> None:
    got = await inspect_all(
        api,
        tree.commune(1),
        {
            "low_dpi": scanned_pdf(pages=2, dpi=150, seed=1),
            "grey": scanned_pdf(pages=1, dpi=200, mode="L", seed=2),
            "bilevel": scanned_pdf(pages=1, dpi=200, mode="1", seed=3),
            "old": old_version_pdf(),
            "letter": letter_pdf(),
        },
    )
    expected = {
        "low_dpi": "scan_low_dpi",
        "grey": "scan_greyscale",
        "bilevel": "scan_bilevel",
        "old": "pdf_version_old",
        "letter": "page_size_nonstandard",
    }
    for name, code in expected.items():
        f = got[name]
        assert f["state"] == "ready", (name, f)
        assert f["verdict"] == "ready_with_warnings", name
        assert codes(f) == {code: "warning"}, (name, f["findings"])
        finding = f["findings"][0]
        assert finding["vi"] and finding["en"], "every finding speaks Vietnamese and English"
    low = got["low_dpi"]["findings"][0]
    assert (low["pages"], low["dpi"]) == ([1, 2], 150)
    assert "150 dpi" in low["en"] and "200 dpi" in low["vi"]
    assert got["old"]["inspection"]["pdf_version"] == "1.3"


async def test_rotation_is_respected_for_page_size_and_resolution(api: Api, tree: Subtree) -> None:
    f = (await inspect_all(api, tree.commune(1), {"rotated": rotated_scan_pdf(dpi=200)}))["rotated"]
    page = f["inspection"]["page_facts"][0]
    assert (page["rotate"], round(page["width_mm"]), round(page["height_mm"]), page["dpi"]) == (90, 210, 297, 200)
    assert f["findings"] == []


async def test_unsafe_content_is_rejected_and_document_facts_are_recorded(api: Api, tree: Subtree) -> None:
    got = await inspect_all(
        api,
        tree.commune(1),
        {"js": javascript_pdf(), "launch": launch_pdf(), "attached": embedded_file_pdf(), "pdfa": pdfa_pdf()},
    )
    for name, code in (("js", "pdf_javascript"), ("launch", "pdf_launch_action"), ("attached", "pdf_embedded_files")):
        f = got[name]
        assert (f["state"], f["verdict"], f["reason_code"]) == ("rejected", "rejected", code), name
        assert codes(f)[code] == "reject"
    assert got["attached"]["inspection"]["embedded_files"] == ["hoa-don.exe"]
    assert got["pdfa"]["inspection"]["pdfa"] == {"part": "2", "conformance": "B"}
    assert got["pdfa"]["state"] == "ready"


async def test_which_findings_reject_is_a_setting(api: Api, tree: Subtree) -> None:
    strict = api.settings.model_copy(update={"inspect_reject": ["scan_low_dpi"], "inspect_min_dpi": 300})
    _, token = await api.account("operator", tree.commune(1))
    dossier = await api.dossier(token)
    low = (await api.upload(token, dossier["id"], scanned_pdf(pages=1, dpi=200, seed=4))).json()["id"]
    js = (await api.upload(token, dossier["id"], javascript_pdf())).json()["id"]
    await api.run_worker(strict)
    f = await api.file(token, low)
    assert (f["state"], f["reason_code"]) == ("rejected", "scan_low_dpi")
    assert "300 dpi" in f["reason"]
    g = await api.file(token, js)
    assert (g["state"], codes(g)) == ("ready", {"pdf_javascript": "warning"})


async def test_signatures_are_read_and_checked(api: Api, tree: Subtree) -> None:
    signed = await asyncio.to_thread(signed_pdf)  # pyHanko runs its own event loop
    got = await inspect_all(api, tree.commune(1), {"signed": signed, "tampered": tampered(signed), "plain": text_pdf()})
    sig = got["signed"]["inspection"]["signatures"]
    assert len(sig) == 1
    assert (sig[0]["field"], sig[0]["signed"], sig[0]["signer"]) == ("ChuKyCanBo", True, "Nguyễn Văn An")
    assert sig[0]["time"]
    check = sig[0]["validation"]
    assert (check["checked"], check["intact"], check["valid"], check["trusted"]) == (True, True, True, False)
    assert "Nguyễn Văn An" in check["certificate"]
    assert got["signed"]["findings"] == []
    broken = got["tampered"]
    assert broken["inspection"]["signatures"][0]["validation"]["intact"] is False
    assert codes(broken) == {"signature_invalid": "warning"}
    assert got["plain"]["inspection"]["signatures"] == []


async def test_mixed_pages_keep_text_per_page(api: Api, tree: Subtree) -> None:
    f = await api_file_and_pages(api, tree.commune(1), mixed_pdf())
    file, pages = f
    facts = file["inspection"]["page_facts"]
    assert [p["text_chars"] > 0 for p in facts] == [True, False]
    assert [p["colour"] for p in facts] == [None, "colour"]
    assert file["inspection"]["ocr_pages"] == [2]
    assert pages[0]["page"] == 1 and pages[0]["source"] == "layer"
    assert "quyen su dung dat" in pages[0]["text"]


async def api_file_and_pages(api: Api, unit: str, data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    _, token = await api.account("operator", unit)
    dossier = await api.dossier(token)
    file_id = (await api.upload(token, dossier["id"], data)).json()["id"]
    await api.run_worker()
    r = await api.client.get(f"/api/v1/files/{file_id}/pages", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return await api.file(token, file_id), r.json()["items"]


async def test_hostile_structures_are_rejected_with_a_reason(api: Api, tree: Subtree) -> None:
    got = await inspect_all(
        api,
        tree.commune(1),
        {"nested": deeply_nested_pdf(), "many": many_pages_pdf(), "xref": broken_xref_pdf()},
    )
    for name, f in got.items():
        assert f["state"] == "rejected", (name, f)
        assert f["reason_code"] in ("pdf_damaged", "pdf_too_many_pages", "pdf_unreadable"), (name, f)
        assert f["inspection"]["reason_vi"]
    assert got["many"]["reason_code"] == "pdf_too_many_pages"
    assert got["nested"]["reason_code"] == "pdf_damaged"
    assert any("Error reading PDF file" in r for r in got["nested"]["inspection"]["repairs"])

"""Copies with legal standing: an accepted result's digitization result code, the unit's signed copy (QR
and PAdES signature added to the original's bytes, which never change), the signature policy per unit,
and the public check a citizen opens from the QR."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pypdf import PdfReader

from storage import Settings
from storage.legal import result_code
from tests.conftest import make_client
from tests.factories import Api, Subtree, auth
from tests.pdfs import _one_text_page, build_pdf, dark_scan_pdf, rotated_scan_pdf
from warehouse import pki
from warehouse.signing import MM, QR_XOBJECT

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROCEDURE = "1.001612"  # in the starter catalogue: result type KQ1 "Giấy khai sinh"
HOLDER = "020190004321"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A certification authority of the tests' own and a folder for the units' PKCS#12 files."""
    folder = tmp_path_factory.mktemp("signing-keys")
    return {"ca": pki.authority(), "folder": folder}


def install_key(keys: dict[str, Any], unit_code: str, passphrase: bytes = b"mat-khau-p12") -> pki.Issued:
    unit = pki.issue(keys["ca"], f"UBND {unit_code}", organisation=f"UBND {unit_code}")
    folder: Path = keys["folder"]
    (folder / f"{unit_code}.p12").write_bytes(unit.pkcs12(passphrase, [keys["ca"]]))
    (folder / f"{unit_code}.pass").write_bytes(passphrase + b"\n")
    return unit


@pytest.fixture(scope="module")
async def signing(prepared: Settings, keys: dict[str, Any]) -> AsyncIterator[AsyncTestClient[Litestar]]:
    settings = prepared.model_copy(
        update={"signing_keys_dir": keys["folder"], "public_base_url": "https://kho.langson.gov.vn"}
    )
    async with make_client(settings) as client:
        yield client


def a4_pdf(n: int = 0) -> bytes:
    """An A4 page of text (the standard's size, nothing in its top left corner); ``n`` makes it unique."""
    content = b"BT /F1 14 Tf 150 600 Td (Giay khai sinh so %d) Tj ET" % n
    return build_pdf(_one_text_page(content))


async def accepted_result(api: Api, unit: str, data: bytes, name: str = "giay-khai-sinh.pdf") -> dict[str, Any]:
    """A result file accepted by inspection in a dossier of ``unit``."""
    _, operator = await api.account("operator", unit)
    dossier = await api.dossier(
        operator,
        procedure_code=PROCEDURE,
        subject={"name": "Hoàng Văn Páo", "id_kind": "cccd", "id_number": HOLDER},
    )
    r = await api.upload(operator, dossier["id"], data, kind="result", filename=name, headers={"X-Part-Code": "KQ1"})
    assert r.status_code == 201, r.text
    await api.run_worker()
    f = await api.file(operator, r.json()["id"])
    assert f["state"] == "ready", f
    return {"file": f, "dossier": dossier, "operator": operator}


def qr_on_first_page(data: bytes) -> list[str]:
    """What a phone's reader finds on the first page as printed (rendered at 200 dpi)."""
    import pypdfium2
    import zxingcpp

    page = pypdfium2.PdfDocument(data)[0]
    return [found.text for found in zxingcpp.read_barcodes(page.render(scale=200 / 72).to_pil())]


async def validated(data: bytes, ca: pki.Issued) -> Any:
    root = asn1_x509.Certificate.load(ca.cert.public_bytes(serialization.Encoding.DER))
    (signature,) = [s for s in PdfFileReader(io.BytesIO(data)).embedded_signatures if s.field_name.startswith("KhoSo")]
    return await async_validate_pdf_signature(signature, ValidationContext(trust_roots=[root], allow_fetching=False))


async def test_an_accepted_result_has_one_code_and_the_signer_signs_a_copy_beside_the_original(
    api: Api, tree: Subtree, keys: dict[str, Any], signing: AsyncTestClient[Litestar]
) -> None:
    unit = tree.commune(1)
    certificate = install_key(keys, unit)
    original = a4_pdf()
    made = await accepted_result(api, unit, original)
    f = made["file"]
    # the default policy for results warns of a missing digitizer's signature; the result is accepted
    assert f["verdict"] == "ready_with_warnings"
    assert [x["code"] for x in f["findings"]] == ["signature_missing"]
    code = f["result_code"]
    assert code and code.startswith(f"{HOLDER}-KQ1-")

    _, signer = await api.account("signer", unit)
    r = await signing.get(f"/api/v1/result-codes/{code}", headers=auth(signer))
    assert r.status_code == 200, r.text
    assert r.json()["document_name"] == "Giấy khai sinh" and r.json()["file_id"] == f["id"]

    r = await signing.post(f"/api/v1/files/{f['id']}/sign", headers=auth(signer))
    assert r.status_code == 201, r.text
    copy = r.json()
    assert copy["certificate_serial"] == certificate.serial
    assert copy["result_code"] == code
    assert copy["verify_url"] == f"https://kho.langson.gov.vn/verify/{code}"
    assert copy["qr"]["corner"] == "top_left" and copy["findings"] == []
    for field in (f"Mã KQSH: {code}", "Mã TTHC: 1.001612", f"Số định danh: {HOLDER}", "Tên giấy tờ: Giấy khai sinh"):
        assert field in copy["qr"]["text"]

    signed = (await signing.get(f"/api/v1/files/{f['id']}/content?variant=signed", headers=auth(signer))).content
    assert hashlib.sha256(signed).hexdigest() == copy["sha256"]
    assert signed.startswith(original)  # the original's bytes, then one incremental update
    status = await validated(signed, keys["ca"])
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    first = PdfReader(io.BytesIO(signed)).pages[0]
    assert QR_XOBJECT in first["/Resources"]["/XObject"]
    assert qr_on_first_page(signed) == [copy["qr"]["text"]]  # a reader decodes exactly what was meant
    # the original is unchanged under its record
    stored = (await signing.get(f"/api/v1/files/{f['id']}/content", headers=auth(signer))).content
    assert stored == original and hashlib.sha256(stored).hexdigest() == f["sha256"]

    # once: the same copy again; again=true makes a new one
    again = await signing.post(f"/api/v1/files/{f['id']}/sign", headers=auth(signer))
    assert again.status_code == 200 and again.json()["id"] == copy["id"]
    newer = await signing.post(f"/api/v1/files/{f['id']}/sign?again=true", headers=auth(signer))
    assert newer.status_code == 201 and newer.json()["id"] != copy["id"]
    listed = (await signing.get(f"/api/v1/files/{f['id']}/signed", headers=auth(signer))).json()["items"]
    assert [c["id"] for c in listed] == [newer.json()["id"], copy["id"]]

    # signing is audited with the certificate
    _, admin = await api.account("unit_admin", unit)
    events = (await signing.get(f"/api/v1/audit?record={f['id']}", headers=auth(admin))).json()["items"]
    signs = [e for e in events if e["action"] == "sign_file"]
    assert len(signs) == 3 and all(e["details"]["certificate_serial"] == certificate.serial for e in signs)


async def test_who_may_sign_what(
    api: Api, tree: Subtree, tree2: Subtree, keys: dict[str, Any], signing: AsyncTestClient[Litestar]
) -> None:
    unit = tree.commune(1)
    install_key(keys, unit)
    made = await accepted_result(api, unit, a4_pdf())
    path = f"/api/v1/files/{made['file']['id']}/sign"
    # an operator of the unit: not a signer
    r = await signing.post(path, headers=auth(made["operator"]))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    # another district's signer cannot even see the file
    _, stranger = await api.account("signer", tree2.commune(1))
    r = await signing.post(path, headers=auth(stranger))
    assert r.status_code == 404 and r.json()["code"] == "file_not_found"
    # the district's signer sees the commune's file but may not sign with the commune's certificate
    _, district = await api.account("signer", tree.district)
    r = await signing.post(path, headers=auth(district))
    assert r.status_code == 403
    # a unit without a certificate installed
    other = await accepted_result(api, tree.commune(2), a4_pdf())
    _, signer2 = await api.account("signer", tree.commune(2))
    r = await signing.post(f"/api/v1/files/{other['file']['id']}/sign", headers=auth(signer2))
    assert r.status_code == 409 and r.json()["code"] == "signing_key_missing"
    assert tree.commune(2) in r.json()["detail"]
    # a passphrase that does not open the unit's file
    (keys["folder"] / f"{tree.commune(2)}.p12").write_bytes(pki.issue(keys["ca"], "x").pkcs12(b"right", [keys["ca"]]))
    (keys["folder"] / f"{tree.commune(2)}.pass").write_bytes(b"wrong")
    r = await signing.post(f"/api/v1/files/{other['file']['id']}/sign", headers=auth(signer2))
    assert r.status_code == 409 and r.json()["code"] == "signing_key_unusable"
    assert (await signing.get(f"/api/v1/files/{other['file']['id']}/signed", headers=auth(signer2))).json() == {
        "items": []
    }


def stub_pdf() -> bytes:
    """A first page smaller than the QR with its margins (a pasted slip, a cut-out stamp)."""
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 60 40] /Contents 4 0 R /Resources << >> >>",
            b"<< /Length 0 >>\nstream\n\nendstream",
        ]
    )


@pytest.mark.parametrize(
    ("make", "corner", "codes"),
    [
        (rotated_scan_pdf, "top_left", ["qr_page_rotated"]),
        (dark_scan_pdf, "top_right", ["qr_corner_not_blank"]),
        (stub_pdf, "top_left", ["qr_no_room"]),
    ],
)
async def test_the_qr_goes_where_the_page_shows_its_top_left_or_says_why_not(
    api: Api,
    tree: Subtree,
    keys: dict[str, Any],
    signing: AsyncTestClient[Litestar],
    make: Any,
    corner: str,
    codes: list[str],
) -> None:
    unit = tree.commune(1)
    install_key(keys, unit)
    original = make()
    made = await accepted_result(api, unit, original)
    _, signer = await api.account("signer", unit)
    r = await signing.post(f"/api/v1/files/{made['file']['id']}/sign", headers=auth(signer))
    assert r.status_code == 201, r.text
    copy = r.json()
    assert copy["qr"]["corner"] == corner
    assert [x["code"] for x in copy["findings"]] == codes
    assert all(x["vi"] and x["en"] for x in copy["findings"])
    signed = (
        await signing.get(f"/api/v1/files/{made['file']['id']}/content?variant=signed", headers=auth(signer))
    ).content
    assert signed.startswith(original)
    assert len(signed) - len(original) < 32 * 1024  # the signature's room and a vector QR: no picture added
    if make is not stub_pdf:  # (a QR squeezed onto a 2 cm slip is not expected to read)
        assert qr_on_first_page(signed) == [copy["qr"]["text"]]
    page = PdfReader(io.BytesIO(signed)).pages[0]
    box = page.cropbox
    if make is rotated_scan_pdf:  # /Rotate 90: the shown top left is the page's own bottom left
        assert int(page["/Rotate"]) == 90
        placed = [v for v in PdfReader(io.BytesIO(signed)).pages[0].get_contents().operations if v[1] == b"re"]
        x, y, w, _ = (float(v) for v in placed[-1][0])
        assert x < 30 * MM and y < 30 * MM and abs(w - 24 * MM) < 1
        assert float(box.top) - y > 100  # not at the page's own top


async def test_the_public_check(
    api: Api, tree: Subtree, keys: dict[str, Any], signing: AsyncTestClient[Litestar]
) -> None:
    unit = tree.commune(1)
    install_key(keys, unit)
    made = await accepted_result(api, unit, a4_pdf())
    f = made["file"]
    code = f["result_code"]
    _, signer = await api.account("signer", unit)
    copy = (await signing.post(f"/api/v1/files/{f['id']}/sign", headers=auth(signer))).json()
    signed_copy_bytes = (
        await signing.get(f"/api/v1/files/{f['id']}/content?variant=signed", headers=auth(signer))
    ).content

    # no sign-in: JSON with what the QR carries, the holder's identifier masked
    r = await signing.get(f"/verify/{code}", headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] is True and body["state"] == "valid" and body["genuine"] is None
    assert body["issued_by"]["code"] == unit and body["procedure_code"] == PROCEDURE
    # nothing beyond what the QR carries: no name; the number shown masked (the default code itself
    # carries it, as the QR does)
    assert body["holder"] == "********4321" and "Hoàng Văn Páo" not in r.text
    assert set(body) == {"code", "genuine", "checked", "valid", "state", "valid_until", "issued_at", "issued_by"} | {
        "document_name",
        "dossier_code",
        "procedure_code",
        "holder",
        "system",
    }
    assert body["document_name"] == "Giấy khai sinh"
    # the copy in hand, by its SHA-256: the signed copy and the original are genuine, other bytes are not
    for sha, genuine in ((copy["sha256"], True), (f["sha256"], True), ("0" * 64, False)):
        r = await signing.get(f"/verify/{code}", params={"sha256": sha})
        assert r.json()["genuine"] is genuine and r.json()["checked"] == {"sha256": genuine}
    # the QR's fields
    r = await signing.get(f"/verify/{code}", params={"dossier_code": made["dossier"]["code"], "holder": HOLDER})
    assert r.json()["genuine"] is True
    r = await signing.get(f"/verify/{code}", params={"holder": "020190009999"})
    assert r.json()["genuine"] is False
    r = await signing.get(f"/verify/{code}", params={"sha256": "not-a-digest"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_sha256"

    # the page a phone opens from the QR: Vietnamese, small-screen, no personal data beyond the QR's
    page = await signing.get(f"/verify/{code}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Kết quả số hóa còn hiệu lực" in page.text and 'name="viewport"' in page.text
    assert "Hoàng Văn Páo" not in page.text and "********4321" in page.text

    # the copy itself, sent by a citizen: raw or from the page's form; nothing of it kept or audited
    r = await signing.post(f"/verify/{code}", content=signed_copy_bytes, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 200 and r.json()["genuine"] is True, r.text
    r = await signing.post(f"/verify/{code}", content=b"%PDF-1.4 a different copy")
    assert r.status_code == 200 and r.json()["genuine"] is False
    r = await signing.post(
        f"/verify/{code}?format=html", files={"file": ("ban-sao.pdf", signed_copy_bytes, "application/pdf")}
    )
    assert r.status_code == 200 and "Bản sao khớp với bản đã lưu trong kho." in r.text
    assert 'enctype="multipart/form-data"' in page.text
    r = await signing.post(f"/verify/{code}")
    assert r.status_code == 422 and r.json()["code"] == "copy_missing"
    _, admin = await api.account("unit_admin", unit)
    audit = (await signing.get("/api/v1/audit", headers=auth(admin))).json()["items"]
    assert not any(e["action"] == "verify_copy" for e in audit)

    # a code never given and a withdrawn code get the same answer
    never = await signing.get("/verify/000000000000-KQ1-99999999", headers={"Accept": "application/json"})
    r = await signing.delete(f"/api/v1/files/{f['id']}", headers=auth(made["operator"]))
    assert r.status_code == 204
    withdrawn = await signing.get(f"/verify/{code}", headers={"Accept": "application/json"})
    assert never.status_code == withdrawn.status_code == 404
    assert {k: v for k, v in never.json().items() if k not in ("request_id", "instance")} == {
        k: v for k, v in withdrawn.json().items() if k not in ("request_id", "instance")
    }
    assert withdrawn.json()["code"] == "result_not_found"
    # a deleted dossier takes its results' codes out of use too
    other = await accepted_result(api, unit, a4_pdf(99))
    assert (await signing.get(f"/verify/{other['file']['result_code']}")).status_code == 200
    r = await signing.delete(f"/api/v1/dossiers/{other['dossier']['id']}", headers=auth(other["operator"]))
    assert r.status_code == 204, r.text
    assert (await signing.get(f"/verify/{other['file']['result_code']}")).status_code == 404
    r = await signing.post(f"/api/v1/files/{other['file']['id']}/sign", headers=auth(signer))
    assert r.status_code in (404, 409), r.text
    assert (await signing.get(f"/verify/{code}", headers={"Accept": "text/html"})).status_code == 404


async def test_a_copy_sent_to_check_is_bounded(prepared: Settings) -> None:
    """A stranger's upload to the public check: a declared size past the limit is refused at once, an
    undeclared one as soon as it passes it, over real HTTP (chunked)."""
    import httpx

    from tests.factories import LiveServer

    with LiveServer(WAREHOUSE_VERIFY_MAX_BYTES="4096") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            # refused before its body is read, which is read and dropped so the sender gets the answer
            # and not a broken connection
            for size in (5000, 1024 * 1024):
                r = await http.post("/verify/ANY-CODE-1", content=b"%PDF" + b"x" * size)
                assert r.status_code == 413 and r.json()["code"] == "copy_too_large"

            async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: found out while reading
                for _ in range(100):
                    yield b"x" * 10000

            r = await http.post("/verify/ANY-CODE-1", content=chunked())
            assert r.status_code == 413 and r.json()["code"] == "copy_too_large"
            r = await http.post("/verify/ANY-CODE-1", content=b"%PDF-1.4 small")
            assert r.status_code == 404 and r.json()["code"] == "result_not_found"


async def test_the_public_check_is_limited_per_address(prepared: Settings, api: Api, tree: Subtree) -> None:
    import redis.asyncio as aioredis

    r = aioredis.from_url(prepared.redis_url)
    async for key in r.scan_iter("*rl:verify:*"):  # the checks earlier tests made from this address
        await r.delete(key)
    await r.aclose()
    async with make_client(prepared.model_copy(update={"verify_per_minute": 3})) as client:
        answers = [(await client.get("/verify/NO-SUCH-CODE-1")).status_code for _ in range(5)]
        assert answers[:3] == [404, 404, 404] and answers[3:] == [429, 429]
        r = await client.get("/verify/NO-SUCH-CODE-1")
        assert r.json()["code"] == "too_many_checks" and int(r.headers["retry-after"]) >= 1


async def test_the_signature_policy_is_set_per_unit_and_inherited(api: Api, tree: Subtree, tree2: Subtree) -> None:
    _, admin = await api.account("unit_admin", tree.district)
    commune = tree.commune(1)
    r = await api.client.get(f"/api/v1/units/{commune}/signature-policy", headers=auth(admin))
    assert r.json() == {"unit": commune, "set": {}, "applied": {"component": "off", "result": "warn"}}
    r = await api.client.put(
        f"/api/v1/units/{tree.district}/signature-policy", json={"result": "reject"}, headers=auth(admin)
    )
    assert r.status_code == 200, r.text
    r = await api.client.get(f"/api/v1/units/{commune}/signature-policy", headers=auth(admin))
    assert r.json()["applied"] == {"component": "off", "result": "reject"} and r.json()["set"] == {}
    # the commune's own policy wins over its district's
    await api.client.put(
        f"/api/v1/units/{tree.commune(2)}/signature-policy", json={"result": "off"}, headers=auth(admin)
    )

    # inspection applies it: an unsigned result is rejected in commune 1, accepted silently in commune 2
    _, op1 = await api.account("operator", commune)
    _, op2 = await api.account("operator", tree.commune(2))
    files = []
    for token in (op1, op2):
        d = await api.dossier(token, procedure_code=PROCEDURE)
        r = await api.upload(token, d["id"], a4_pdf(), kind="result", headers={"X-Part-Code": "KQ1"})
        files.append((token, r.json()["id"]))
    await api.run_worker()
    rejected = await api.file(files[0][0], files[0][1])
    assert rejected["state"] == "rejected" and rejected["reason_code"] == "signature_missing"
    assert rejected["result_code"] is None  # a rejected file gets no code
    quiet = await api.file(files[1][0], files[1][1])
    assert quiet["state"] == "ready" and quiet["findings"] == [] and quiet["result_code"]

    # who may set it: not an operator, not another district's administrator, only known values
    r = await api.client.put(f"/api/v1/units/{commune}/signature-policy", json={"result": "off"}, headers=auth(op1))
    assert r.status_code == 403
    _, other = await api.account("unit_admin", tree2.district)
    r = await api.client.put(f"/api/v1/units/{commune}/signature-policy", json={"result": "off"}, headers=auth(other))
    assert r.status_code == 404
    r = await api.client.put(f"/api/v1/units/{commune}/signature-policy", json={"result": "maybe"}, headers=auth(admin))
    assert r.status_code in (400, 422)


async def test_the_result_code_is_made_by_one_function_whose_format_is_a_setting() -> None:
    assert result_code(
        "{holder}-{result_type}-{seq:08d}", holder="0201", result_type="KQ1", unit="X", year=2026, seq=7
    ) == ("0201-KQ1-00000007")
    # no holder's identifier: no doubled or leading separator
    assert result_code(
        "{holder}-{result_type}-{seq:08d}", holder="", result_type="KQ1", unit="X", year=2026, seq=7
    ) == ("KQ1-00000007")
    assert result_code("{unit}.{year}.{seq}", holder="", result_type="", unit="000.01.21.H40", year=2026, seq=12) == (
        "000.01.21.H40.2026.12"
    )
    with pytest.raises(ValueError, match="seq"):
        Settings(result_code_format="{holder}-{result_type}")
    with pytest.raises(ValueError, match="cannot be filled"):
        Settings(result_code_format="{nobody}-{seq}")


async def test_each_result_gets_its_own_code_never_reused(api: Api, tree: Subtree) -> None:
    unit = tree.commune(3)
    codes = [(await accepted_result(api, unit, a4_pdf(n)))["file"]["result_code"] for n in range(3)]
    assert len(set(codes)) == 3
    numbers = [int(c.rsplit("-", 1)[1]) for c in codes]
    assert numbers == sorted(numbers)


async def test_a_scan_padded_after_its_end_is_signed_without_the_padding(keys: dict[str, Any], tmp_path: Path) -> None:
    """Scanners write in blocks and pad past %%EOF; inspection accepts such files, so they must sign."""
    from warehouse.signing import Pkcs12Signers, sign_copy

    unit = "000.99.99.HXX"
    install_key(keys, unit)
    original = a4_pdf(7)
    (tmp_path / "in.pdf").write_bytes(original + b"\x00" * 8192)
    spec = Pkcs12Signers(keys["folder"]).for_unit(unit)
    assert spec is not None
    made = await asyncio.to_thread(  # as in the signing child: its own thread, no event loop
        partial(
            sign_copy,
            spec,
            str(tmp_path / "in.pdf"),
            str(tmp_path / "out.pdf"),
            qr_text="Mã KQSH: X",
            qr_size_mm=24,
            field_name="KhoSoHoa-test",
            reason="Sao y",
            location="Lạng Sơn",
        )
    )
    signed = (tmp_path / "out.pdf").read_bytes()
    assert made["corner"] == "top_left" and signed.startswith(original) and b"\x00" * 64 not in signed
    status = await validated(signed, keys["ca"])
    assert status.intact and status.valid and status.coverage.name == "ENTIRE_FILE"


async def test_a_demo_key_lets_a_local_install_try_signing(tmp_path: Path) -> None:
    """`warehouse signing demo-key UNIT` writes a test key the signer interface can load, issued by one
    local test authority that the next key reuses."""
    import os
    import subprocess
    import sys

    from warehouse.signing import Pkcs12Signers, load_signer

    env = {k: v for k, v in os.environ.items() if k != "WAREHOUSE_SIGNING_KEYS_DIR"}
    env["WAREHOUSE_DATA_DIR"] = str(tmp_path)
    for unit in ("000.01.21.HXX", "000.02.21.HXX"):
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "warehouse", "signing", "demo-key", unit],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "TEST key" in done.stdout
    folder = tmp_path / "signing-keys"
    issuers = set()
    for unit in ("000.01.21.HXX", "000.02.21.HXX"):
        spec = Pkcs12Signers(folder).for_unit(unit)
        assert spec is not None and (folder / f"{unit}.p12").stat().st_mode & 0o077 == 0
        issuers.add(load_signer(spec).signing_cert.issuer.human_friendly)
    assert len(issuers) == 1
    assert Pkcs12Signers(folder).for_unit("000.03.21.HXX") is None


async def test_stopping_the_process_group_stops_an_api_that_has_signed(
    api: Api, tree: Subtree, keys: dict[str, Any]
) -> None:
    """A signal to the whole process group (a service manager stopping it, a terminal closing) reaches the
    signing children too: the API still stops at once
    (its children were once killed under it and the API hung)."""
    import os
    import signal
    import time

    import httpx

    from tests.factories import LiveServer

    unit = tree.commune(1)
    install_key(keys, unit)
    made = await accepted_result(api, unit, a4_pdf(41))
    _, signer = await api.account("signer", unit)
    server = LiveServer(WAREHOUSE_SIGNING_KEYS_DIR=str(keys["folder"]))
    with server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            r = await http.post(f"/api/v1/files/{made['file']['id']}/sign", headers=auth(signer))
            assert r.status_code == 201, r.text
        assert server.proc is not None
        os.killpg(server.proc.pid, signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.to_thread(server.proc.wait, 30)
        assert time.monotonic() - started < 15, "the API did not stop"
        assert code is not None

"""Signatures read at inspection: who signed, with which certificate, whether it covers the file, and
valid, invalid, untrusted, expired or revoked, against trust roots and a revocation list of the tests'
own certification authority; and what the unit's policy makes of each."""

from __future__ import annotations

import datetime
import io
from pathlib import Path
from typing import Any

import pytest
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from storage import Settings
from tests.pdfs import sign_with, text_pdf
from warehouse import pki
from workers.pdfcheck import Report, inspect_pdf
from workers.standard import Standard, judge


@pytest.fixture(scope="module")
def pki_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("pki")
    ca = pki.authority()
    now = datetime.datetime.now(datetime.UTC)
    people = {
        "valid": pki.issue(ca, "Nguyễn Văn An"),
        "expired": pki.issue(
            ca, "Lê Thị Bình", not_before=now - datetime.timedelta(days=400), not_after=now - datetime.timedelta(days=2)
        ),
        "revoked": pki.issue(ca, "Trần Văn Cường"),
    }
    stranger_ca = pki.authority("CA lạ")
    people["stranger"] = pki.issue(stranger_ca, "Người lạ")
    roots, crl = folder / "roots.pem", folder / "crl.pem"
    roots.write_bytes(ca.pem)
    crl.write_bytes(pki.revocation_list(ca, [people["revoked"]]))
    return {"ca": ca, "stranger_ca": stranger_ca, "people": people, "roots": roots, "crl": crl}


def read(data: bytes, roots: Path | None, crl: Path | None) -> Report:
    report = inspect_pdf(
        data, 50, 10_000, 64 * 1024 * 1024, str(roots) if roots else None, True, str(crl) if crl else None
    )
    return Report(**report)


def signed_by(pki_files: dict[str, Any], who: str) -> bytes:
    issuer = pki_files["stranger_ca"] if who == "stranger" else pki_files["ca"]
    return sign_with(text_pdf(), pki_files["people"][who], issuer)


@pytest.mark.parametrize(
    ("who", "status", "finding"),
    [
        ("valid", "valid", None),
        ("expired", "expired", "signature_expired"),
        ("revoked", "revoked", "signature_revoked"),
        ("stranger", "untrusted", "signature_untrusted"),
    ],
)
def test_each_signature_is_named_and_judged(
    pki_files: dict[str, Any], who: str, status: str, finding: str | None
) -> None:
    report = read(signed_by(pki_files, who), pki_files["roots"], pki_files["crl"])
    (sig,) = report.signatures
    check = sig["validation"]
    person = pki_files["people"][who]
    assert check["status"] == status
    assert check["serial"] == person.serial
    assert check["certificate"] == person.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert check["issuer"] in ("Kho số hóa - CA thử nghiệm", "CA lạ")
    assert check["whole_file"] is True and check["modified_after"] is False
    assert check["signed_at"] and check["revocation_checked"] is True

    verdict = judge(report, Standard.from_settings(Settings()), signature_policy="warn")
    codes = [f.code for f in verdict.details.findings]
    assert codes == ([finding] if finding else [])
    if finding:
        found = verdict.details.findings[0]
        assert found.severity == "warning" and found.vi and found.en and "'ChuKyCanBo'" in found.en
        rejected = judge(report, Standard.from_settings(Settings()), signature_policy="reject")
        assert rejected.state == "rejected" and rejected.reason_code == finding
        assert rejected.details.reason_vi and rejected.details.reason_en
        off = judge(report, Standard.from_settings(Settings()), signature_policy="off")
        assert off.state == "ready" and off.details.findings == []


def test_without_trust_roots_no_chain_is_trusted(pki_files: dict[str, Any]) -> None:
    report = read(signed_by(pki_files, "valid"), None, None)
    assert report.signatures[0]["validation"]["status"] == "untrusted"
    assert report.signatures[0]["validation"]["revocation_checked"] is False


def test_changes_after_signing_and_partial_coverage_are_findings(pki_files: dict[str, Any]) -> None:
    signed = signed_by(pki_files, "valid")
    standard = Standard.from_settings(Settings())

    # an incremental update after the signature that changes the page (not a signature or form fill)
    from pyhanko.pdf_utils import generic

    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    stream = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 30 Tf 100 100 Td (DA SUA) Tj ET"))
    writer.add_stream_to_page(0, stream)
    changed = io.BytesIO()
    writer.write(changed)
    report = read(changed.getvalue(), pki_files["roots"], pki_files["crl"])
    check = report.signatures[0]["validation"]
    assert check["whole_file"] is False and check["modified_after"] is True and check["coverage"] == "entire_revision"
    assert [f.code for f in judge(report, standard, signature_policy="warn").details.findings] == ["signature_modified"]

    # bytes appended after the signature, outside any revision
    report = read(signed + b"\n% added after signing\n" * 20, pki_files["roots"], pki_files["crl"])
    check = report.signatures[0]["validation"]
    assert check["status"] == "valid" and check["whole_file"] is False
    assert [f.code for f in judge(report, standard, signature_policy="warn").details.findings] == ["signature_modified"]

    # bytes in the signed range changed: the signature no longer matches, whatever the policy
    tampered = signed.replace(b"quyen su dung dat so 123", b"quyen su dung dat so 999", 1)
    report = read(tampered, pki_files["roots"], pki_files["crl"])
    assert report.signatures[0]["validation"]["status"] == "invalid"
    for policy in ("off", "warn"):
        assert [f.code for f in judge(report, standard, signature_policy=policy).details.findings] == [
            "signature_invalid"
        ]
    assert judge(report, standard, signature_policy="reject").state == "rejected"


def test_an_unsigned_file_is_what_the_policy_says(pki_files: dict[str, Any]) -> None:
    report = read(text_pdf(), pki_files["roots"], None)
    standard = Standard.from_settings(Settings())
    assert judge(report, standard, signature_policy="off").details.findings == []
    warned = judge(report, standard, signature_policy="warn")
    assert warned.state == "ready" and [f.code for f in warned.details.findings] == ["signature_missing"]
    assert "chữ ký số" in warned.details.findings[0].vi
    assert judge(report, standard, signature_policy="reject").reason_code == "signature_missing"


def test_unreadable_trust_settings_are_said_not_crashed(pki_files: dict[str, Any], tmp_path: Path) -> None:
    broken = tmp_path / "roots.pem"
    broken.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    report = read(signed_by(pki_files, "valid"), broken, None)
    assert report.problem is None
    assert report.signatures[0]["validation"]["checked"] is False
    assert "trust settings unreadable" in report.signatures[0]["validation"]["detail"]
    # a signature that could not be checked is never taken as a good one
    verdict = judge(report, Standard.from_settings(Settings()), signature_policy="reject")
    assert verdict.state == "rejected" and verdict.reason_code == "signature_unchecked"


def test_a_file_of_many_signatures_is_read_in_bounded_time(pki_files: dict[str, Any]) -> None:
    from workers import pdfcheck

    data = text_pdf()
    for n in range(pdfcheck.MAX_SIGNATURES_CHECKED + 2):
        data = sign_with(data, pki_files["people"]["valid"], pki_files["ca"], field=f"Ky{n:02d}")
    report = read(data, pki_files["roots"], pki_files["crl"])
    checks = [s["validation"] for s in report.signatures]
    assert len(checks) == pdfcheck.MAX_SIGNATURES_CHECKED + 2
    assert sum(c["checked"] for c in checks) == pdfcheck.MAX_SIGNATURES_CHECKED
    verdict = judge(report, Standard.from_settings(Settings()), signature_policy="warn")
    assert {f.code for f in verdict.details.findings} == {"signature_unchecked"}

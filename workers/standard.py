"""The national scan standard applied to what the child read: findings, each with a code and a sentence.

The national scan standard: PDF 1.4 or later, colour, at least 200 dpi, scanned at 100% (A4 or A3 paper). A file is
``ready`` with no findings, ``ready`` with warnings, or ``rejected``. Files that cannot be read, are
encrypted or carry active content are rejected; falling short of the standard is a warning by
default. Thresholds and which findings reject are settings (``WAREHOUSE_INSPECT_*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from storage import Inspection, Settings
from storage.inspection import Finding, InspectionDetails, InspectionRecord, PageFacts, Signature
from workers.pdfcheck import Report

# Findings that always reject: the file cannot be read or opened safely, so nothing else can be said.
UNREADABLE = frozenset(
    {
        "pdf_truncated",
        "pdf_encrypted",
        "pdf_no_pages",
        "pdf_too_many_pages",
        "pdf_too_complex",
        "pdf_inspection_timeout",
        "pdf_unreadable",
        "content_missing",
    }
)

# code -> (Vietnamese, English). ``{pages}``, ``{dpi}`` and the like are filled from the finding.
FINDINGS: dict[str, tuple[str, str]] = {
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
    "pdf_javascript": (
        "Tệp PDF chứa mã JavaScript, không an toàn để lưu và mở. Hãy scan lại hoặc in ra PDF rồi tải lên.",
        "The PDF contains JavaScript, which is unsafe to keep and open. Scan it again or print it to PDF.",
    ),
    "pdf_launch_action": (
        "Tệp PDF chứa lệnh mở chương trình khác, không an toàn. Hãy scan lại hoặc in ra PDF rồi tải lên.",
        "The PDF contains an action that starts another program, which is unsafe. Scan it again or print it to PDF.",
    ),
    "pdf_damaged": (
        "Một phần tệp PDF bị hỏng hoặc có cấu trúc bất thường và đã bị bỏ qua khi đọc. Hãy scan hoặc xuất lại tệp.",
        "Parts of the PDF are damaged or abnormally built and were skipped when reading. Scan or export it again.",
    ),
    "pdf_embedded_files": (
        "Tệp PDF có tệp đính kèm bên trong ({names}); kho không kiểm tra được các tệp này.",
        "The PDF carries attached files ({names}); the warehouse cannot check them.",
    ),
    "pdf_version_old": (
        "Tệp PDF phiên bản {version}, thấp hơn chuẩn ({minimum} trở lên). Hãy xuất lại bằng phần mềm scan mới hơn.",
        "The PDF is version {version}, older than the standard's {minimum}. Export it again with newer scan software.",
    ),
    "scan_low_dpi": (
        "Trang {pages} được scan ở {dpi} dpi, thấp hơn chuẩn {minimum} dpi. Hãy scan lại ở {minimum} dpi trở lên.",
        "Pages {pages} are scanned at {dpi} dpi, below the standard's {minimum} dpi. Scan them again at "
        "{minimum} dpi or more.",
    ),
    "scan_greyscale": (
        "Trang {pages} được scan đen trắng nhiều mức xám; chuẩn yêu cầu scan màu.",
        "Pages {pages} are scanned in greyscale; the standard asks for colour.",
    ),
    "scan_bilevel": (
        "Trang {pages} được scan chỉ hai màu đen và trắng; chuẩn yêu cầu scan màu.",
        "Pages {pages} are scanned in black and white only; the standard asks for colour.",
    ),
    "page_size_nonstandard": (
        "Trang {pages} không đúng khổ A4 hoặc A3 ({size}); hãy kiểm tra tài liệu được scan đúng tỉ lệ 100%.",
        "Pages {pages} are neither A4 nor A3 ({size}); check that the document was scanned at 100%.",
    ),
    "page_blank": (
        "Trang {pages} có vẻ là trang trắng; hãy kiểm tra và bỏ trang thừa nếu cần.",
        "Pages {pages} look blank; check them and remove pages scanned by mistake.",
    ),
    "page_unreadable": (
        "Không đọc được trang {pages}; hãy kiểm tra lại các trang này.",
        "Pages {pages} could not be read; check these pages.",
    ),
    "signature_invalid": (
        "Chữ ký số '{field}' không khớp với nội dung tệp (tệp đã bị sửa sau khi ký hoặc chữ ký hỏng).",
        "The digital signature '{field}' does not match the file (changed after signing, or a broken signature).",
    ),
    "signature_missing": (
        "Tệp chưa có chữ ký số của người số hóa. Hãy ký số bản scan rồi tải lên lại.",
        "The file carries no digital signature of the person who digitized it. Sign the scan and upload it again.",
    ),
    "signature_partial": (
        "Chữ ký số '{field}' chỉ phủ một phần tệp. Hãy ký lại toàn bộ bản scan.",
        "The digital signature '{field}' covers only part of the file. Sign the whole scan again.",
    ),
    "signature_modified": (
        "Tệp đã bị thêm nội dung sau khi ký số '{field}'. Hãy tải lên bản đã ký, không sửa sau khi ký.",
        "Content was added to the file after the signature '{field}'. Upload the signed file, unchanged since signing.",
    ),
    "signature_untrusted": (
        "Chữ ký số '{field}' của {signer} không thuộc tổ chức chứng thực được tin cậy.",
        "The digital signature '{field}' of {signer} does not chain to a trusted certification authority.",
    ),
    "signature_expired": (
        "Chứng thư số của {signer} (chữ ký '{field}') đã hết hạn hoặc chưa có hiệu lực. Hãy ký lại bằng chứng thư "
        "còn hiệu lực.",
        "The certificate of {signer} (signature '{field}') has expired or is not yet valid. Sign again with a "
        "valid certificate.",
    ),
    "signature_unchecked": (
        "Không kiểm tra được chữ ký số '{field}'; kho không xác nhận được chữ ký này.",
        "The digital signature '{field}' could not be checked; the warehouse cannot vouch for it.",
    ),
    "signature_revoked": (
        "Chứng thư số của {signer} (chữ ký '{field}') đã bị thu hồi. Hãy ký lại bằng chứng thư còn hiệu lực.",
        "The certificate of {signer} (signature '{field}') has been revoked. Sign again with a valid certificate.",
    ),
}

# What the signature policy (``off``, ``warn``, ``reject``) decides: these findings are left out (off),
# warnings (warn) or reject the file (reject). A signature that does not match the file is always at
# least a warning: it says the bytes were changed.
SIGNATURE_FINDINGS = frozenset(
    {
        "signature_missing",
        "signature_partial",
        "signature_modified",
        "signature_untrusted",
        "signature_expired",
        "signature_revoked",
        "signature_unchecked",
    }
)
POLICIES = ("off", "warn", "reject")


def signature_findings(signatures: list[Signature]) -> list[Finding]:
    """A finding for each signature that falls short, and one when nothing in the file is signed."""
    signed = [s for s in signatures if s.signed]
    if not signed:
        return [finding("signature_missing")]
    found: list[Finding] = []
    for sig in signed:
        check = sig.validation
        if check is None or not check.checked:
            found.append(finding("signature_unchecked", field=sig.field))
            continue
        who = check.certificate or sig.signer or "?"
        if check.status == "invalid":
            found.append(finding("signature_invalid", field=sig.field))
            continue
        if check.coverage in ("unclear", "contiguous_block_from_start"):
            found.append(finding("signature_partial", field=sig.field))
        elif check.modified_after and check.modifications not in ("lta_updates", "form_filling"):
            # later revisions that only add signatures or fill fields are how a second person signs; bytes
            # appended after the signature (``none``: nothing a reader would show) or other changes are not
            found.append(finding("signature_modified", field=sig.field))
        if check.status in ("untrusted", "expired", "revoked"):
            found.append(finding(f"signature_{check.status}", field=sig.field, signer=who))
    return found


PAPER_MM = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}


@dataclass(frozen=True, slots=True)
class Standard:
    min_dpi: int
    min_pdf_version: str
    paper_tolerance_mm: float
    blank_ink_ratio: float
    reject: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> Standard:
        return cls(
            min_dpi=settings.inspect_min_dpi,
            min_pdf_version=settings.inspect_min_pdf_version,
            paper_tolerance_mm=settings.inspect_paper_tolerance_mm,
            blank_ink_ratio=settings.inspect_blank_ink_ratio,
            reject=frozenset(settings.inspect_reject),
        )


def finding(code: str, *, pages: list[int] | None = None, **values: Any) -> Finding:
    """A finding with its sentences; its severity is decided by the verdict."""
    vi, en = FINDINGS[code]
    fill = {**values, "pages": _page_list(pages or [])}
    named = {k: v for k, v in values.items() if k in Finding.__struct_fields__ and k != "minimum"}
    return Finding(code=code, vi=vi.format(**fill), en=en.format(**fill), pages=list(pages or []), **named)


def _page_list(pages: list[int]) -> str:
    shown = ", ".join(str(p) for p in pages[:20])
    return shown + (f" (+{len(pages) - 20})" if len(pages) > 20 else "")


def _version(text: str | None) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in (text or "").split("."))
    except ValueError:
        return (0,)


def paper(width_mm: float, height_mm: float, tolerance: float) -> str | None:
    short, long_ = sorted((width_mm, height_mm))
    for name, (w, h) in PAPER_MM.items():
        if abs(short - w) <= tolerance and abs(long_ - h) <= tolerance:
            return name
    return None


def rejection(code: str, facts: InspectionDetails | None = None, pages: int | None = None) -> Inspection:
    """A file that cannot be read: one rejecting finding and nothing else to say."""
    found = finding(code)
    found.severity = "reject"
    record = InspectionRecord.judged(facts, "rejected", [found])
    record.reason_vi, record.reason_en = found.vi, found.en
    return Inspection(state="rejected", pages=pages, details=record, text="", reason_code=code, reason=found.en)


T = TypeVar("T")


def _typed(kind: type[T], value: dict[str, Any]) -> T | None:
    """One entry of the child's report as its type; None for one whose values are not of their type (a
    file may hold anything: it is noted as unreadable rather than failing the whole verdict)."""
    try:
        return msgspec.convert(value, kind, strict=False)
    except msgspec.ValidationError:
        return None


def judge(report: Report, standard: Standard, signature_policy: str = "off") -> Inspection:
    """The verdict on a child's report; ``signature_policy`` (off, warn, reject) is what an unsigned or
    badly signed file gets, for this file's unit and kind."""
    page_texts = report.page_texts
    facts = InspectionDetails(
        pdf_version=report.pdf_version,
        encrypted=report.encrypted,
        text_layer=report.text_pages > 0,
        text_pages=report.text_pages,
        text_chars=report.text_chars,
        unreadable_pages=report.page_errors,
        signatures=[s for s in (_typed(Signature, x) for x in report.signatures) if s is not None],
        pdfa=report.pdfa,
        javascript=report.javascript,
        launch_actions=report.launch_actions,
        embedded_files=report.embedded_files,
        repairs=report.repairs,
        page_facts=[
            _typed(PageFacts, f) or PageFacts(page=int(f.get("page", 0)), unreadable=True, error="facts unreadable")
            for f in report.page_facts
        ],
    )
    if report.problem:
        facts.problem_detail = report.problem_detail
        return rejection(report.problem, facts, report.pages)

    findings: list[Finding] = []
    if report.damaged:
        findings.append(finding("pdf_damaged"))
    if report.javascript:
        findings.append(finding("pdf_javascript"))
    if report.launch_actions:
        findings.append(finding("pdf_launch_action"))
    if report.embedded_files:
        findings.append(finding("pdf_embedded_files", names=", ".join(report.embedded_files[:5])))
    if _version(report.pdf_version) < _version(standard.min_pdf_version):
        findings.append(finding("pdf_version_old", version=report.pdf_version, minimum=standard.min_pdf_version))
    policy_rejects: set[str] = set()
    for found in signature_findings(facts.signatures):
        if found.code in SIGNATURE_FINDINGS:
            if signature_policy == "off":
                continue
            if signature_policy == "reject":
                policy_rejects.add(found.code)
        elif signature_policy == "reject":
            policy_rejects.add(found.code)
        findings.append(found)

    pages = [f for f in facts.page_facts if not f.unreadable]
    low = [f for f in pages if f.dpi is not None and f.dpi < standard.min_dpi]
    if low:
        lowest = min(f.dpi for f in low if f.dpi is not None)
        findings.append(finding("scan_low_dpi", pages=[f.page for f in low], dpi=lowest, minimum=standard.min_dpi))
    for colour, code in (("greyscale", "scan_greyscale"), ("bilevel", "scan_bilevel")):
        coloured = [f.page for f in pages if f.colour == colour]
        if coloured:
            findings.append(finding(code, pages=coloured))
    odd = [
        f
        for f in pages
        if f.width_mm is not None
        and f.height_mm is not None
        and paper(f.width_mm, f.height_mm, standard.paper_tolerance_mm) is None
    ]
    if odd:
        size = f"{odd[0].width_mm:g} x {odd[0].height_mm:g} mm"
        findings.append(finding("page_size_nonstandard", pages=[f.page for f in odd], size=size))
    blank = [f.page for f in pages if f.blank or (f.ink_ratio is not None and f.ink_ratio < standard.blank_ink_ratio)]
    if blank:
        findings.append(finding("page_blank", pages=blank))
    if report.page_errors:
        findings.append(finding("page_unreadable", pages=report.page_errors))

    for f in findings:
        f.severity = "reject" if f.code in standard.reject or f.code in policy_rejects else "warning"
    rejecting = [f for f in findings if f.severity == "reject"]
    verdict = "rejected" if rejecting else ("ready_with_warnings" if findings else "ready")
    record = InspectionRecord.judged(facts, verdict, findings)
    text = "\n\f".join(page_texts)
    if rejecting:
        first = rejecting[0]
        record.reason_vi, record.reason_en = first.vi, first.en
        return Inspection(
            state="rejected",
            pages=report.pages,
            details=record,
            text=text,
            reason_code=first.code,
            reason=first.en,
            page_texts=page_texts,
        )
    return Inspection(state="ready", pages=report.pages, details=record, text=text, page_texts=page_texts)

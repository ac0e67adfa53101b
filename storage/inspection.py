"""What inspection and OCR found in a file, as one typed record: the worker's verdict writes it, the
database keeps it (``files.inspection``, JSON), the OCR stage reads and extends it, and the API shows it
with every field in its OpenAPI document. Every field has a default, so records kept by earlier
releases (fewer fields) read as they are."""

from __future__ import annotations

from typing import Any

import msgspec


class Finding(msgspec.Struct):
    """Something a file falls short in, in Vietnamese and English; ``severity`` reject or warning."""

    code: str
    vi: str = ""
    en: str = ""
    severity: str = "warning"
    pages: list[int] = msgspec.field(default_factory=list)
    # The values its sentences name, by kind of finding.
    dpi: int | None = None
    size: str | None = None
    names: str | None = None
    version: str | None = None
    field: str | None = None
    signer: str | None = None


class PageFacts(msgspec.Struct):
    """One page as inspection measured it."""

    page: int
    width_mm: float | None = None
    height_mm: float | None = None
    rotate: int = 0
    images: int = 0
    dpi: int | None = None
    colour: str | None = None  # colour | greyscale | bilevel
    text_chars: int = 0
    ink_ratio: float | None = None
    blank: bool = False
    unreadable: bool = False
    unreadable_images: bool = False
    error: str | None = None


class SignatureCheck(msgspec.Struct):
    """What pyHanko found of one signature. ``status``: valid, invalid (the signed bytes or the signature
    value do not match), revoked, expired or untrusted (no chain to a configured root)."""

    checked: bool = False
    status: str | None = None
    intact: bool | None = None
    valid: bool | None = None
    trusted: bool | None = None
    revoked: bool | None = None
    coverage: str | None = None  # entire_file | entire_revision | contiguous_block_from_start | unclear
    whole_file: bool | None = None
    modified_after: bool | None = None
    modifications: str | None = None  # what the later revisions change, as pyHanko classes it
    certificate: str | None = None  # the signer, as the certificate names it
    serial: str | None = None  # the certificate's serial number, hexadecimal
    issuer: str | None = None
    not_after: str | None = None
    signed_at: str | None = None  # the signing time the signature states
    revocation_checked: bool | None = None
    detail: str | None = None


class Signature(msgspec.Struct):
    field: str = ""
    signed: bool = False
    signer: str | None = None
    time: str | None = None
    kind: str | None = None
    validation: SignatureCheck | None = None


class OcrOutcome(msgspec.Struct):
    """The OCR stage: done, failed or skipped, on which pages, and what it found."""

    state: str
    detail: str | None = None
    pages: list[int] = msgspec.field(default_factory=list)
    chars: int | None = None
    pdfa: bool | str | None = None
    seconds: float | None = None
    blank_pages: list[int] = msgspec.field(default_factory=list)
    blank_check: str | None = None


class InspectionDetails(msgspec.Struct):
    """The facts of a file: its PDF, its text, its signatures, each page, and the OCR stage."""

    pdf_version: str | None = None
    encrypted: bool = False
    text_layer: bool = False
    text_pages: int = 0
    text_chars: int = 0
    unreadable_pages: list[int] = msgspec.field(default_factory=list)
    signatures: list[Signature] = msgspec.field(default_factory=list)
    pdfa: dict[str, str] | None = None
    javascript: bool = False
    launch_actions: bool = False
    embedded_files: list[str] = msgspec.field(default_factory=list)
    repairs: list[str] = msgspec.field(default_factory=list)
    page_facts: list[PageFacts] = msgspec.field(default_factory=list)
    problem_detail: str | None = None
    reason_vi: str | None = None
    reason_en: str | None = None
    ocr_pages: list[int] = msgspec.field(default_factory=list)
    ocr: OcrOutcome | None = None
    result_code: str | None = None  # the digitization result code an accepted result was given


class InspectionRecord(InspectionDetails):
    """The facts with the verdict (ready, ready_with_warnings or rejected) and its findings."""

    verdict: str | None = None
    findings: list[Finding] = msgspec.field(default_factory=list)

    @classmethod
    def of(cls, stored: dict[str, Any] | None) -> InspectionRecord:
        """The record kept in the database (any release's), typed; a field whose stored value is not of
        its type is left at its default rather than making the whole record unreadable."""
        try:
            return msgspec.convert(stored or {}, cls, strict=False)
        except msgspec.ValidationError:
            kept = {}
            for name, value in (stored or {}).items():
                try:
                    msgspec.convert({name: value}, cls, strict=False)
                except msgspec.ValidationError:
                    continue
                kept[name] = value
            return msgspec.convert(kept, cls, strict=False)

    def stored(self) -> dict[str, Any]:
        """As the database keeps it (JSON)."""
        value: dict[str, Any] = msgspec.to_builtins(self)
        return value

    @classmethod
    def judged(cls, facts: InspectionDetails | None, verdict: str, findings: list[Finding]) -> InspectionRecord:
        """The facts with a verdict on them."""
        return cls(**facts_of(facts), verdict=verdict, findings=findings)

    def details(self) -> InspectionDetails:
        """The facts without the verdict and findings (the API shows those beside them)."""
        return InspectionDetails(**facts_of(self))


def facts_of(details: InspectionDetails | None) -> dict[str, Any]:
    """The fields of the facts, by name (none for no facts)."""
    return {n: getattr(details, n) for n in InspectionDetails.__struct_fields__} if details is not None else {}

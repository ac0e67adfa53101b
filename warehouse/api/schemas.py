"""Shapes of what the API returns for dossiers and files."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec

from storage import Dossier, File
from storage.inspection import Finding, InspectionDetails, InspectionRecord


class PipelineOut(msgspec.Struct):
    """Where the file is in the pipeline: queued, inspecting, ocr, ready, rejected or failed."""

    stage: str
    times: dict[str, Any]
    attempts: int
    last_error: str | None = None


class FileOut(msgspec.Struct):
    id: UUID
    dossier_id: UUID
    name: str
    kind: str
    size: int
    sha256: str
    media_type: str
    state: str
    created_at: datetime
    pipeline: PipelineOut
    part_code: str | None = None  # the procedure's component or result type it digitizes
    reason_code: str | None = None
    reason: str | None = None
    pages: int | None = None
    inspected_at: datetime | None = None
    verdict: str | None = None
    findings: list[Finding] = msgspec.field(default_factory=list)
    ocr_copy: bool = False
    result_code: str | None = None  # the digitization result code of an accepted result
    inspection: InspectionDetails = msgspec.field(default_factory=InspectionDetails)

    @classmethod
    def of(cls, f: File) -> FileOut:
        record = InspectionRecord.of(f.inspection)
        return cls(
            pipeline=PipelineOut(stage=f.stage, times=f.stage_times, attempts=f.attempts, last_error=f.last_error),
            verdict=record.verdict,
            findings=record.findings,
            ocr_copy=f.ocr_object_key is not None,
            result_code=record.result_code,
            id=f.id,
            dossier_id=f.dossier_id,
            name=f.name,
            kind=f.kind,
            part_code=f.part_code,
            size=f.size,
            sha256=f.sha256,
            media_type=f.media_type,
            state=f.state,
            created_at=f.created_at,
            reason_code=f.reason_code,
            reason=f.reason,
            pages=f.pages,
            inspected_at=f.inspected_at,
            inspection=record.details(),
        )


class PageOut(msgspec.Struct):
    page: int
    source: str  # layer | ocr
    text: str


class PagesOut(msgspec.Struct):
    items: list[PageOut]


class SubjectOut(msgspec.Struct):
    name: str
    id_kind: str
    id_number: str


class ResultOut(msgspec.Struct):
    number: str
    issued_on: date | None
    issuer: str | None
    valid_until: date | None
    kind_code: str | None
    still_valid: bool

    @classmethod
    def of(cls, d: Dossier, today: date) -> ResultOut | None:
        """The dossier's result, if it has one (a number), and whether it is still valid today."""
        if not d.result_number:
            return None
        return cls(
            number=d.result_number,
            issued_on=d.result_issued_on,
            issuer=d.result_issuer,
            valid_until=d.result_valid_until,
            kind_code=d.result_kind_code,
            still_valid=d.result_valid_until is None or d.result_valid_until >= today,
        )


class CompletenessOut(msgspec.Struct):
    """What the procedure's catalogue version requires of the dossier and what is there: the required
    components and, for a dossier with a typed result, the result. Complete when nothing is missing and a
    file passed inspection (a procedure not in the catalogue requires only that)."""

    catalogued: bool
    required: list[str]
    present: list[str]
    missing: list[str]
    complete: bool
    complete_at: datetime | None = None

    @classmethod
    def of(cls, d: Dossier) -> CompletenessOut:
        return cls(
            catalogued=d.catalogued,
            required=list(dict.fromkeys(d.parts_required)),
            present=d.parts_done,
            missing=d.parts_missing,
            complete=d.complete_at is not None,
            complete_at=d.complete_at,
        )


class DossierOut(msgspec.Struct):
    id: UUID
    code: str
    unit_code: str
    procedure_code: str
    title: str | None
    subject: SubjectOut
    received_on: date
    result: ResultOut | None
    state: str
    created_at: datetime
    updated_at: datetime
    completeness: CompletenessOut
    returned_on: date | None = None  # when the one-stop desk returned the result (pushed by intake)
    owed: bool = False  # returned with a result whose electronic file has not passed inspection yet
    files: list[FileOut] | msgspec.UnsetType = msgspec.UNSET
    snippet: str | msgspec.UnsetType = msgspec.UNSET  # in a search: what matched, matched words in <b>

    @classmethod
    def of(cls, d: Dossier, *, today: date, files: list[File] | None = None) -> DossierOut:
        return cls(
            id=d.id,
            code=d.code,
            unit_code=d.unit_code,
            procedure_code=d.procedure_code,
            title=d.title,
            subject=SubjectOut(d.subject_name, d.subject_id_kind, d.subject_id_number),
            received_on=d.received_on,
            result=ResultOut.of(d, today),
            state=d.state,
            created_at=d.created_at,
            updated_at=d.updated_at,
            completeness=CompletenessOut.of(d),
            returned_on=d.returned_on,
            owed=d.owed_since is not None,
            files=[FileOut.of(f) for f in files] if files is not None else msgspec.UNSET,
            snippet=d.snippet if d.snippet is not None else msgspec.UNSET,
        )


class DossierPage(msgspec.Struct):
    items: list[DossierOut]
    next_cursor: str | None

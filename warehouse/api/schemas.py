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
    reason_code: str | None = None
    reason: str | None = None
    pages: int | None = None
    inspected_at: datetime | None = None
    verdict: str | None = None
    findings: list[Finding] = msgspec.field(default_factory=list)
    ocr_copy: bool = False
    inspection: InspectionDetails = msgspec.field(default_factory=InspectionDetails)

    @classmethod
    def of(cls, f: File) -> FileOut:
        record = InspectionRecord.of(f.inspection)
        return cls(
            pipeline=PipelineOut(stage=f.stage, times=f.stage_times, attempts=f.attempts, last_error=f.last_error),
            verdict=record.verdict,
            findings=record.findings,
            ocr_copy=f.ocr_object_key is not None,
            id=f.id,
            dossier_id=f.dossier_id,
            name=f.name,
            kind=f.kind,
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
    files: list[FileOut] | msgspec.UnsetType = msgspec.UNSET
    snippet: str | msgspec.UnsetType = msgspec.UNSET  # in a search: what matched, matched words in <b>

    @classmethod
    def of(cls, d: Dossier, *, today: date, files: list[File] | None = None) -> DossierOut:
        result = None
        if d.result_number:
            result = ResultOut(
                number=d.result_number,
                issued_on=d.result_issued_on,
                issuer=d.result_issuer,
                valid_until=d.result_valid_until,
                kind_code=d.result_kind_code,
                still_valid=d.result_valid_until is None or d.result_valid_until >= today,
            )
        return cls(
            id=d.id,
            code=d.code,
            unit_code=d.unit_code,
            procedure_code=d.procedure_code,
            title=d.title,
            subject=SubjectOut(d.subject_name, d.subject_id_kind, d.subject_id_number),
            received_on=d.received_on,
            result=result,
            state=d.state,
            created_at=d.created_at,
            updated_at=d.updated_at,
            files=[FileOut.of(f) for f in files] if files is not None else msgspec.UNSET,
            snippet=d.snippet if d.snippet is not None else msgspec.UNSET,
        )


class DossierPage(msgspec.Struct):
    items: list[DossierOut]
    next_cursor: str | None

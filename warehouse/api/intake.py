"""Returns pushed by the one-stop system, and each unit's work list of results it still owes."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, get, post
from litestar.params import QueryParameter

from warehouse import messages_vi
from warehouse.api.body import read_body
from warehouse.api.deps import Caller, Deps
from warehouse.api.schemas import ResultOut, SubjectOut
from warehouse.api.uploads import SessionOut
from warehouse.auth import visible_subtree
from warehouse.dossier_rules import today_local
from warehouse.errors import Problem
from warehouse.intake import OwedItem, owed_list, push_returns, split_batch
from warehouse.principal import readable
from warehouse.refusals import Refusal, TooLarge
from warehouse.sessions import direct_policy


class ItemProblem(msgspec.Struct):
    status: int
    code: str
    detail: str
    detail_en: str | None = None  # the English sentence, when detail is in Vietnamese

    @classmethod
    def of(cls, refusal: Refusal | None, vietnamese: bool = False) -> ItemProblem | None:
        if refusal is None:
            return None
        p = Problem.of(refusal)
        if vietnamese and p.code in messages_vi.DETAILS:
            return cls(status=p.status, code=p.code, detail=messages_vi.DETAILS[p.code], detail_en=p.detail)
        return cls(status=p.status, code=p.code, detail=p.detail)


class ReturnOutcomeOut(msgspec.Struct):
    """One item's fate: created, updated, unchanged or refused (``problem`` says why)."""

    index: int
    outcome: str
    dossier_code: str | None = None
    line: int | None = None  # NDJSON: the item's line
    dossier_id: UUID | None = None
    owed: bool = False
    changed: list[str] = msgspec.field(default_factory=list)
    upload: SessionOut | None = None  # the upload session for the attached result file
    file_id: UUID | None = None  # the result file, already received in an earlier push
    problem: ItemProblem | None = None
    upload_problem: ItemProblem | None = None


class IntakeOut(msgspec.Struct):
    created: int
    updated: int
    unchanged: int
    refused: int
    items: list[ReturnOutcomeOut]


class OwedPartOut(msgspec.Struct):
    code: str
    name: str | None
    kind: str  # component | result


class OwedOut(msgspec.Struct):
    dossier_id: UUID
    code: str
    unit_code: str
    procedure_code: str
    title: str | None
    subject: SubjectOut
    received_on: date
    returned_on: date | None
    owed_since: datetime | None
    result: ResultOut | None
    missing: list[OwedPartOut]

    @classmethod
    def of(cls, item: OwedItem, today: date) -> OwedOut:
        d = item.dossier
        return cls(
            dossier_id=d.id,
            code=d.code,
            unit_code=d.unit_code,
            procedure_code=d.procedure_code,
            title=d.title,
            subject=SubjectOut(d.subject_name, d.subject_id_kind, d.subject_id_number),
            received_on=d.received_on,
            returned_on=d.returned_on,
            owed_since=d.owed_since,
            result=ResultOut.of(d, today),
            missing=[OwedPartOut(code, name, kind) for code, name, kind in item.missing],
        )


class OwedPage(msgspec.Struct):
    items: list[OwedOut]
    next_cursor: str | None


def _cursor(returned_on: date, dossier_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{returned_on.isoformat()}|{dossier_id}".encode()).decode().rstrip("=")


def _after(cursor: str | None) -> tuple[date, UUID] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        day, ident = raw.split("|")
        return date.fromisoformat(day), UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(
            422, "invalid_cursor", "cursor is not one this list gave out; start from the first page."
        ) from None


class IntakeController(Controller):
    path = "/api/v1"
    tags = ["intake"]

    @post("/intake/returns", operation_id="push_returns", status_code=200, request_max_body_size=None)
    async def push(self, request: Caller, services: Deps) -> IntakeOut:
        """What the one-stop desks returned: a batch of returns as a JSON array, or one per line as
        `application/x-ndjson` (at most `WAREHOUSE_INTAKE_MAX_ITEMS` items). Each item: `dossier_code`
        (issued at reception, kept as the dossier's code), `procedure_code`, `unit_code`, `received_on`,
        `returned_on`, `subject {name, id_kind, id_number}`, `title?`, `result? {number, type_code, issuer?,
        issued_on?, valid_until?, file? {filename, size, sha256, mode}}`. One outcome per item: created,
        updated, unchanged or refused with its problem; one bad item never refuses the others. A result
        without `file` is owed until its file is uploaded; with `file`, the item carries an upload session
        (`upload`) for it. For a one-stop system's account (role one_stop), within its key's units."""
        settings = services.settings
        body = await read_body(request, settings.intake_max_body_bytes, what="batch")
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        raws = split_batch(body, media)
        if len(raws) > settings.intake_max_items:
            raise TooLarge(
                "batch_too_large",
                f"The batch has {len(raws)} returns; send at most {settings.intake_max_items} per request.",
            )
        if not raws:
            raise Problem(422, "empty_batch", "The batch has no returns. Send at least one.")
        outcomes = await push_returns(services, request.user, raws)
        vi = messages_vi.wants_vietnamese(request.headers.get("accept-language"))
        items = []
        for o in outcomes:
            upload = None
            if o.upload is not None:
                upload = SessionOut.of(o.upload, [], await direct_policy(services, request.user, o.upload))
            items.append(
                ReturnOutcomeOut(
                    index=o.index,
                    outcome="refused" if o.problem else o.outcome,
                    dossier_code=o.dossier_code,
                    line=o.line,
                    dossier_id=o.dossier_id if not o.problem else None,
                    owed=o.owed,
                    changed=o.changed,
                    upload=upload,
                    file_id=o.file_id,
                    problem=ItemProblem.of(o.problem, vi),
                    upload_problem=ItemProblem.of(o.upload_problem, vi),
                )
            )
        counts = {k: sum(1 for i in items if i.outcome == k) for k in ("created", "updated", "unchanged", "refused")}
        request.state.audit_details = counts
        return IntakeOut(items=items, **counts)

    @get("/owed", operation_id="list_owed")
    async def owed(
        self,
        request: Caller,
        services: Deps,
        unit: Annotated[str | None, QueryParameter(description="unit code: that unit and the units below")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, QueryParameter(max_length=200)] = None,
    ) -> OwedPage:
        """A unit's work list: dossiers the one-stop desks returned whose electronic result has not been
        digitized yet, the longest waiting first, each with the parts still missing. Uploading the
        result (kind result) clears it once the file passes inspection."""
        after = _after(cursor)
        scope = readable(request.user, await visible_subtree(services, request.user, unit))  # None: every unit
        rows = await owed_list(services, request.user, scope, limit=limit + 1, after=after)
        today = today_local()
        items = [OwedOut.of(r, today) for r in rows[:limit]]
        last = rows[limit - 1].dossier if len(rows) > limit else None
        next_cursor = _cursor(last.returned_on, last.id) if last is not None and last.returned_on else None
        return OwedPage(items=items, next_cursor=next_cursor)

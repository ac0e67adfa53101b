"""Returns pushed by the one-stop system (Hệ thống thông tin giải quyết TTHC) as its desks hand results
back to citizens, and the results each unit still owes.

A batch is a list of returned dossiers. Each is judged alone: one bad item is refused with its own
problem and never refuses the good ones. The good ones are recorded together in one transaction, so a
failure leaves none of them half-written. Idempotent by source and dossier code: the same return pushed
again changes nothing; with changed fields it updates the dossier and the audit trail says what changed.
A dossier entered by hand before the desk returned it (same code, same unit) is taken over.

A return whose result has no electronic file yet is owed (see migration 0010): it stays on its unit's
work list (``owed``) until a result file of it passes inspection. Where the desk attached the file,
the item opens an upload session for it in the same call (``parts`` or ``direct``); the bytes follow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import msgspec

from storage import Dossier, Unit
from storage.catalogue import ProcedureVersion, in_force, valid_until
from storage.dossiers import EDITABLE, search_text
from warehouse.context import Services
from warehouse.dossier_rules import check_dates, today_local
from warehouse.dossiers import normalise_fields
from warehouse.principal import Principal
from warehouse.refusals import Conflict, Forbidden, Invalid, Refusal, Unreadable
from warehouse.rules import PART_CODE, PROCEDURE_CODE, UNIT_CODE
from warehouse.sessions import create_session

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class IntakeSubject(msgspec.Struct, forbid_unknown_fields=True):
    name: Text
    id_kind: Short
    id_number: Short


class IntakeFile(msgspec.Struct, forbid_unknown_fields=True):
    """The electronic result the desk attached: an upload session is opened for it."""

    filename: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    size: Annotated[int, msgspec.Meta(ge=1)]
    sha256: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-fA-F]{64}$")]
    mode: Literal["parts", "direct"] = "parts"


class IntakeResult(msgspec.Struct, forbid_unknown_fields=True):
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    type_code: Annotated[str, msgspec.Meta(pattern=PART_CODE)]
    issuer: Text | None = None
    issued_on: date | None = None
    valid_until: date | None = None
    file: IntakeFile | None = None


class ReturnIn(msgspec.Struct, forbid_unknown_fields=True):
    """One dossier the desk returned: its code as issued at reception (Decree 61/2018), the procedure, the
    receiving unit, the dates, the subject and the result."""

    dossier_code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    procedure_code: Annotated[str, msgspec.Meta(pattern=PROCEDURE_CODE, max_length=64)]
    unit_code: Annotated[str, msgspec.Meta(pattern=UNIT_CODE)]
    received_on: date
    returned_on: date
    subject: IntakeSubject
    title: Text | None = None
    result: IntakeResult | None = None


@dataclass
class Outcome:
    """What became of one item: created, updated, unchanged or refused (with its problem)."""

    index: int
    outcome: str = "refused"
    dossier_code: str | None = None
    line: int | None = None
    dossier_id: UUID | None = None
    owed: bool = False
    changed: list[str] = field(default_factory=list)
    upload: Any = None  # the upload session opened for the attached result file
    file_id: UUID | None = None  # the result file already received, when the push is repeated
    problem: Refusal | None = None
    upload_problem: Refusal | None = None


@dataclass(frozen=True, slots=True)
class RawItem:
    """One item as it arrived: its JSON text, or why it could not be read; NDJSON says its line."""

    index: int
    data: bytes | None
    line: int | None = None
    error: str | None = None


def split_batch(body: bytes, media_type: str) -> list[RawItem]:
    """The items of a batch: a JSON array, or NDJSON (one object per line; a bad line is that item's
    problem, not the batch's)."""
    if media_type in ("application/x-ndjson", "application/ndjson", "application/jsonl"):
        items: list[RawItem] = []
        for number, line in enumerate(body.split(b"\n"), start=1):
            if line.strip():
                items.append(RawItem(len(items), line, line=number))
        return items
    try:
        raws = msgspec.json.decode(body, type=list[msgspec.Raw])
    except msgspec.DecodeError:
        raise Unreadable(
            "invalid_batch",
            "The batch is not a JSON array of returns. Send [{...}, {...}] as application/json, or one "
            "return per line as application/x-ndjson.",
        ) from None
    return [RawItem(i, bytes(raw)) for i, raw in enumerate(raws)]


@dataclass
class _Judged:
    out: Outcome
    item: ReturnIn
    unit: Unit  # where the dossier is kept: the receiving unit, or the unit it was merged into
    values: dict[str, Any]
    received_by: int = 0  # the receiving unit's id (a dossier entered by hand there before a merge)


def _decode(raw: RawItem) -> ReturnIn:
    if raw.data is None:
        raise Unreadable("invalid_item", raw.error or "This item could not be read.")
    if b"\\u0000" in raw.data:
        raise Invalid("invalid_value", "A text of this return contains a NUL character (\\u0000); remove it.")
    try:
        return msgspec.json.decode(raw.data, type=ReturnIn)
    except msgspec.ValidationError as exc:
        raise Invalid("invalid_item", f"This return is not valid: {exc}.") from None
    except msgspec.DecodeError:
        where = f"Line {raw.line}" if raw.line else "This item"
        raise Unreadable("invalid_json", f"{where} is not a JSON object. Send one return per line.") from None


_CODE_DATE = re.compile(r"^(?P<unit>[0-9A-Z.]{1,35})-(?P<day>\d{6})-(?P<seq>\d{4})$")


def _check_code(item: ReturnIn, unit: Unit) -> None:
    """The Decree 61/2018 code: ``<receiving unit code>-YYMMDD-XXXX``, its date the day received."""
    m = _CODE_DATE.fullmatch(item.dossier_code)
    if m is None or m["unit"] != unit.code or m["seq"] == "0000":
        raise Invalid(
            "invalid_dossier_code",
            f"Dossier code {item.dossier_code!r} is not in the legal form <receiving unit code>-YYMMDD-XXXX "
            f"(e.g. {unit.code}-{item.received_on:%y%m%d}-0001).",
        )
    if m["day"] != f"{item.received_on:%y%m%d}":
        raise Invalid(
            "dossier_code_date_mismatch",
            f"Dossier code {item.dossier_code} says it was received on {m['day']} (YYMMDD), but received_on "
            f"is {item.received_on:%d/%m/%Y}. Send the code and the date the desk issued.",
        )


def _keeper(unit: Unit, units: dict[str, Unit | None]) -> Unit | None:
    """The unit that keeps a dossier received by ``unit``: itself, or the unit it was merged into (a
    dossier received before a merge keeps the code the old unit gave it)."""
    for _ in range(10):
        if not unit.retired:
            return unit
        successor = units.get(unit.successor_code or "")
        if successor is None:
            return None
        unit = successor
    return None


def _judge(
    item: ReturnIn,
    unit: Unit | None,
    keeper: Unit | None,
    principal: Principal,
    versions: dict[str, list[ProcedureVersion]],
) -> dict[str, Any]:
    """The dossier's fields from a return, or the refusal that says what is wrong with it."""
    if unit is None:
        raise Invalid("unknown_unit", f"There is no unit {item.unit_code} in the warehouse. Check the unit code.")
    if keeper is None:
        raise Conflict("unit_retired", f"Unit {unit.code} was merged away and its successor is not known.")
    if not principal.can_write(keeper.id):
        raise Forbidden(
            "unit_not_served",
            f"This key may not push returns for unit {keeper.code}. Ask the province administrator for a key "
            "bound to that unit.",
        )
    _check_code(item, unit)
    if item.procedure_code not in versions:
        raise Invalid(
            "unknown_procedure",
            f"Procedure {item.procedure_code} is not in the warehouse's catalogue. Ask the province "
            "administrator to import it (POST /api/v1/procedures/import).",
        )
    version = in_force(versions[item.procedure_code], item.received_on)
    if version is None:
        raise Invalid(
            "procedure_not_in_force",
            f"No version of procedure {item.procedure_code} in the catalogue was in force on "
            f"{item.received_on:%d/%m/%Y}.",
        )
    today = today_local()
    if item.returned_on < item.received_on or item.returned_on > today:
        raise Invalid(
            "invalid_returned_on", "returned_on must be between received_on and today (the day the desk returned it)."
        )
    result = item.result
    until = None
    if result is not None and result.issued_on is not None and result.issued_on > today:
        raise Invalid("issued_in_future", "result.issued_on cannot be later than today.")
    if result is not None:
        kind = version.result_type(result.type_code)
        if kind is None:
            known = ", ".join(r.code for r in version.result_types) or "none"
            raise Invalid(
                "unknown_result_type",
                f"Procedure {item.procedure_code} issues no result type {result.type_code}; its result types "
                f"are: {known}.",
            )
        until = result.valid_until or valid_until(kind, result.issued_on)
    values = normalise_fields(
        {
            "procedure_code": item.procedure_code,
            "title": item.title or version.name,
            "subject_name": item.subject.name,
            "subject_id_kind": item.subject.id_kind.lower(),
            "subject_id_number": item.subject.id_number,
            "received_on": item.received_on,
            "result_number": result.number if result else None,
            "result_issued_on": result.issued_on if result else None,
            "result_issuer": result.issuer if result else None,
            "result_valid_until": until,
            "result_kind_code": result.type_code if result else None,
        }
    )
    check_dates(item.received_on, values["result_issued_on"], values["result_valid_until"])
    values["returned_on"] = item.returned_on
    return values


def _changes(existing: Dossier, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Fields whose pushed value differs from the record's: ``{field: [was, now]}``."""
    out = {}
    for name in (*EDITABLE, "returned_on"):
        was, now = getattr(existing, name), values.get(name)
        if was != now:
            out[name] = [None if was is None else str(was), None if now is None else str(now)]
    return out


async def push_returns(services: Services, principal: Principal, raws: list[RawItem]) -> list[Outcome]:
    """Record a batch of returns; one outcome per item, in the batch's order."""
    if principal.role != "one_stop":
        raise Forbidden(
            "forbidden",
            "Only a one-stop system's account (role one_stop) pushes returns. Ask the province administrator for one.",
        )
    outcomes = [Outcome(index=r.index, line=r.line) for r in raws]
    items: dict[int, ReturnIn] = {}
    for raw in raws:
        try:
            items[raw.index] = _decode(raw)
        except Refusal as refusal:
            outcomes[raw.index].problem = refusal
    units: dict[str, Unit | None] = dict(await services.units.by_codes(sorted({i.unit_code for i in items.values()})))
    for _ in range(10):  # the units merged ones went into, and theirs
        wanted = {u.successor_code for u in units.values() if u and u.retired and u.successor_code} - set(units)
        if not wanted:
            break
        units.update(await services.units.by_codes(sorted(c for c in wanted if c)))
    versions = await services.catalogue.versions(sorted({i.procedure_code for i in items.values()}))
    judged: dict[str, _Judged] = {}
    for index, item in items.items():
        out = outcomes[index]
        out.dossier_code = item.dossier_code
        unit = units.get(item.unit_code)
        keeper = _keeper(unit, units) if unit is not None else None
        try:
            values = _judge(item, unit, keeper, principal, versions)
            earlier = judged.get(item.dossier_code)
            if earlier is not None:
                raise Conflict(
                    "duplicate_in_batch",
                    f"Dossier {item.dossier_code} is also item {earlier.out.index} of this batch; send each "
                    "dossier once per batch.",
                )
        except Refusal as refusal:
            out.problem = refusal
            continue
        assert keeper is not None and unit is not None
        judged[item.dossier_code] = _Judged(out, item, keeper, values, received_by=unit.id)

    if judged:
        await _record(services, principal, judged)
    for j in judged.values():
        if j.out.problem is None and j.item.result is not None and j.item.result.file is not None:
            await _attach_file(services, principal, j)
    return outcomes


async def _record(services: Services, principal: Principal, judged: dict[str, _Judged]) -> None:
    source = principal.account.id
    pending = dict(judged)
    for _attempt in range(3):
        if not pending:
            break
        events: list[dict[str, Any]] = []
        async with services.db.transaction() as conn:
            existing = await services.dossiers.by_codes(conn, list(pending))
            new_rows = []
            for code, j in sorted(pending.items()):
                d = existing.get(code)
                if d is None:
                    dossier_id = uuid4()
                    j.out.dossier_id = dossier_id
                    new_rows.append({"id": dossier_id, "code": code, "unit_id": j.unit.id, **j.values})
                    continue
                j.out.dossier_id = d.id
                if d.source_account_id not in (None, source) or d.unit_id not in (j.unit.id, j.received_by):
                    j.out.problem = Conflict(
                        "dossier_code_taken",
                        f"Dossier code {code} is already another unit's or another system's in the warehouse.",
                    )
                    continue
                if d.state == "deleted":
                    j.out.problem = Conflict(
                        "dossier_deleted",
                        f"Dossier {code} was deleted in the warehouse; ask the unit's administrator before "
                        "pushing it again.",
                    )
                    continue
                changes = _changes(d, j.values)
                if not changes and d.source_account_id == source:
                    j.out.outcome = "unchanged"
                    j.out.owed = d.owed_since is not None
                    continue
                await services.dossiers.update_return(conn, d.id, j.values, source)
                j.out.outcome = "updated"
                j.out.changed = sorted(changes)
                events.append(
                    {
                        "action": "intake_update",
                        "account_id": source,
                        "unit_id": j.unit.id,
                        "record_type": "dossier",
                        "record_id": str(d.id),
                        "status": 200,
                        "details": {"code": code, "changed": changes, "taken_over": d.source_account_id is None},
                    }
                )
            for row in new_rows:
                row["search_text"] = search_text(row)
            inserted = await services.dossiers.insert_returns(conn, new_rows, source)
            for row in new_rows:
                if row["code"] in inserted:
                    j = pending[row["code"]]
                    j.out.outcome = "created"
                    events.append(
                        {
                            "action": "intake_create",
                            "account_id": source,
                            "unit_id": j.unit.id,
                            "record_type": "dossier",
                            "record_id": str(row["id"]),
                            "status": 201,
                            "details": {"code": row["code"]},
                        }
                    )
            await services.audit.record_many(conn, events)
        # Codes another push inserted meanwhile are judged again against what is there now.
        pending = {row["code"]: pending[row["code"]] for row in new_rows if row["code"] not in inserted}
    for j in pending.values():
        j.out.problem = Conflict("busy", "Another push recorded this dossier at the same moment; push it again.")
    owed = await services.dossiers.owed_among([j.out.dossier_id for j in judged.values() if j.out.dossier_id])
    for j in judged.values():
        if j.out.problem is None:
            j.out.owed = j.out.dossier_id in owed


async def _attach_file(services: Services, principal: Principal, j: _Judged) -> None:
    """Open (or find again) the upload session for the result file the desk attached."""
    assert j.item.result is not None and j.item.result.file is not None and j.out.dossier_id is not None
    f = j.item.result.file
    sha = f.sha256.lower()
    held = [x for x in await services.files.for_dossier(j.out.dossier_id) if x.sha256 == sha and x.kind == "result"]
    if any(x.state != "rejected" for x in held):
        j.out.file_id = next(x.id for x in held if x.state != "rejected")
        return
    try:
        session = await services.sessions.open_for(principal.account.id, j.out.dossier_id, sha)
        if session is None:
            session = await create_session(
                services,
                principal,
                {
                    "dossier_id": str(j.out.dossier_id),
                    "filename": f.filename,
                    "size": f.size,
                    "sha256": sha,
                    "kind": "result",
                    "part_code": j.item.result.type_code,
                    "mode": f.mode,
                },
            )
        j.out.upload = session
    except Refusal as refusal:
        j.out.upload_problem = refusal


@dataclass(frozen=True, slots=True)
class OwedItem:
    dossier: Dossier
    missing: list[tuple[str, str | None, str]]  # (code, name, "component" | "result")


async def owed_list(
    services: Services, principal: Principal, unit_ids: list[int] | None, *, limit: int, after: tuple[date, UUID] | None
) -> list[OwedItem]:
    """A unit's work list: returned dossiers whose result is still owed, the longest waiting first, each
    with the parts still to digitize named as the catalogue names them."""
    rows = await services.dossiers.owed(unit_ids, limit=limit, after=after)
    versions = await services.catalogue.versions(sorted({d.procedure_code for d in rows}))
    out = []
    for d in rows:
        version = in_force(versions.get(d.procedure_code, []), d.received_on)
        missing = []
        for code in d.parts_missing:
            is_result = version is not None and version.result_type(code) is not None
            missing.append((code, version.part_name(code) if version else None, "result" if is_result else "component"))
        if not any(kind == "result" for _, _, kind in missing):
            # owed means the result file has not passed inspection, whatever else is missing
            name = version.part_name(d.result_kind_code) if version and d.result_kind_code else None
            missing.insert(0, (d.result_kind_code or "", name, "result"))
        out.append(OwedItem(d, missing))
    return out

"""Creating, changing and finding dossiers within the caller's scope."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

from storage import Dossier, Unit, nfc
from storage.dossiers import EDITABLE
from warehouse.context import Services
from warehouse.dossier_rules import check_dates, check_identifier, format_dossier_code, today_local
from warehouse.principal import Principal, visible_unit
from warehouse.refusals import Conflict, Forbidden, Invalid, NotFound, Refusal


def _not_found(dossier_id: UUID | str) -> Refusal:
    return NotFound("dossier_not_found", f"There is no dossier {dossier_id} that you may see.")


async def dossier_for_read(services: Services, principal: Principal, dossier_id: UUID) -> Dossier:
    dossier = await services.dossiers.get(dossier_id, scope=principal.read_scope)
    if dossier is None:
        raise _not_found(dossier_id)
    return dossier


async def dossier_for_write(services: Services, principal: Principal, dossier_id: UUID) -> Dossier:
    dossier = await dossier_for_read(services, principal, dossier_id)
    if not principal.can_write(dossier.unit_id):
        raise Forbidden("forbidden", f"Your account may read dossier {dossier.code} but not change it.")
    return dossier


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        value = nfc(value).strip()
        return value or None
    return value


def normalise_fields(values: dict[str, Any]) -> dict[str, Any]:
    """NFC-normalised, trimmed values, with the identifier and the dates checked."""
    out = {k: _clean(v) for k, v in values.items()}
    if "subject_id_kind" in out or "subject_id_number" in out:
        out["subject_id_number"] = check_identifier(out["subject_id_kind"], out["subject_id_number"] or "")
    if out.get("result_number") is None and any(
        out.get(k) for k in ("result_issued_on", "result_issuer", "result_valid_until")
    ):
        raise Invalid("result_number_missing", "A result needs its number (result.number).")
    return out


async def check_code_of(services: Services, unit: Unit, code: str) -> None:
    """A code given by the client is one of this unit's (``<unit code>-...``, or a predecessor's for
    records it inherited): no unit can take another's codes, and a taken code tells only of the
    caller's own unit."""
    prefixes = [unit.code]
    for unit_id in await services.own_units(unit.id):
        if unit_id != unit.id and (predecessor := await services.units.get(unit_id)) is not None:
            prefixes.append(predecessor.code)
    if not any(code.startswith(f"{prefix}-") for prefix in prefixes):
        raise Invalid(
            "dossier_code_of_another_unit",
            f"A dossier code of unit {unit.code} starts with '{unit.code}-' (<unit code>-YYMMDD-XXXX). "
            "Leave the code out to have the next one generated.",
        )


async def create_dossier(
    services: Services, principal: Principal, unit_code: str | None, code: str | None, values: dict[str, Any]
) -> Dossier:
    unit_code = unit_code or principal.account.unit_code
    unit = await visible_unit(services, principal, unit_code)
    if not principal.can_write(unit.id):
        raise Forbidden("forbidden", f"Your account may not create dossiers for unit {unit.code}.")
    if unit.retired:
        raise Conflict(
            "unit_retired", f"Unit {unit.code} was merged into {unit.successor_code}; file the dossier there."
        )

    values = normalise_fields(values)
    received_on: date = values.get("received_on") or today_local()
    values["received_on"] = received_on
    check_dates(received_on, values.get("result_issued_on"), values.get("result_valid_until"))

    if code is not None:
        await check_code_of(services, unit, code)
    dossier_id = uuid4()
    async with services.db.transaction() as conn:
        if code is None:
            sequence = await services.dossiers.next_sequence(conn, unit.id, received_on)
            code = format_dossier_code(unit.code, received_on, sequence)
        values["code"] = code
        inserted = await services.dossiers.insert(
            conn, dossier_id=dossier_id, unit_id=unit.id, created_by=principal.account.id, values=values
        )
    if not inserted:
        raise Conflict("dossier_code_taken", f"A dossier with code {code} already exists.")
    created = await services.dossiers.get(dossier_id, scope=None)
    assert created is not None
    return created


async def update_dossier(
    services: Services, principal: Principal, dossier_id: UUID, changes: dict[str, Any]
) -> Dossier:
    dossier = await dossier_for_write(services, principal, dossier_id)
    current = {k: getattr(dossier, k) for k in EDITABLE}
    full = normalise_fields({**current, **changes})
    if full["received_on"] is None:
        raise Invalid("received_on_missing", "received_on cannot be removed from a dossier.")
    if full["procedure_code"] is None or full["subject_name"] is None:
        raise Invalid("required_field_missing", "procedure_code and subject.name cannot be removed.")
    check_dates(full["received_on"], full["result_issued_on"], full["result_valid_until"])
    async with services.db.transaction() as conn:
        await services.dossiers.update(conn, dossier.id, full)
    updated = await services.dossiers.get(dossier.id, scope=None)
    assert updated is not None
    return updated

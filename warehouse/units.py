"""Changing the unit tree: new units, the real commune list, and effective-dated merges and moves.

Nothing is lost in a change: a merged unit stays (retired, naming its successor) with all its
records, and the successor's accounts see them; a move is recorded so the tree as it stood on any
date can be read back.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date

from storage import Unit
from warehouse.context import Services
from warehouse.dossier_rules import today_local
from warehouse.principal import Principal, require_province_admin
from warehouse.refusals import Conflict, Invalid, NotFound, TooLarge

UNIT_CODE_PATTERN = r"^[0-9A-Z]+(\.[0-9A-Z]+)*$"
# Which level may sit under which.
PARENT_LEVELS = {
    "department": ("province",),
    "district": ("province",),
    "commune": ("district", "province"),
}
MAX_IMPORT_ROWS = 5000


@dataclass(frozen=True, slots=True)
class ImportReport:
    created: int
    updated: int


async def _unit(services: Services, code: str, what: str = "unit") -> Unit:
    unit = await services.units.get_by_code(code.strip().upper())
    if unit is None:
        raise NotFound("unit_not_found", f"There is no {what} with code {code!r}.")
    return unit


def _check_parent(level: str, parent: Unit | None, code: str) -> None:
    if level == "province":
        raise Invalid("invalid_level", "There is one province unit; it is seeded, not created.")
    allowed = PARENT_LEVELS.get(level)
    if allowed is None:
        raise Invalid("invalid_level", "level must be department, district or commune.")
    if parent is None or parent.level not in allowed:
        raise Invalid("invalid_parent", f"A {level} ({code}) must sit under a {' or '.join(allowed)}.")
    if parent.retired:
        raise Conflict("unit_retired", f"Unit {parent.code} was merged into {parent.successor_code}.")


async def create_unit(
    services: Services, principal: Principal, *, code: str, name: str, level: str, parent_code: str
) -> Unit:
    require_province_admin(principal)
    if await services.units.get_by_code(code) is not None:
        raise Conflict("unit_code_taken", f"A unit with code {code} already exists.")
    parent = await _unit(services, parent_code, "parent unit")
    _check_parent(level, parent, code)
    async with services.db.transaction() as conn:
        await services.units.create_or_update(conn, code=code, name=name.strip(), level=level, parent_id=parent.id)
    services.forget_subtrees()
    return await _unit(services, code)


async def import_units(services: Services, principal: Principal, text: str) -> ImportReport:
    """Rows of ``code,name,level,parent_code``: new codes are created, known ones (the placeholder
    communes, say) take the row's name, level and parent. All rows are checked before any is written."""
    require_province_admin(principal)

    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise Invalid(
            "empty_import", "The file has no rows. The first line names the columns: code,name,level,parent_code."
        )
    if len(rows) > MAX_IMPORT_ROWS:
        raise TooLarge("import_too_large", f"Import at most {MAX_IMPORT_ROWS} units at a time.")
    missing = {"code", "name", "level", "parent_code"} - set(rows[0])
    if missing:
        raise Invalid("missing_columns", f"The file lacks the columns: {', '.join(sorted(missing))}.")
    errors: list[str] = []
    seen: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        code = (row["code"] or "").strip().upper()
        if not re.fullmatch(UNIT_CODE_PATTERN, code) or len(code) > 35:
            errors.append(f"line {line}: code {code!r} is not an organisation identifier ([0-9A-Z.], up to 35)")
        if not (row["name"] or "").strip():
            errors.append(f"line {line}: the name is empty")
        if (row["level"] or "").strip() not in PARENT_LEVELS:
            errors.append(f"line {line}: level must be department, district or commune")
        if code in seen:
            errors.append(f"line {line}: code {code} appears twice")
        seen[code] = (row["level"] or "").strip()
    # Parents may be in the file itself or in the warehouse already.
    for line, row in enumerate(rows, start=2):
        parent_code = (row["parent_code"] or "").strip().upper()
        level = (row["level"] or "").strip()
        parent = await services.units.get_by_code(parent_code)
        parent_level = seen.get(parent_code) or (parent.level if parent else None)
        if parent_level is None:
            errors.append(f"line {line}: parent {parent_code!r} is neither in the file nor in the warehouse")
        elif level in PARENT_LEVELS and parent_level not in PARENT_LEVELS[level]:
            errors.append(f"line {line}: a {level} cannot sit under a {parent_level}")
    if errors:
        raise Invalid("invalid_rows", f"{len(errors)} rows are wrong; nothing was imported.", extra={"errors": errors})
    created = updated = 0
    pending = list(rows)
    async with services.db.transaction() as conn:
        # Parents first: keep passing over the rows until each one's parent exists.
        while pending:
            progressed = []
            for row in pending:
                parent_id = await services.units.id_of(conn, (row["parent_code"] or "").strip().upper())
                if parent_id is None:
                    continue
                _, was_created = await services.units.create_or_update(
                    conn,
                    code=row["code"].strip().upper(),
                    name=row["name"].strip(),
                    level=row["level"].strip(),
                    parent_id=parent_id,
                )
                created += was_created
                updated += not was_created
                progressed.append(row)
            if not progressed:
                raise Invalid("invalid_rows", "Some rows' parents form a loop; nothing was imported.")
            pending = [r for r in pending if r not in progressed]
    services.forget_subtrees()
    return ImportReport(created=created, updated=updated)


def _check_date(effective_on: date) -> None:
    if effective_on > today_local():
        raise Invalid(
            "effective_in_future", "effective_on cannot be in the future; record the change on the day it applies."
        )


async def merge_unit(services: Services, principal: Principal, code: str, *, into: str, effective_on: date) -> Unit:
    """Retire ``code`` from ``effective_on``; ``into`` inherits its records and its current sub-units."""
    require_province_admin(principal)
    _check_date(effective_on)
    unit, successor = await _unit(services, code), await _unit(services, into, "successor unit")
    if unit.retired:
        raise Conflict("unit_retired", f"Unit {unit.code} was already merged into {unit.successor_code}.")
    if successor.retired or successor.id == unit.id or unit.level == "province":
        raise Invalid("invalid_merge", f"Unit {unit.code} cannot be merged into {successor.code}.")
    if successor.id in await services.units.subtree_ids(unit.id):
        raise Invalid("invalid_merge", f"{successor.code} lies under {unit.code}; merge the other way round.")
    async with services.db.transaction() as conn:
        for child in await services.units.children(conn, unit.id):
            await services.units.record_change(
                conn,
                unit_id=child,
                kind="move",
                effective_on=effective_on,
                by=principal.account.id,
                old_parent_id=unit.id,
                new_parent_id=successor.id,
            )
            await services.units.set_parent(conn, child, successor.id)
        await services.units.record_change(
            conn,
            unit_id=unit.id,
            kind="merge",
            effective_on=effective_on,
            by=principal.account.id,
            successor_id=successor.id,
        )
        await services.units.retire(conn, unit.id, successor_id=successor.id, effective_on=effective_on)
    services.forget_subtrees()
    return await _unit(services, unit.code)


async def move_unit(services: Services, principal: Principal, code: str, *, parent: str, effective_on: date) -> Unit:
    """Put ``code`` under a new parent from ``effective_on`` (the 2025 reform: communes under the province)."""
    require_province_admin(principal)
    _check_date(effective_on)
    unit, new_parent = await _unit(services, code), await _unit(services, parent, "parent unit")
    if unit.retired:
        raise Conflict("unit_retired", f"Unit {unit.code} was merged into {unit.successor_code}.")
    _check_parent(unit.level, new_parent, unit.code)
    if new_parent.id in await services.units.subtree_ids(unit.id):
        raise Invalid("invalid_move", f"{new_parent.code} lies under {unit.code}.")
    if unit.parent_id == new_parent.id:
        return unit
    async with services.db.transaction() as conn:
        await services.units.record_change(
            conn,
            unit_id=unit.id,
            kind="move",
            effective_on=effective_on,
            by=principal.account.id,
            old_parent_id=unit.parent_id,
            new_parent_id=new_parent.id,
        )
        await services.units.set_parent(conn, unit.id, new_parent.id)
    services.forget_subtrees()
    return await _unit(services, unit.code)

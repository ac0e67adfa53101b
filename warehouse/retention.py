"""Keeping records: retention classes, legal holds, undoing a delete, and the reviewed purge.

Nothing here removes anything by itself: a purge is proposed by one administrator, approved by
another, and run when someone asks; each dossier is checked again when it runs (a hold placed
since, a result found still valid) and the outcome of each is kept with the purge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from storage import Dossier, Unit
from storage.retention import CLASS, HeldError, Hold, Purge, RetentionOf, longer
from warehouse.context import Services
from warehouse.dossiers import dossier_for_read
from warehouse.principal import Principal, require_admin
from warehouse.refusals import Conflict, Forbidden, Invalid, NotFound

log = logging.getLogger(__name__)


def check_class(cls: str) -> str:
    if not CLASS.match(cls):
        raise Invalid(
            "invalid_retention",
            f"{cls!r} is not a retention class: write 'permanent' or a number of years, e.g. '10y'.",
        )
    return cls


def _admin_of(principal: Principal, unit_id: int, what: str) -> None:
    require_admin(principal)
    if not principal.can_write(unit_id):
        raise Forbidden("forbidden", f"Only an administrator of its unit may {what}.")


async def deleted_or_not(services: Services, principal: Principal, dossier_id: UUID) -> Dossier:
    """The dossier, deleted or not, if the caller may read it (404 otherwise)."""
    dossier = await services.dossiers.get(dossier_id, scope=principal.read_scope, include_deleted=True)
    if dossier is None:
        raise NotFound("dossier_not_found", f"There is no dossier {dossier_id} that you may see.")
    return dossier


async def retention_of(services: Services, dossier_id: UUID) -> RetentionOf:
    found = await services.retention.of(dossier_id)
    assert found is not None, dossier_id
    return found


async def set_dossier_retention(
    services: Services, principal: Principal, dossier_id: UUID, cls: str | None
) -> RetentionOf:
    dossier = await deleted_or_not(services, principal, dossier_id)
    _admin_of(principal, dossier.unit_id, "change how long a dossier is kept")
    now = await retention_of(services, dossier.id)
    if cls is not None and longer(check_class(cls), now.floor) != cls:
        raise Invalid(
            "retention_below_class",
            f"A dossier may be kept longer than its class, not shorter: at least {now.floor} applies to it "
            "(from the catalogue, its unit or the warehouse's default).",
            extra={"floor": now.floor},
        )
    await services.retention.set_own(dossier.id, cls)
    return await retention_of(services, dossier.id)


async def unit_retention(services: Services, unit: Unit) -> dict[str, Any]:
    own, above = await services.retention.unit_class(unit.id)
    return {
        "unit": unit.code,
        "retention": own,
        "above": above,
        "applied": longer(own, above) or services.settings.retention_default,
    }


async def set_unit_retention(services: Services, principal: Principal, unit: Unit, cls: str | None) -> dict[str, Any]:
    _admin_of(principal, unit.id, "set how long a unit's records are kept")
    _own, above = await services.retention.unit_class(unit.id)
    if cls is not None and above is not None and longer(check_class(cls), above) != cls:
        raise Invalid(
            "retention_below_class",
            f"A unit may keep its records longer than the units above it, not shorter: {above} applies from above.",
            extra={"floor": above},
        )
    if cls is not None:
        check_class(cls)
    await services.retention.set_unit_class(unit.id, cls)
    return await unit_retention(services, unit)


# -- legal holds ----------------------------------------------------------------------------------


async def hold_dossier(services: Services, principal: Principal, dossier_id: UUID, reason: str) -> Hold:
    dossier = await deleted_or_not(services, principal, dossier_id)
    _admin_of(principal, dossier.unit_id, "place a legal hold on a dossier")
    hold = await services.retention.place_hold(
        dossier_id=dossier.id, unit_id=None, reason=reason, by=principal.account.id
    )
    if hold is None:
        raise Conflict("already_on_hold", f"Dossier {dossier.code} is already under a legal hold.")
    return hold


async def hold_unit(services: Services, principal: Principal, unit: Unit, reason: str) -> Hold:
    _admin_of(principal, unit.id, "place a legal hold on a unit")
    hold = await services.retention.place_hold(dossier_id=None, unit_id=unit.id, reason=reason, by=principal.account.id)
    if hold is None:
        raise Conflict("already_on_hold", f"Unit {unit.code} is already under a legal hold.")
    return hold


async def release(services: Services, principal: Principal, unit_id: int, hold: Hold | None, what: str) -> None:
    _admin_of(principal, unit_id, "release a legal hold")
    if hold is None:
        raise NotFound("hold_not_found", f"{what} is under no legal hold.")
    await services.retention.release_hold(hold.id, principal.account.id)


# -- undoing a delete -------------------------------------------------------------------------------


async def restore_dossier(services: Services, principal: Principal, dossier_id: UUID) -> Dossier:
    dossier = await deleted_or_not(services, principal, dossier_id)
    _admin_of(principal, dossier.unit_id, "undo the deletion of a dossier")
    if dossier.state != "deleted":
        raise Conflict("not_deleted", f"Dossier {dossier.code} is not deleted.")
    days = services.settings.delete_undo_days
    if not await services.retention.undelete(dossier.id, within_seconds=days * 86400):
        raise Conflict(
            "undo_window_passed",
            f"Dossier {dossier.code} was deleted more than {days:g} days ago; it is kept, but only a purge "
            "can act on it now.",
        )
    return await dossier_for_read(services, principal, dossier.id)


async def restore_file(services: Services, principal: Principal, file_id: UUID) -> None:
    owner = await services.retention.file_owner(file_id)
    if owner is None or not principal.can_read(owner[0]):
        raise NotFound("file_not_found", f"There is no file {file_id} that you may see.")
    unit_id, state = owner
    _admin_of(principal, unit_id, "undo the deletion of a file")
    if state != "deleted":
        raise Conflict("not_deleted", "The file is not deleted.")
    days = services.settings.delete_undo_days
    if not await services.retention.undelete_file(file_id, within_seconds=days * 86400):
        raise Conflict("undo_window_passed", f"The file was deleted more than {days:g} days ago; it is kept.")


def held_refusal(what: str) -> Conflict:
    return Conflict(
        "on_legal_hold",
        f"{what} is under a legal hold: nothing of it may be deleted until an administrator releases it.",
    )


async def delete_dossier(services: Services, dossier: Dossier) -> None:
    try:
        await services.dossiers.mark_deleted(dossier.id)
    except HeldError:
        raise held_refusal(f"Dossier {dossier.code}") from None


async def delete_file(services: Services, file_id: UUID) -> None:
    try:
        await services.files.mark_deleted(file_id)
    except HeldError:
        raise held_refusal("The file's dossier") from None


# -- purges -----------------------------------------------------------------------------------------


async def propose_purge(services: Services, principal: Principal, reason: str, dossier_ids: list[UUID]) -> Purge:
    require_admin(principal)
    ids = sorted(set(dossier_ids))
    if not ids:
        raise Invalid("no_dossiers", "Name the dossiers to purge (see GET /api/v1/purges/candidates).")
    if len(ids) > services.settings.purge_max_dossiers:
        raise Invalid(
            "too_many_dossiers", f"A purge takes at most {services.settings.purge_max_dossiers} dossiers; split it."
        )
    units = set()
    for dossier_id in ids:
        dossier = await deleted_or_not(services, principal, dossier_id)
        _admin_of(principal, dossier.unit_id, "purge a dossier")
        units.add(dossier.unit_id)
    refused = sorted(set(ids) - await services.retention.purgeable(services.db.pool, ids))
    if refused:
        raise Conflict(
            "not_purgeable",
            f"{len(refused)} of these dossiers may not be purged: their retention has not passed, a legal hold "
            "covers them, a result of theirs is still valid, or they are purged already.",
            extra={"dossier_ids": [str(i) for i in refused]},
        )
    return await services.retention.propose(
        reason=reason, dossier_ids=ids, unit_ids=sorted(units), by=principal.account.id
    )


async def purge_for(services: Services, principal: Principal, purge_id: UUID) -> Purge:
    require_admin(principal)
    purge = await services.retention.purge(purge_id)
    if purge is None or not all(principal.can_write(u) for u in purge.unit_ids):
        raise NotFound("purge_not_found", "There is no purge with this id that you may see.")
    return purge


async def approve_purge(services: Services, principal: Principal, purge: Purge) -> Purge:
    if purge.state != "proposed":
        raise Conflict("purge_not_proposed", f"The purge is {purge.state}; only a proposed purge is approved.")
    if purge.proposed_by == principal.account.id:
        raise Conflict("purge_needs_second_admin", "Another administrator must approve the purge you proposed.")
    if not await services.retention.approve(purge.id, principal.account.id):
        raise Conflict("purge_not_proposed", "The purge changed meanwhile; read it again.")
    return await purge_for(services, principal, purge.id)


@dataclass(frozen=True, slots=True)
class PurgeRun:
    purge: Purge
    purged: int
    kept: int


async def run_purge(services: Services, principal: Principal, purge: Purge) -> PurgeRun:
    """Purge each dossier that may still be purged: its records marked purged (kept, with their codes
    and checksums) and its bytes removed from the store where no kept record needs them."""
    if purge.state != "approved":
        raise Conflict(
            "purge_not_approved", f"The purge is {purge.state}; it runs once another administrator approved it."
        )
    retention = services.retention
    outcome: dict[str, Any] = {}
    for dossier_id in purge.dossier_ids:
        async with services.db.transaction() as conn:
            if dossier_id not in await retention.purgeable(conn, [dossier_id]):
                outcome[str(dossier_id)] = {"purged": False, "why": "no longer purgeable (a hold, or a valid result)"}
                continue
            removal = await retention.removal(conn, dossier_id)
            try:
                await retention.mark_purged(conn, dossier_id, removal)
            except HeldError:
                outcome[str(dossier_id)] = {"purged": False, "why": "under a legal hold"}
                continue
        left = []
        for key in removal.object_keys:  # after the records say purged: no record points at missing bytes
            try:
                await services.objects.delete(key)
            except Exception as exc:  # an object lock, or the store away: kept, and said
                log.warning("purge %s: %s stays in the store: %s", purge.id, key, exc)
                left.append(key)
        outcome[str(dossier_id)] = {"purged": True, "objects_removed": len(removal.object_keys) - len(left)}
        if left:
            outcome[str(dossier_id)]["objects_left"] = left
    await retention.finish(purge.id, principal.account.id, outcome)
    done = await purge_for(services, principal, purge.id)
    purged = sum(1 for o in outcome.values() if o["purged"])
    return PurgeRun(done, purged, len(outcome) - purged)

"""Keeping records over HTTP: retention classes, legal holds, undoing a delete, and reviewed purges."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from storage.retention import Hold, Purge, RetentionOf
from warehouse.api.deps import Caller, Deps
from warehouse.api.schemas import DossierOut
from warehouse.auth import admins_only, visible_subtree, visible_unit
from warehouse.dossier_rules import today_local
from warehouse.retention import (
    approve_purge,
    deleted_or_not,
    hold_dossier,
    hold_unit,
    propose_purge,
    purge_for,
    release,
    restore_dossier,
    restore_file,
    retention_of,
    run_purge,
    set_dossier_retention,
    set_unit_retention,
    unit_retention,
)

RetentionClass = Annotated[str, msgspec.Meta(pattern=r"^(permanent|[1-9][0-9]{0,2}y)$", max_length=10)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=1000, pattern=r"\S")]


class RetentionOut(msgspec.Struct):
    """`applied`: the class that applies (`permanent`, or years from the day the dossier was received);
    `floor`: what the catalogue, its units or the default say (the dossier may only lengthen it); `own`:
    the dossier's own, if set; `retain_until` (null: for ever); `held`: a legal hold covers it."""

    applied: str
    floor: str
    own: str | None
    retain_until: date | None
    held: bool

    @classmethod
    def of(cls, r: RetentionOf) -> RetentionOut:
        return cls(r.applied, r.floor, r.own, r.retain_until, r.held)


class RetentionIn(msgspec.Struct, forbid_unknown_fields=True):
    """A class (`permanent` or years, e.g. `10y`); null clears what was set here."""

    retention: RetentionClass | None


class UnitRetentionOut(msgspec.Struct):
    unit: str
    retention: str | None  # what the unit itself sets
    above: str | None  # the nearest class set above it
    applied: str  # what its records get from the units (the catalogue may lengthen it)


class HoldIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class HoldOut(msgspec.Struct):
    id: UUID
    reason: str
    placed_by: int
    placed_at: datetime

    @classmethod
    def of(cls, h: Hold) -> HoldOut:
        return cls(h.id, h.reason, h.placed_by, h.placed_at)


class CandidateOut(msgspec.Struct):
    id: UUID
    code: str
    state: str
    received_on: date
    retention: str
    retain_until: date


class CandidatePage(msgspec.Struct):
    items: list[CandidateOut]
    next: UUID | None


class PurgeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason
    dossier_ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=100_000)]


class PurgeOut(msgspec.Struct):
    """`proposed` by one administrator, `approved` by another, `done` once run (`outcome`, per dossier:
    purged or why not, the objects removed and any left in the store), or `cancelled`."""

    id: UUID
    state: str
    reason: str
    dossier_ids: list[UUID]
    proposed_by: int
    proposed_at: datetime
    approved_by: int | None
    approved_at: datetime | None
    done_by: int | None
    done_at: datetime | None
    outcome: dict[str, Any] | None

    @classmethod
    def of(cls, p: Purge) -> PurgeOut:
        return msgspec.convert(p, cls, from_attributes=True)


class KeepingController(Controller):
    path = "/api/v1"
    tags = ["keeping records"]

    @get("/dossiers/{dossier_id:uuid}/retention", operation_id="get_dossier_retention")
    async def get_retention(self, dossier_id: FromPath[UUID], request: Caller, services: Deps) -> RetentionOut:
        """How long the dossier is kept, why, and whether a legal hold covers it."""
        dossier = await deleted_or_not(services, request.user, dossier_id)
        return RetentionOut.of(await retention_of(services, dossier.id))

    @put("/dossiers/{dossier_id:uuid}/retention", operation_id="set_dossier_retention", guards=[admins_only])
    async def set_retention(
        self, dossier_id: FromPath[UUID], data: JSONBody[RetentionIn], request: Caller, services: Deps
    ) -> RetentionOut:
        """Keep the dossier longer than its class (administrators of its unit); never shorter (422
        `retention_below_class`)."""
        return RetentionOut.of(await set_dossier_retention(services, request.user, dossier_id, data.retention))

    @get("/units/{code:str}/retention", operation_id="get_unit_retention")
    async def get_unit(self, code: FromPath[str], request: Caller, services: Deps) -> UnitRetentionOut:
        """The class the unit sets for its records and the units below it, and what applies from above."""
        unit = await visible_unit(services, request.user, code)
        return msgspec.convert(await unit_retention(services, unit), UnitRetentionOut)

    @put("/units/{code:str}/retention", operation_id="set_unit_retention", guards=[admins_only])
    async def set_unit(
        self, code: FromPath[str], data: JSONBody[RetentionIn], request: Caller, services: Deps
    ) -> UnitRetentionOut:
        """Set the unit's class (administrators of the unit): at least what applies from above."""
        unit = await visible_unit(services, request.user, code)
        return msgspec.convert(await set_unit_retention(services, request.user, unit, data.retention), UnitRetentionOut)

    @put(
        "/dossiers/{dossier_id:uuid}/hold",
        operation_id="hold_dossier",
        guards=[admins_only],
        status_code=HTTP_201_CREATED,
    )
    async def hold(
        self, dossier_id: FromPath[UUID], data: JSONBody[HoldIn], request: Caller, services: Deps
    ) -> HoldOut:
        """A legal hold: the dossier and its files cannot be deleted or purged until it is released."""
        return HoldOut.of(await hold_dossier(services, request.user, dossier_id, data.reason))

    @delete(
        "/dossiers/{dossier_id:uuid}/hold",
        operation_id="release_dossier_hold",
        guards=[admins_only],
        status_code=HTTP_204_NO_CONTENT,
    )
    async def release_hold(self, dossier_id: FromPath[UUID], request: Caller, services: Deps) -> None:
        """Release the dossier's legal hold (administrators of its unit)."""
        dossier = await deleted_or_not(services, request.user, dossier_id)
        hold = await services.retention.active_hold(dossier_id=dossier.id)
        await release(services, request.user, dossier.unit_id, hold, f"Dossier {dossier.code}")

    @put("/units/{code:str}/hold", operation_id="hold_unit", guards=[admins_only], status_code=HTTP_201_CREATED)
    async def hold_unit(self, code: FromPath[str], data: JSONBody[HoldIn], request: Caller, services: Deps) -> HoldOut:
        """A legal hold on every record of the unit and the units below it."""
        unit = await visible_unit(services, request.user, code)
        return HoldOut.of(await hold_unit(services, request.user, unit, data.reason))

    @delete(
        "/units/{code:str}/hold",
        operation_id="release_unit_hold",
        guards=[admins_only],
        status_code=HTTP_204_NO_CONTENT,
    )
    async def release_unit(self, code: FromPath[str], request: Caller, services: Deps) -> None:
        """Release the unit's legal hold (administrators of the unit)."""
        unit = await visible_unit(services, request.user, code)
        hold = await services.retention.active_hold(unit_id=unit.id)
        await release(services, request.user, unit.id, hold, f"Unit {unit.code}")

    @post(
        "/dossiers/{dossier_id:uuid}/restore",
        operation_id="restore_dossier",
        guards=[admins_only],
        status_code=HTTP_200_OK,
    )
    async def restore(self, dossier_id: FromPath[UUID], request: Caller, services: Deps) -> DossierOut:
        """Undo a dossier's deletion, within `WAREHOUSE_DELETE_UNDO_DAYS`; codes its deletion withdrew are
        valid again."""
        dossier = await restore_dossier(services, request.user, dossier_id)
        return DossierOut.of(dossier, today=today_local())

    @post(
        "/files/{file_id:uuid}/restore",
        operation_id="restore_file",
        guards=[admins_only],
        status_code=HTTP_204_NO_CONTENT,
    )
    async def restore_one_file(self, file_id: FromPath[UUID], request: Caller, services: Deps) -> None:
        """Undo a file's deletion, within `WAREHOUSE_DELETE_UNDO_DAYS`."""
        await restore_file(services, request.user, file_id)


class PurgesController(Controller):
    path = "/api/v1/purges"
    tags = ["keeping records"]

    @get("/candidates", operation_id="list_purge_candidates", guards=[admins_only])
    async def candidates(
        self,
        request: Caller,
        services: Deps,
        unit: Annotated[str | None, QueryParameter(max_length=35)] = None,
        after: FromQuery[UUID | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
    ) -> CandidatePage:
        """Dossiers whose retention has passed, with no legal hold and no result still valid, in the
        units the caller administers. Nothing is purged until a purge is proposed, approved and run."""
        units = await visible_subtree(services, request.user, unit)
        scope = request.user.write_scope
        if units is None:
            units = scope
        elif scope is not None:
            units = [u for u in units if u in set(scope)]
        rows = await services.retention.candidates(units=units, limit=limit, after=after)
        items = [msgspec.convert(r, CandidateOut, from_attributes=True) for r in rows]
        return CandidatePage(items=items, next=rows[-1].id if len(rows) == limit else None)

    @post("/", operation_id="propose_purge", guards=[admins_only], status_code=HTTP_201_CREATED)
    async def propose(self, data: JSONBody[PurgeIn], request: Caller, services: Deps) -> PurgeOut:
        """Propose purging these dossiers (each must be a candidate; 409 `not_purgeable` lists those that
        are not). Another administrator approves it; then it is run."""
        return PurgeOut.of(await propose_purge(services, request.user, data.reason, data.dossier_ids))

    @get("/", operation_id="list_purges", guards=[admins_only])
    async def list_purges(self, request: Caller, services: Deps) -> list[PurgeOut]:
        """Purges of the caller's units, newest first."""
        return [PurgeOut.of(p) for p in await services.retention.purges(units=request.user.write_scope, limit=200)]

    @get("/{purge_id:uuid}", operation_id="get_purge", guards=[admins_only])
    async def get_one(self, purge_id: FromPath[UUID], request: Caller, services: Deps) -> PurgeOut:
        """A purge: its dossiers, who proposed, approved and ran it, and what became of each dossier."""
        return PurgeOut.of(await purge_for(services, request.user, purge_id))

    @post("/{purge_id:uuid}/approve", operation_id="approve_purge", guards=[admins_only], status_code=HTTP_200_OK)
    async def approve(self, purge_id: FromPath[UUID], request: Caller, services: Deps) -> PurgeOut:
        """Approve a purge another administrator proposed."""
        purge = await purge_for(services, request.user, purge_id)
        return PurgeOut.of(await approve_purge(services, request.user, purge))

    @post("/{purge_id:uuid}/run", operation_id="run_purge", guards=[admins_only], status_code=HTTP_200_OK)
    async def run(self, purge_id: FromPath[UUID], request: Caller, services: Deps) -> PurgeOut:
        """Run an approved purge: each dossier still purgeable is marked purged (its record, codes and
        checksums kept) and its bytes removed where no kept record needs them."""
        purge = await purge_for(services, request.user, purge_id)
        done = await run_purge(services, request.user, purge)
        request.state.audit_details = {"purged": done.purged, "kept": done.kept}
        return PurgeOut.of(done.purge)

    @post("/{purge_id:uuid}/cancel", operation_id="cancel_purge", guards=[admins_only], status_code=HTTP_200_OK)
    async def cancel(self, purge_id: FromPath[UUID], request: Caller, services: Deps) -> PurgeOut:
        """Cancel a purge that has not run (proposed or approved)."""
        purge = await purge_for(services, request.user, purge_id)
        await services.retention.cancel(purge.id)
        return PurgeOut.of(await purge_for(services, request.user, purge.id))

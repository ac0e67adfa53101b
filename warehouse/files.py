"""Use cases of a stored file that are neither its upload nor its keeping: finding it within the
caller's scope, and sending it back through inspection."""

from __future__ import annotations

from uuid import UUID

from storage import File
from warehouse.context import Services
from warehouse.principal import Principal, require_admin
from warehouse.refusals import Forbidden, NotFound


async def file_for_read(services: Services, principal: Principal, file_id: UUID) -> File:
    f = await services.files.get(file_id, scope=principal.read_scope)
    if f is None:
        raise NotFound("file_not_found", f"There is no file {file_id} that you may see.")
    return f


async def reprocess_file(services: Services, principal: Principal, file_id: UUID) -> File:
    """Send a file through inspection and OCR again (administrators of its unit): after a fault parked it
    as failed, or after the scan standard's settings changed. The original bytes are not touched."""
    require_admin(principal)
    f = await file_for_read(services, principal, file_id)
    dossier = await services.dossiers.get(f.dossier_id, scope=None)
    if dossier is None or not principal.can_write(dossier.unit_id):
        raise Forbidden("forbidden", "Your account may read this file but not send it back for inspection.")
    again = await services.files.reprocess(f.id)
    if again is None:
        raise NotFound("file_not_found", f"There is no file {file_id} that you may see.")
    return again

"""Resumable uploads: create a session, send parts, ask what arrived, complete or abort."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from storage.sessions import UploadSession
from warehouse.api.deps import Caller, Deps
from warehouse.api.schemas import FileOut
from warehouse.auth import require_writer
from warehouse.context import Services
from warehouse.fair_share import metered, upload_slot
from warehouse.refusals import Refusal
from warehouse.sessions import abort, complete, create_session, direct_policy, open_session, put_part
from warehouse.uploads import content_length, drain


class PartOut(msgspec.Struct):
    n: int
    size: int
    sha256: str


class SessionOut(msgspec.Struct):
    id: UUID
    dossier_id: UUID
    filename: str
    kind: str
    part_code: str | None
    size: int
    sha256: str
    mode: str
    part_size: int
    parts: int
    state: str
    expires_at: str
    received: list[PartOut]
    missing: list[int]
    file_id: UUID | None = None
    failure: str | None = None
    direct: dict[str, Any] | None = None

    @classmethod
    def of(cls, s: UploadSession, received: list[PartOut], direct: dict[str, Any] | None = None) -> SessionOut:
        have = {p.n for p in received}
        missing = [n for n in range(1, s.parts + 1) if n not in have] if s.mode == "parts" else []
        return cls(
            id=s.id,
            dossier_id=s.dossier_id,
            filename=s.filename,
            kind=s.kind,
            part_code=s.part_code,
            size=s.size,
            sha256=s.sha256,
            mode=s.mode,
            part_size=s.part_size,
            parts=s.parts,
            state=s.state,
            expires_at=s.expires_at.isoformat(),
            received=received,
            missing=missing,
            file_id=s.file_id,
            failure=s.failure,
            direct=direct,
        )


async def _received(services: Services, s: UploadSession) -> list[PartOut]:
    return [PartOut(n=p.n, size=p.size, sha256=p.sha256) for p in await services.sessions.parts_of(s.id)]


class UploadsController(Controller):
    path = "/api/v1/uploads"
    tags = ["uploads"]

    @post("", operation_id="create_upload", status_code=HTTP_201_CREATED)
    async def create(
        self,
        data: JSONBody[dict[str, Any]],
        request: Caller,
        services: Deps,
    ) -> SessionOut:
        """Start a resumable upload: `{dossier_id, filename, size, sha256, kind, part_code?}`; the answer says the part
        size and how many parts to send. With `"mode": "direct"` the answer carries a presigned POST
        (`direct.url`, `direct.fields`) to send the file straight to the object store, then complete."""
        require_writer(request.user)
        session = await create_session(services, request.user, data)
        return SessionOut.of(session, [], await direct_policy(services, request.user, session, slot_taken=True))

    @get("/{session_id:uuid}", operation_id="get_upload")
    async def status(self, session_id: FromPath[UUID], request: Caller, services: Deps) -> SessionOut:
        """Which parts have arrived (with their sizes and SHA-256) and which are missing. An open direct
        session's answer carries a fresh presigned POST (policies live `WAREHOUSE_DIRECT_UPLOAD_TTL_SECONDS`)."""
        session = await open_session(services, request.user, session_id)
        return SessionOut.of(
            session, await _received(services, session), await direct_policy(services, request.user, session)
        )

    @put("/{session_id:uuid}/parts/{n:int}", operation_id="put_upload_part", request_max_body_size=None)
    async def part(
        self,
        session_id: FromPath[UUID],
        n: FromPath[int],
        request: Caller,
        services: Deps,
    ) -> PartOut:
        """One part as the raw body (optional `X-Content-SHA256` of the part). Sending a part again
        replaces it."""
        session = await open_session(services, request.user, session_id)
        account = request.user.account
        raw = request.stream()
        try:
            async with upload_slot(services, account):
                # a longer body is refused as the wrong size (422) by the part itself; this bounds the read
                body = metered(services, account, raw, max_bytes=session.part_size + 1024 * 1024)
                got = await put_part(
                    services,
                    session,
                    n,
                    body,
                    content_length(request.headers.get("content-length")),
                    request.headers.get("x-content-sha256"),
                )
        except Refusal as refusal:
            if refusal.kind != "too_slow":
                await drain(raw, services.settings.upload_drain_bytes, seconds=services.settings.upload_idle_seconds)
            raise
        return PartOut(n=got.n, size=got.size, sha256=got.sha256)

    @post("/{session_id:uuid}/complete", operation_id="complete_upload", status_code=HTTP_201_CREATED)
    async def finish(self, session_id: FromPath[UUID], request: Caller, services: Deps) -> Response[FileOut]:
        """Join the parts (or take the directly uploaded object), check size and SHA-256, record the file.
        Completing again answers with the same file."""
        session = await open_session(services, request.user, session_id)
        received = await complete(services, request.user, session)
        headers = {"Location": f"/api/v1/files/{received.file.id}"}
        if received.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(FileOut.of(received.file), status_code=HTTP_201_CREATED, headers=headers)

    @delete("/{session_id:uuid}", operation_id="abort_upload", status_code=HTTP_204_NO_CONTENT)
    async def cancel(self, session_id: FromPath[UUID], request: Caller, services: Deps) -> None:
        """Abandon the upload; its parts are removed from the store."""
        session = await open_session(services, request.user, session_id)
        await abort(services, request.user, session)

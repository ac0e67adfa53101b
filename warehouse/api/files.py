"""File endpoints: upload into a dossier, read metadata, download, delete."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import quote
from uuid import UUID

from litestar import Controller, MediaType, Response, delete, get, post
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream
from litestar.status_codes import (
    HTTP_201_CREATED,
    HTTP_202_ACCEPTED,
    HTTP_204_NO_CONTENT,
    HTTP_307_TEMPORARY_REDIRECT,
)

from storage import File, ObjectNotFound
from warehouse.api.deps import Caller, Deps
from warehouse.api.schemas import FileOut, PageOut, PagesOut
from warehouse.audit import AUDIT_READS
from warehouse.auth import Principal, admins_only
from warehouse.context import Services
from warehouse.errors import Problem
from warehouse.fair_share import metered, upload_slot
from warehouse.files import file_for_read, reprocess_file
from warehouse.refusals import Refusal
from warehouse.retention import delete_file
from warehouse.uploads import (
    PDF_MEDIA_TYPE,
    MultipartUpload,
    Received,
    check_sha256,
    content_length,
    drain,
    multipart_file,
    receive_file,
    too_large,
)

# A multipart form carries a little more than its file: boundaries, headers and the small fields.
_FORM_OVERHEAD = 1024 * 1024

log = logging.getLogger(__name__)


async def _file_for_read(services: Deps, principal: Principal, file_id: FromPath[UUID]) -> File:
    return await file_for_read(services, principal, file_id)


class FilesController(Controller):
    path = "/api/v1"
    tags = ["files"]

    @post(
        "/dossiers/{dossier_id:uuid}/files",
        operation_id="upload_file",
        status_code=HTTP_201_CREATED,
        request_max_body_size=None,  # the upload path enforces WAREHOUSE_MAX_FILE_BYTES while streaming
        response_headers=[ResponseHeader(name="Location", description="the new file", documentation_only=True)],
    )
    async def upload(self, dossier_id: FromPath[UUID], request: Caller, services: Deps) -> Response[FileOut]:
        """Upload a PDF into a dossier: the raw bytes as the body (Content-Type: application/pdf,
        X-Filename, X-File-Kind, optional X-Part-Code, X-Content-SHA256 and Idempotency-Key), or
        multipart/form-data with a `file` part, a `kind` field and an optional `part_code` field. The part
        code names the procedure's component or result type the file digitizes (e.g. TP1, KQ1).
        The body streams to storage; it is never held whole."""
        content_type = request.headers.get("content-type", "")
        media = content_type.split(";", 1)[0].strip().lower()
        declared_length = content_length(request.headers.get("content-length"))
        declared_sha256 = request.headers.get("x-content-sha256")
        idempotency_key = request.headers.get("idempotency-key")
        settings = services.settings
        if declared_length is not None and declared_length > settings.max_file_bytes + _FORM_OVERHEAD:
            raise too_large(settings.max_file_bytes)
        raw = request.stream()
        body = metered(services, request.user.account, raw, max_bytes=settings.max_file_bytes + _FORM_OVERHEAD)
        try:
            async with upload_slot(services, request.user.account):
                received = await self._receive(
                    request,
                    services,
                    dossier_id,
                    body,
                    media,
                    content_type,
                    declared_length,
                    declared_sha256,
                    idempotency_key,
                )
        except Refusal as refusal:
            # A client still sending its body would see a broken connection instead of this answer;
            # read the rest when it is small enough to be worth it (never for a body refused as too slow).
            limit = settings.upload_drain_bytes
            if refusal.kind != "too_slow" and (
                declared_length is None or declared_length <= settings.max_file_bytes + limit
            ):
                await drain(raw, limit + (declared_length or 0), seconds=settings.upload_idle_seconds)
            raise
        headers = {"Location": f"/api/v1/files/{received.file.id}"}
        if received.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(FileOut.of(received.file), status_code=HTTP_201_CREATED, headers=headers)

    async def _receive(
        self,
        request: Caller,
        services: Services,
        dossier_id: UUID,
        body: AsyncIterator[bytes],
        media: str,
        content_type: str,
        declared_length: int | None,
        declared_sha256: str | None,
        idempotency_key: str | None,
    ) -> Received:
        if media == "multipart/form-data":
            form = MultipartUpload()
            received = await receive_file(
                services,
                request.user,
                dossier_id,
                body=multipart_file(content_type, body, form),
                filename=request.headers.get("x-filename"),
                kind=None,
                kind_after_body=form,
                declared_length=declared_length,
                declared_sha256=declared_sha256,
                idempotency_key=idempotency_key,
                part_code=request.headers.get("x-part-code"),
            )
        elif media in (PDF_MEDIA_TYPE, "application/octet-stream", ""):
            received = await receive_file(
                services,
                request.user,
                dossier_id,
                body=body,
                filename=request.headers.get("x-filename"),
                kind=request.headers.get("x-file-kind"),
                declared_length=declared_length,
                declared_sha256=declared_sha256,
                idempotency_key=idempotency_key,
                part_code=request.headers.get("x-part-code"),
            )
        else:
            raise Problem(
                415,
                "unsupported_media_type",
                "Send the PDF as the raw body with Content-Type: application/pdf, or as multipart/form-data.",
            )
        return received

    @get("/files", operation_id="find_files_by_content")
    async def holding(self, request: Caller, services: Deps, sha256: FromQuery[str]) -> dict[str, Any]:
        """Does the warehouse already hold these bytes? Files with this SHA-256 in the units the caller
        may read (never beyond them), oldest first."""
        digest = check_sha256(sha256)
        if digest is None:
            raise Problem(422, "invalid_sha256", "Give the file's SHA-256 (64 hexadecimal characters).")
        files = await services.files.holding(digest, scope=request.user.read_scope)
        return {"items": [FileOut.of(f) for f in files]}

    @get("/files/{file_id:uuid}", operation_id="get_file")
    async def get_file(self, file_id: FromPath[UUID], request: Caller, services: Deps) -> FileOut:
        """A file's metadata, state and inspection findings."""
        return FileOut.of(await _file_for_read(services, request.user, file_id))

    @get("/files/{file_id:uuid}/pages", operation_id="get_file_pages")
    async def pages(self, file_id: FromPath[UUID], request: Caller, services: Deps) -> PagesOut:
        """The text of each page, from the PDF's text layer or from OCR (`source`)."""
        f = await _file_for_read(services, request.user, file_id)
        rows = await services.files.pages(f.id)
        return PagesOut(items=[PageOut(page=r.page, source=r.source, text=r.text) for r in rows])

    @post(
        "/files/{file_id:uuid}/reprocess",
        operation_id="reprocess_file",
        status_code=HTTP_202_ACCEPTED,
        guards=[admins_only],
    )
    async def reprocess(self, file_id: FromPath[UUID], request: Caller, services: Deps) -> FileOut:
        """Send a file through inspection and OCR again (admins): after a fault parked it as `failed`,
        or after the scan standard's settings changed. The original bytes are not touched."""
        again = await reprocess_file(services, request.user, file_id)
        return FileOut.of(again)

    @get(
        "/files/{file_id:uuid}/content",
        operation_id="get_file_content",
        media_type=PDF_MEDIA_TYPE,
        opt=AUDIT_READS,
        responses={307: ResponseSpec(data_container=None, description="with ?redirect=1: a short-lived presigned URL")},
    )
    async def content(
        self,
        file_id: FromPath[UUID],
        request: Caller,
        services: Deps,
        redirect: FromQuery[bool] = False,
        variant: FromQuery[Literal["original", "ocr", "signed"]] = "original",
        inline: FromQuery[bool] = False,
    ) -> Stream | Redirect:
        """The file's bytes, streamed; with ?redirect=1 a 307 to a short-lived presigned URL; with
        ?inline=true for the browser to show rather than save (its own PDF viewer).
        `?variant=ocr` gives the OCR'd copy (searchable text over the same images) when there is one;
        `?variant=signed` the unit's newest signed copy (the QR and the signature added)."""
        f = await _file_for_read(services, request.user, file_id)
        if f.state == "purged":
            raise Problem(
                410, "file_purged", "This file was purged after its retention ended; its record and checksum remain."
            )
        key, size, sha256 = f.object_key, str(f.size), f.sha256
        if variant == "signed":
            copies = await services.legal.signed_copies(f.id)
            if not copies:
                raise Problem(404, "signed_copy_missing", "This file has no signed copy yet. A signer makes one.")
            key, size, sha256 = copies[0].object_key, str(copies[0].size), copies[0].sha256
        elif variant == "ocr":
            if f.ocr_object_key is None:
                raise Problem(
                    404,
                    "ocr_copy_missing",
                    "This file has no OCR'd copy (it has a text layer, OCR has not finished, or OCR failed).",
                )
            key, size, sha256 = f.ocr_object_key, "", ""
        if redirect:
            url = services.objects.presigned_url(
                key, ttl_seconds=services.settings.presign_ttl_seconds, filename=f.name, inline=inline
            )
            return Redirect(url, status_code=HTTP_307_TEMPORARY_REDIRECT, media_type=MediaType.TEXT)
        body = services.objects.stream(key)
        try:
            first = await anext(body)
        except ObjectNotFound:
            raise Problem(
                404, "content_missing", "The file's bytes are missing from storage. Tell the administrator."
            ) from None
        except StopAsyncIteration:
            first = b""

        async def chunks() -> Any:
            yield first
            async for chunk in body:
                yield chunk

        async def checked() -> Any:
            # The last chunk is held back until the bytes are known to be the recorded ones: a client
            # never receives a complete body that differs from what passed inspection.
            digest = hashlib.sha256()
            held: bytes | None = None
            async for chunk in chunks():
                digest.update(chunk)
                if held is not None:
                    yield held
                held = chunk
            if digest.hexdigest() != sha256:
                log.error("file %s: stored bytes do not match the recorded SHA-256; download cut off", f.id)
                raise RuntimeError(f"stored bytes of file {f.id} do not match its SHA-256")
            if held is not None:
                yield held

        return Stream(
            checked() if sha256 else chunks(),
            media_type=PDF_MEDIA_TYPE,
            headers={
                "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(f.name)}",
                "X-Content-Type-Options": "nosniff",
                **({"Content-Length": size, "ETag": f'"{sha256}"', "X-Content-SHA256": sha256} if sha256 else {}),
            },
        )

    @delete("/files/{file_id:uuid}", operation_id="delete_file", status_code=HTTP_204_NO_CONTENT)
    async def remove(self, file_id: FromPath[UUID], request: Caller, services: Deps) -> None:
        """Mark a file deleted. Its bytes are kept for the retention period."""
        f = await _file_for_read(services, request.user, file_id)
        dossier = await services.dossiers.get(f.dossier_id, scope=None)
        if dossier is None or not request.user.can_write(dossier.unit_id):
            raise Problem(403, "forbidden", "Your account may read this file but not delete it.")
        await delete_file(services, f.id)

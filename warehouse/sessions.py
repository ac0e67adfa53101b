"""Resumable and direct uploads: a file sent in parts over a flaky link, or straight to the store.

A session is created with the file's size and SHA-256. In ``parts`` mode every part (``part_size``
bytes, the last one shorter) becomes a part of one S3 multipart upload; a part sent again replaces
the earlier one, and the client asks which parts have arrived to resume after a dropped link or an API
restart (the state is in Postgres and the store, not in the process). In ``direct`` mode the client
POSTs the bytes straight to the store with a presigned policy for exactly that size, valid for
``direct_upload_ttl_seconds`` (the session's status hands out a fresh one while it is open). Where the
store checks a POST's SHA-256 (probed once per process), the policy names the file's own key and pins
the declared SHA-256: the store refuses any other bytes, so the policy used again, before or after
completion, can only write the same bytes, and completing reads no byte back. Elsewhere the policy
names a staging key (``incoming/``) and completing copies the bytes to the file's own key, which no
client can write, and checks them there.

``complete`` checks that every part is there, joins them, re-reads the stored object and compares
its SHA-256 with the one declared before anything is recorded; a mismatch records nothing, removes
the object and fails the session. Sessions that see no part for ``upload_session_ttl_seconds`` are
aborted by the worker's sweeper.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from storage import (
    BodyLengthMismatch,
    ObjectNotFound,
    ObjectStoreError,
    StorageError,
    StoredObject,
    incoming_key,
    original_key,
)
from storage.sessions import Part, UploadSession
from warehouse.catalogue import check_part
from warehouse.context import Services
from warehouse.dossiers import dossier_for_write
from warehouse.fair_share import charge_volume, check_volume, release_slot, take_slot
from warehouse.principal import Principal
from warehouse.refusals import Conflict, Invalid, NotFound, Refusal
from warehouse.uploads import (
    PDF_MEDIA_TYPE,
    Received,
    check_kind,
    check_sha256,
    checksum_mismatch,
    clean_filename,
    looks_like_pdf,
    not_a_pdf,
    record_file,
    too_large,
)

log = logging.getLogger(__name__)


def _direct_holder(session_id: UUID) -> str:
    return f"direct:{session_id}"


def _not_found(session_id: UUID) -> Refusal:
    return NotFound("upload_not_found", f"There is no upload session {session_id} of your account.")


async def create_session(services: Services, principal: Principal, body: dict[str, Any]) -> UploadSession:
    settings = services.settings
    try:
        dossier_id = UUID(str(body.get("dossier_id")))
    except ValueError:
        raise Invalid("invalid_dossier_id", "Give the id of the dossier the file belongs to.") from None
    dossier = await dossier_for_write(services, principal, dossier_id)
    size = body.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
        raise Invalid("invalid_size", "Give the file's size in bytes (a whole number above zero).")
    if size > settings.max_file_bytes:
        raise too_large(settings.max_file_bytes)
    sha256 = check_sha256(body.get("sha256"))
    if sha256 is None:
        raise Invalid("invalid_sha256", "Give the file's SHA-256 (64 hexadecimal characters).")
    kind = check_kind(body.get("kind"))
    part_code = await check_part(services, dossier, kind, body.get("part_code"))
    mode = body.get("mode", "parts")
    if mode not in ("parts", "direct"):
        raise Invalid("invalid_mode", "The mode is 'parts' (send parts through the API) or 'direct'.")
    session_id = uuid4()
    now = datetime.now(UTC)
    key = original_key(session_id, now)
    part_size = settings.upload_part_bytes
    if mode == "direct":
        # The bytes bypass the API: the session holds an upload slot while its policy lives, and its
        # size is counted against the volume budget now.
        await check_volume(services, principal.account)
        await take_slot(
            services, principal.account, _direct_holder(session_id), expiry_seconds=settings.direct_upload_ttl_seconds
        )
        await charge_volume(services, principal.account, size)
    upload_id = await services.objects.start_multipart(key, PDF_MEDIA_TYPE) if mode == "parts" else None
    return await services.sessions.create(
        {
            "id": session_id,
            "account_id": principal.account.id,
            "dossier_id": dossier.id,
            "filename": clean_filename(body.get("filename"), f"{session_id}.pdf"),
            "kind": kind,
            "part_code": part_code,
            "size": size,
            "sha256": sha256,
            "part_size": part_size if mode == "parts" else size,
            "parts": math.ceil(size / part_size) if mode == "parts" else 1,
            "mode": mode,
            "object_key": key,
            "s3_upload_id": upload_id,
            "expires_at": now + timedelta(seconds=settings.upload_session_ttl_seconds),
        }
    )


async def open_session(services: Services, principal: Principal, session_id: UUID) -> UploadSession:
    session = await services.sessions.get(session_id, principal.account.id)
    if session is None:
        raise _not_found(session_id)
    return session


def _require_open(session: UploadSession) -> None:
    if session.state != "open":
        raise Conflict(
            "upload_not_open",
            f"This upload session is {session.state}; start a new one to send the file again.",
        )


async def put_part(
    services: Services,
    session: UploadSession,
    n: int,
    body: AsyncIterator[bytes],
    declared_length: int | None,
    declared_sha256: str | None,
) -> Part:
    """Stream one part to the store as it arrives; it is recorded only when whole and as declared."""
    _require_open(session)
    if session.mode != "parts":
        raise Conflict("upload_is_direct", "This session uploads straight to the store; it takes no parts.")
    if not 1 <= n <= session.parts:
        raise Invalid("invalid_part_number", f"Part numbers of this upload run from 1 to {session.parts}.")
    expected = session.part_length(n)
    if declared_length is not None and declared_length != expected:
        raise Invalid(
            "part_size_mismatch",
            f"Part {n} must be exactly {expected} bytes; the request announced {declared_length}. Send the part again.",
        )
    declared = check_sha256(declared_sha256)
    assert session.s3_upload_id is not None
    try:
        etag, digest = await services.objects.put_part_stream(
            session.object_key, session.s3_upload_id, n, body, length=expected
        )
    except BodyLengthMismatch:
        raise Invalid(
            "part_size_mismatch", f"Part {n} must be exactly {expected} bytes. Send the part again."
        ) from None
    except ObjectNotFound:  # the multipart upload ended while the part arrived
        raise Conflict(
            "upload_not_open", "This upload session ended while the part arrived; start a new one."
        ) from None
    if declared and declared != digest:
        # The store now holds the damaged copy of part n: it is missing until sent again.
        await services.sessions.forget_part(session.id, n)
        raise Invalid(
            "checksum_mismatch",
            f"Part {n} arrived damaged: its SHA-256 does not match X-Content-SHA256. Send the part again.",
        )
    part = Part(n=n, size=expected, sha256=digest, etag=etag)
    if not await services.sessions.record_part(session, part, ttl_seconds=services.settings.upload_session_ttl_seconds):
        raise Conflict("upload_not_open", "This upload session ended while the part arrived; start a new one.")
    return part


async def complete(services: Services, principal: Principal, session: UploadSession) -> Received:
    if session.state == "completed" and session.file_id is not None:
        earlier = await services.files.get_unscoped(session.file_id)
        assert earlier is not None
        return Received(earlier, replayed=True)
    _require_open(session)
    dossier = await dossier_for_write(services, principal, session.dossier_id)
    stored: tuple[int, str, bytes] | None = None
    if session.mode == "parts":
        parts = await services.sessions.parts_of(session.id)
        have = {p.n for p in parts}
        missing = [n for n in range(1, session.parts + 1) if n not in have]
        if missing:
            shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
            raise Conflict(
                "parts_missing",
                f"Parts {shown} have not arrived. Send them, then complete the upload.",
                extra={"missing": missing},
            )
        assert session.s3_upload_id is not None
        try:
            await services.objects.complete_multipart(session.object_key, session.s3_upload_id, [p.etag for p in parts])
        except ObjectStoreError:
            # An earlier complete joined the parts and died before recording the file: the object is
            # there (checked below) and the multipart upload is gone.
            log.info("upload %s: parts already joined, checking the stored object", session.id)
        with contextlib.suppress(ObjectNotFound):
            stored = await services.objects.digest(session.object_key)
    else:
        stored = await _direct_object(services, session)
    if stored is None:
        raise Conflict(
            "upload_missing", "Nothing has been uploaded for this session yet. Upload the file, then complete."
        )
    size, digest, head = stored
    problem: Refusal | None = None
    if size != session.size:
        problem = Invalid("size_mismatch", f"The stored file has {size} bytes, not the {session.size} declared.")
    elif digest != session.sha256:
        problem = checksum_mismatch(digest, "the one given when the upload started", "start a new upload")
    elif not looks_like_pdf(head):
        problem = not_a_pdf()
    if problem is not None:
        await services.objects.delete(session.object_key)
        await services.sessions.finish(session.id, "failed", failure=problem.detail)
        raise problem
    recorded = await record_file(
        services,
        principal,
        dossier.id,
        file_id=uuid4(),
        stored=StoredObject(key=session.object_key, size=size, sha256=digest),
        name=session.filename,
        kind=session.kind,
        received_at=datetime.now(UTC),
        idempotency_key=None,
        wrote=True,
        part_code=session.part_code,
    )
    assert recorded is not None
    await services.sessions.finish(session.id, "completed", file_id=recorded.id)
    if session.mode == "direct":
        await release_slot(services, principal.account, _direct_holder(session.id))
    return Received(recorded, replayed=False)


async def _direct_object(services: Services, session: UploadSession) -> tuple[int, str, bytes] | None:
    """The size, SHA-256 and first kilobyte of a direct upload's bytes under the file's own key, or None
    when nothing was uploaded. Bytes a pinned policy POSTed there carry the SHA-256 the store checked
    them against, and no other bytes can be written there, so they are not read again. Bytes staged
    by an unpinned policy are copied there first (a key no client can write) and read back."""
    objects = services.objects
    try:
        size, checked = await objects.attested(session.object_key)
    except ObjectNotFound:
        try:
            await objects.copy(incoming_key(session.id), session.object_key)
        except ObjectNotFound:
            return None
        with contextlib.suppress(Exception):
            await objects.delete(incoming_key(session.id))
        checked = None
    if checked is not None:
        return size, checked, await objects.first_bytes(session.object_key)
    # Our own copy (this time, or by an earlier complete that died before recording the file).
    return await objects.digest(session.object_key)


async def _pinned(services: Services) -> bool:
    """Whether direct policies pin the bytes by SHA-256 (allowed, and the store checks them)."""
    if not services.settings.direct_upload_pinned:
        return False
    try:
        return await services.objects.pins_post_checksums()
    except StorageError as exc:  # unavailable, or an answer the probe did not expect: stage, ask again later
        log.warning("could not learn whether the store checks POSTed bytes (%s); staging this upload", exc)
        return False


async def abort(services: Services, principal: Principal, session: UploadSession) -> None:
    _require_open(session)
    if session.s3_upload_id:
        await services.objects.abort_multipart(session.object_key, session.s3_upload_id)
    else:
        with contextlib.suppress(ObjectNotFound):
            await services.objects.delete(incoming_key(session.id))
        await release_slot(services, principal.account, _direct_holder(session.id))
    await services.sessions.finish(session.id, "aborted")


async def direct_policy(
    services: Services, principal: Principal, session: UploadSession, *, slot_taken: bool = False
) -> dict[str, Any] | None:
    """A fresh presigned POST for an open direct session (exactly its size, and its bytes where the
    store pins them); the session's upload slot is held again for the policy's lifetime, unless it was
    just taken (``slot_taken``, as the session was created)."""
    if session.mode != "direct" or session.state != "open":
        return None
    if not slot_taken:
        await take_slot(
            services,
            principal.account,
            _direct_holder(session.id),
            expiry_seconds=services.settings.direct_upload_ttl_seconds,
        )
    if await _pinned(services):
        # Only the declared bytes can ever be written under the file's own key with this policy.
        key, sha256 = session.object_key, session.sha256
    else:
        key, sha256 = incoming_key(session.id), None
    url, fields = services.objects.presigned_post(
        key, size=session.size, ttl_seconds=services.settings.direct_upload_ttl_seconds, sha256=sha256
    )
    return {"url": url, "fields": fields}

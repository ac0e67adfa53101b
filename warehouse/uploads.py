"""Receiving a file: stream the body to the object store, check it, record it, queue its inspection.

A failure at any step leaves nothing recorded; a blob written before the failure is removed at once
(or, if the process dies, found later by the orphan sweeper).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote
from uuid import UUID, uuid4

from python_multipart.multipart import MultipartParser, parse_options_header

from storage import BodyLengthMismatch, File, NewFile, ObjectTooLarge, StoredObject, nfc, original_key
from warehouse.catalogue import check_part
from warehouse.context import Services
from warehouse.dossiers import dossier_for_write
from warehouse.principal import Principal
from warehouse.refusals import Invalid, Refusal, TooLarge, Unreadable, UnsupportedKind

log = logging.getLogger(__name__)

PDF_MEDIA_TYPE = "application/pdf"
FILE_KINDS = ("component", "result")
# The PDF header may follow a little junk; readers look in the first kilobyte, and so do we.
_HEADER_WINDOW = 1024
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


def too_large(limit: int) -> Refusal:
    return TooLarge(
        "file_too_large",
        f"The file is larger than the {limit // (1024 * 1024)} MiB this warehouse accepts. "
        "Split the scan into several files or lower its resolution.",
    )


def not_a_pdf() -> Refusal:
    return UnsupportedKind(
        "not_a_pdf",
        "This file is not a PDF. Scan or export the document as PDF and upload that file.",
    )


def checksum_mismatch(received: str, against: str, retry: str) -> Refusal:
    """The bytes that arrived are not the ones the client described (``against`` says where)."""
    return Invalid(
        "checksum_mismatch",
        f"The file arrived damaged: its SHA-256 does not match {against}. Nothing was saved; {retry}.",
        extra={"received_sha256": received},
    )


def clean_filename(raw: object, fallback: str) -> str:
    """A display name: percent-decoded UTF-8, NFC, no path or control characters, at most 255 chars."""
    if not raw or not isinstance(raw, str):
        return fallback
    name = nfc(unquote(raw, encoding="utf-8", errors="replace"))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or fallback


def check_kind(kind: object) -> str:
    value = kind.strip().lower() if isinstance(kind, str) else ""
    if value not in FILE_KINDS:
        raise Invalid(
            "invalid_file_kind",
            "Say what the file is with X-File-Kind (or the 'kind' form field): 'component' for a dossier "
            "component, 'result' for the procedure's result.",
        )
    return value


def check_sha256(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _SHA256.fullmatch(value.strip()):
        raise Invalid("invalid_checksum", "X-Content-SHA256 must be 64 hexadecimal characters.")
    return value.strip().lower()


def content_length(raw: str | None) -> int | None:
    """The Content-Length header's value, if there is one."""
    if raw is None:
        return None
    if not raw.strip().isdigit() or len(raw.strip()) > 18:
        raise Unreadable("bad_content_length", "The Content-Length header is not a whole number of bytes.")
    return int(raw)


def check_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise Invalid("invalid_idempotency_key", "Idempotency-Key must be 1 to 200 visible ASCII characters.")
    return value


async def drain(body: AsyncIterator[bytes], limit: int, *, seconds: float) -> None:
    """Read and drop what is left of a refused body, up to ``limit`` bytes and ``seconds``.

    A client that is still sending when the answer comes sees a broken connection instead of the
    answer; reading the rest lets a moderately oversized upload get its clear 413.
    """
    seen = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in body:
                seen += len(chunk)
                if seen > limit:
                    return
    except Exception:  # the client went away or is too slow; nothing to tell it
        return


def looks_like_pdf(head: bytes) -> bool:
    return b"%PDF-" in head[:_HEADER_WINDOW]


async def pdf_stream(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The same bytes, after checking they start like a PDF: a 4xx before anything is stored if not."""
    seen: list[bytes] = []  # the first chunks, kept as they came (a scan's first chunk is enough)
    size = 0
    async for chunk in chunks:
        seen.append(chunk)
        size += len(chunk)
        if size >= _HEADER_WINDOW:
            break
    if not size:
        raise Unreadable("empty_body", "The request carried no file. Attach the PDF and send it again.")
    if not looks_like_pdf(b"".join(seen)[:_HEADER_WINDOW] if len(seen) > 1 else seen[0][:_HEADER_WINDOW]):
        raise not_a_pdf()

    async def replay() -> AsyncIterator[bytes]:
        for chunk in seen:
            yield chunk
        async for chunk in chunks:
            yield chunk

    return replay()


@dataclass
class MultipartUpload:
    """A streaming view of a multipart/form-data body: the ``file`` part's bytes, and small fields."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    saw_file: bool = False


# A form's other parts are a few small fields: more, or larger headers, are refused (413), so a form
# cannot make the API hold more than about _MAX_FIELDS * (_MAX_FIELD + _MAX_PART_HEADERS) bytes.
_MAX_FIELD = 4096
_MAX_FIELDS = 16
_MAX_PART_HEADERS = 8192


def _form_too_large(what: str) -> Refusal:
    return TooLarge(
        "form_too_large",
        f"The form has {what}. Send the PDF in a part named 'file' and at most {_MAX_FIELDS} small fields "
        "(such as 'kind').",
    )


@dataclass
class _PartState:
    name: str = ""
    is_file: bool = False
    header: bytearray = field(default_factory=bytearray)
    value: bytearray = field(default_factory=bytearray)
    headers: dict[bytes, bytes] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)

    def reset(self) -> None:
        self.name, self.is_file = "", False
        self.headers = {}
        self.data = bytearray()


def multipart_file(content_type: str, body: AsyncIterator[bytes], form: MultipartUpload) -> AsyncIterator[bytes]:
    """Yield the bytes of the part named ``file`` as they arrive; other fields land in ``form.fields``."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise Unreadable("bad_multipart", "The multipart body has no boundary in its Content-Type header.")

    out: list[bytes] = []
    part = _PartState()

    parts_seen = 0
    header_bytes = 0

    def on_part_begin() -> None:
        nonlocal parts_seen, header_bytes
        parts_seen += 1
        if parts_seen > _MAX_FIELDS + 1:
            raise _form_too_large(f"more than {_MAX_FIELDS + 1} parts")
        header_bytes = 0
        part.reset()

    def count_header(n: int) -> None:
        nonlocal header_bytes
        header_bytes += n
        if header_bytes > _MAX_PART_HEADERS:
            raise _form_too_large(f"a part whose headers are longer than {_MAX_PART_HEADERS} bytes")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        count_header(end - start)
        part.header += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        count_header(end - start)
        part.value += data[start:end]

    def on_header_end() -> None:
        part.headers[bytes(part.header).lower()] = bytes(part.value)
        part.header.clear()
        part.value.clear()

    def on_headers_finished() -> None:
        _, disp = parse_options_header(part.headers.get(b"content-disposition", b""))
        part.name = disp.get(b"name", b"").decode("utf-8", "replace")
        part.is_file = part.name == "file" and not form.saw_file
        if part.is_file:
            form.saw_file = True
            raw = disp.get(b"filename*") or disp.get(b"filename") or b""
            text = raw.decode("utf-8", "replace")
            if text.lower().startswith("utf-8''"):
                text = unquote(text[7:])
            form.filename = text

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part.is_file:
            out.append(data[start:end])
        elif len(part.data) < _MAX_FIELD:
            part.data.extend(data[start : min(end, start + _MAX_FIELD - len(part.data))])

    def on_part_end() -> None:
        if not part.is_file and part.name:
            form.fields[part.name] = part.data.decode("utf-8", "replace")

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )

    async def file_bytes() -> AsyncIterator[bytes]:
        async for chunk in body:
            try:
                parser.write(chunk)
            except Refusal:
                raise
            except Exception as exc:
                raise Unreadable("bad_multipart", f"The multipart body could not be read: {exc}") from None
            if out:
                joined = b"".join(out)
                out.clear()
                yield joined
        try:
            parser.finalize()
        except Exception as exc:
            raise Unreadable("bad_multipart", f"The multipart body could not be read: {exc}") from None

    return file_bytes()


@dataclass(frozen=True, slots=True)
class Received:
    file: File
    replayed: bool


async def receive_file(
    services: Services,
    principal: Principal,
    dossier_id: UUID,
    *,
    body: AsyncIterator[bytes],
    declared_length: int | None,
    filename: str | None,
    kind: str | None,
    kind_after_body: MultipartUpload | None = None,
    declared_sha256: str | None,
    idempotency_key: str | None,
    part_code: str | None = None,
) -> Received:
    """Store one uploaded file into a dossier. See the module docstring for what failure leaves."""
    settings = services.settings
    dossier = await dossier_for_write(services, principal, dossier_id)
    if kind_after_body is None:
        kind = check_kind(kind)
        part_code = await check_part(services, dossier, kind, part_code)
    declared_sha256 = check_sha256(declared_sha256)
    idempotency_key = check_idempotency_key(idempotency_key)

    if idempotency_key:
        earlier = await services.files.by_idempotency_key(principal.account.id, idempotency_key)
        if earlier is not None:
            # The same key again: the same file, if it is the same upload. Without a declared checksum
            # the body is read (not stored) to tell.
            same_bytes = declared_sha256 == earlier.sha256
            if declared_sha256 is None and earlier.dossier_id == dossier.id:
                size, digest = await _hash_only(await pdf_stream(body), settings.max_file_bytes)
                same_bytes = digest == earlier.sha256
            if earlier.dossier_id != dossier.id or not same_bytes:
                raise Invalid(
                    "idempotency_key_reused",
                    "This Idempotency-Key was already used for a different upload (another dossier or other "
                    "bytes). Use a new key per file.",
                )
            return Received(earlier, replayed=True)

    if declared_length is not None and declared_length > settings.max_file_bytes:
        raise too_large(settings.max_file_bytes)
    if declared_length == 0:
        raise Unreadable("empty_body", "The request carried no file. Attach the PDF and send it again.")

    file_id = uuid4()
    received_at = datetime.now(UTC)
    key = original_key(file_id, received_at)
    stream = await pdf_stream(body)
    # Bytes the warehouse already holds (by the declared checksum) are read and checked, not stored again.
    known = await services.blobs.get(declared_sha256) if declared_sha256 else None
    wrote = known is None
    try:
        if known is not None:
            size, digest = await _hash_only(stream, settings.max_file_bytes)
            stored = StoredObject(key=known.object_key, size=size, sha256=digest)
            key = known.object_key
        else:
            stored = await services.objects.put_stream(
                key,
                stream,
                content_type=PDF_MEDIA_TYPE,
                max_bytes=settings.max_file_bytes,
                length=None if kind_after_body is not None else declared_length,
            )
    except ObjectTooLarge:
        raise too_large(settings.max_file_bytes) from None
    except BodyLengthMismatch as exc:
        raise Unreadable(
            "body_length_mismatch", f"The upload was cut off or malformed ({exc}). Send the file again."
        ) from None

    try:
        if kind_after_body is not None:
            if not kind_after_body.saw_file:
                raise Invalid("file_part_missing", "The form has no part named 'file'.")
            kind = check_kind(kind_after_body.fields.get("kind"))
            part_code = await check_part(services, dossier, kind, kind_after_body.fields.get("part_code") or part_code)
            filename = filename or kind_after_body.filename
        if declared_sha256 and declared_sha256 != stored.sha256:
            raise checksum_mismatch(stored.sha256, "X-Content-SHA256", "send it again")
        assert kind is not None
        recorded = await record_file(
            services,
            principal,
            dossier.id,
            file_id=file_id,
            stored=StoredObject(key=key, size=stored.size, sha256=stored.sha256),
            name=clean_filename(filename, f"{file_id}.pdf"),
            kind=kind,
            received_at=received_at,
            idempotency_key=idempotency_key,
            wrote=wrote,
            part_code=part_code,
        )
    except BaseException:
        if wrote:
            await _discard(services, key)
        raise
    if recorded is None:
        assert idempotency_key is not None
        earlier = await services.files.by_idempotency_key(principal.account.id, idempotency_key)
        assert earlier is not None
        return Received(earlier, replayed=True)

    # The row is the inspection outbox: a worker queues the job (see storage.outbox).
    return Received(recorded, replayed=False)


async def record_file(
    services: Services,
    principal: Principal,
    dossier_id: UUID,
    *,
    file_id: UUID,
    stored: StoredObject,
    name: str,
    kind: str,
    received_at: datetime,
    idempotency_key: str | None,
    wrote: bool,
    part_code: str | None = None,
) -> File | None:
    """Record bytes already checked and in the store as a file of the dossier, whichever way they came
    (a streamed upload, a resumable or a direct one). The bytes are content-addressed: when the same bytes
    were stored before, the file points at them and the copy just written (``wrote``) is removed. None
    when a concurrent retry with the same idempotency key recorded it first. The row is the inspection
    outbox: a worker queues the job (see storage.outbox)."""
    recorded = await services.files.insert(
        NewFile(
            id=file_id,
            dossier_id=dossier_id,
            kind=kind,
            name=name,
            size=stored.size,
            sha256=stored.sha256,
            media_type=PDF_MEDIA_TYPE,
            object_key=stored.key,
            created_by=principal.account.id,
            created_at=received_at,
            idempotency_key=idempotency_key,
            part_code=part_code,
        )
    )
    if wrote and (recorded is None or recorded.object_key != stored.key):
        await _discard(services, stored.key)
    return recorded


async def _hash_only(chunks: AsyncIterator[bytes], max_bytes: int) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        digest.update(chunk)
    return size, digest.hexdigest()


async def _discard(services: Services, key: str) -> None:
    try:
        await services.objects.delete(key)
    except Exception as exc:  # the orphan sweeper removes it later
        log.warning("could not remove unrecorded object %s: %s", key, exc)

"""Copies with legal standing: the unit's signed copy of a file, the digitization result codes, each
unit's signature policy, and the public check anyone can open from a QR."""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import time
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, MediaType, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from storage import Settings, Window
from storage.legal import ResultCode, SignedCopy
from warehouse.api.deps import Caller, Deps
from warehouse.api.files import _file_for_read
from warehouse.api.formats import wanted_format
from warehouse.api.session import client_address
from warehouse.audit import NOT_AUDITED
from warehouse.auth import visible_unit
from warehouse.errors import Problem
from warehouse.legal import issued_text, policy_of, set_policy, sign_file, verify, verify_url, vi_date
from warehouse.uploads import MultipartUpload, content_length, drain, multipart_file

Policy = Literal["off", "warn", "reject"]
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class QrOut(msgspec.Struct):
    corner: str | None
    text: str


class CopyFindingOut(msgspec.Struct):
    code: str
    severity: str
    vi: str
    en: str


class SignedCopyOut(msgspec.Struct):
    """A signed copy: the original's bytes with the QR and the unit's PAdES signature added."""

    id: UUID
    file_id: UUID
    sha256: str
    size: int
    certificate_subject: str
    certificate_serial: str
    signed_at: datetime
    signed_by: int
    qr: QrOut
    result_code: str | None = None
    verify_url: str | None = None
    findings: list[CopyFindingOut] = msgspec.field(default_factory=list)

    @classmethod
    def of(cls, copy: SignedCopy, settings: Settings) -> SignedCopyOut:
        return cls(
            id=copy.id,
            file_id=copy.file_id,
            sha256=copy.sha256,
            size=copy.size,
            certificate_subject=copy.certificate_subject,
            certificate_serial=copy.certificate_serial,
            signed_at=copy.signed_at,
            signed_by=copy.signed_by,
            qr=QrOut(corner=copy.qr.get("corner"), text=str(copy.qr.get("text", ""))),
            result_code=copy.result_code,
            verify_url=verify_url(settings, copy.result_code) if copy.result_code else None,
            findings=[msgspec.convert(f, CopyFindingOut) for f in copy.findings],
        )


class ResultCodeOut(msgspec.Struct):
    """A digitization result code and the result it names."""

    code: str
    file_id: UUID
    dossier_id: UUID
    dossier_code: str
    procedure_code: str
    unit: str
    result_type: str | None
    holder: str
    document_name: str
    issued_at: datetime
    valid_until: date | None
    withdrawn: bool
    verify_url: str

    @classmethod
    def of(cls, r: ResultCode, settings: Settings) -> ResultCodeOut:
        return cls(
            code=r.code,
            file_id=r.file_id,
            dossier_id=r.dossier_id,
            dossier_code=r.dossier_code,
            procedure_code=r.procedure_code,
            unit=r.unit_code,
            result_type=r.result_type,
            holder=r.holder,
            document_name=r.document_name,
            issued_at=r.issued_at,
            valid_until=r.valid_until,
            withdrawn=r.withdrawn_at is not None,
            verify_url=verify_url(settings, r.code),
        )


class PolicyIn(msgspec.Struct, forbid_unknown_fields=True):
    """What the unit itself sets, per file kind, replacing what it set before: a kind left out or null
    is not set (the unit takes its nearest ancestor's, or the default)."""

    component: Policy | None = None
    result: Policy | None = None


class PolicyOut(msgspec.Struct):
    unit: str
    set: dict[str, str]  # what the unit itself sets
    applied: dict[str, str]  # what applies: its own, an ancestor's, or the default


class LegalController(Controller):
    path = "/api/v1"
    tags = ["legal copies"]

    @post("/files/{file_id:uuid}/sign", operation_id="sign_file", status_code=HTTP_201_CREATED)
    async def sign(
        self, file_id: FromPath[UUID], request: Caller, services: Deps, again: FromQuery[bool] = False
    ) -> Response[SignedCopyOut]:
        """The unit's signed copy of an accepted file (accounts with the `signer` role, for their own
        unit): the QR at the top left of the first page and a PAdES signature with the unit's
        certificate, added to the original's bytes, which never change. 201 with a new copy; 200 with
        the copy made earlier (`again=true` makes a new one, after the certificate was renewed)."""
        f = await _file_for_read(services, request.user, file_id)
        signed = await sign_file(services, request.user, f, again=again)
        request.state.audit_details = {
            "copy": str(signed.copy.id),
            "certificate_serial": signed.copy.certificate_serial,
            "result_code": signed.copy.result_code,
        }
        return Response(
            SignedCopyOut.of(signed.copy, services.settings),
            status_code=HTTP_201_CREATED if signed.created else HTTP_200_OK,
        )

    @get("/files/{file_id:uuid}/signed", operation_id="list_signed_copies")
    async def copies(self, file_id: FromPath[UUID], request: Caller, services: Deps) -> dict[str, Any]:
        """The file's signed copies, newest first (`GET .../content?variant=signed` gives the newest)."""
        f = await _file_for_read(services, request.user, file_id)
        copies = await services.legal.signed_copies(f.id)
        return {"items": [SignedCopyOut.of(c, services.settings) for c in copies]}

    @get("/result-codes/{result_code:str}", operation_id="get_result_code")
    async def result_code(self, result_code: FromPath[str], request: Caller, services: Deps) -> ResultCodeOut:
        """The result a digitization result code names, in the units the caller may read."""
        found = await services.legal.result(result_code)
        if found is None or not request.user.can_read(found.unit_id):
            raise Problem(404, "result_not_found", "There is no result with this code that you may see.")
        return ResultCodeOut.of(found, services.settings)

    @get("/units/{code:str}/signature-policy", operation_id="get_signature_policy")
    async def get_policy(self, code: FromPath[str], request: Caller, services: Deps) -> PolicyOut:
        """What an unsigned or badly signed file of this unit gets at inspection, per file kind: `off`
        (not looked at), `warn` (a warning) or `reject`; what the unit sets and what applies."""
        unit = await visible_unit(services, request.user, code)
        return msgspec.convert(await policy_of(services, unit), PolicyOut)

    @put("/units/{code:str}/signature-policy", operation_id="set_signature_policy")
    async def put_policy(
        self, code: FromPath[str], data: JSONBody[PolicyIn], request: Caller, services: Deps
    ) -> PolicyOut:
        """Set the unit's signature policy (administrators of the unit): it applies to the unit and the
        units below it that set none, for files inspected from now on."""
        unit = await visible_unit(services, request.user, code)
        values = {k: getattr(data, k) for k in ("component", "result")}
        return msgspec.convert(await set_policy(services, request.user, unit, values), PolicyOut)


# -- the public check ----------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;padding:1rem;line-height:1.5;color:#111;background:#fff}}
main{{max-width:36rem;margin:auto}} h1{{font-size:1.3rem}} dt{{font-weight:600;margin-top:.6rem}}
dd{{margin:0}} .ok{{color:#0a6b2d}} .bad{{color:#a40e0e}} small{{color:#555}}
</style></head>
<body><main>
<h1 class="{cls}">{title}</h1>
{body}
<p><small>{system}</small></p>
</main></body></html>
"""


def _page(title: str, cls: str, body: str, system: str, status: int) -> Response[str]:
    text = _PAGE.format(title=html.escape(title), cls=cls, body=body, system=html.escape(system))
    return Response(
        text,
        status_code=status,
        media_type=MediaType.HTML,
        headers={"Content-Language": "vi", "Cache-Control": "no-store", "X-Robots-Tag": "noindex"},
    )


def _found_page(answer: dict[str, Any], system: str) -> Response[str]:
    valid = answer["valid"]
    title = "Kết quả số hóa còn hiệu lực" if valid else "Kết quả số hóa đã hết hiệu lực"
    rows = [
        ("Mã kết quả số hóa", answer["code"]),
        ("Tên giấy tờ", answer["document_name"]),
        ("Mã hồ sơ", answer["dossier_code"]),
        ("Mã thủ tục hành chính", answer["procedure_code"]),
        ("Số định danh của chủ hồ sơ", answer["holder"] or "-"),
        ("Đơn vị cấp", answer["issued_by"]["name"]),
        ("Thời điểm số hóa", issued_text(answer["issued_at"])),
        ("Hiệu lực đến", vi_date(answer["valid_until"])),
    ]
    body = "<dl>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows) + "</dl>"
    code = html.escape(answer["code"], quote=True)
    body += (
        f'<form method="post" action="/verify/{code}?format=html" enctype="multipart/form-data">'
        '<p><label for="file">Kiểm tra bản sao bạn đang có (tệp PDF):</label><br>'
        '<input id="file" type="file" name="file" accept="application/pdf" required></p>'
        '<p><button type="submit">Kiểm tra bản sao</button></p></form>'
    )
    if answer["genuine"] is True:
        body = '<p class="ok">Bản sao khớp với bản đã lưu trong kho.</p>' + body
    elif answer["genuine"] is False:
        body = '<p class="bad">Bản sao hoặc thông tin được đưa ra KHÔNG khớp với bản đã lưu trong kho.</p>' + body
    return _page(title, "ok" if valid else "bad", body, system, 200)


async def _limited(services: Deps, request: Caller) -> None:
    """Count one check against the caller's address (``verify_per_minute``); 429 past it."""
    settings = services.settings
    address = client_address(request, settings.trusted_proxies)
    states = await services.counters.hit([Window(f"rl:verify:{address}", settings.verify_per_minute, 60)])
    if states is not None and states[0].exceeded:
        retry = max(1, states[0].resets_in_ms // 1000)
        raise Problem(
            429,
            "too_many_checks",
            f"Too many checks from your address. Try again in {retry} seconds.",
            headers={"Retry-After": str(retry)},
        )


def _wants_html(request: Caller, format: str | None) -> bool:
    return wanted_format(request, format, ("text/html",)) == "text/html"


async def _answer(services: Deps, code: str, given: dict[str, str | None], html_wanted: bool) -> Response[Any]:
    settings = services.settings
    answer = await verify(services, code, {k: v for k, v in given.items() if v})
    if answer is None:
        if html_wanted:
            body = "<p>Không tìm thấy kết quả số hóa có mã này. Hãy kiểm tra lại mã trên mã QR.</p>"
            return _page("Không tìm thấy mã kết quả số hóa", "bad", body, settings.system_name, 404)
        raise Problem(
            404,
            "result_not_found",
            "There is no digitized result with this code. Check the code printed with the QR.",
        )
    if html_wanted:
        return _found_page(answer, settings.system_name)
    return Response(answer, headers={"Cache-Control": "no-store"})


def _copy_too_large(settings: Settings) -> Problem:
    n = settings.verify_max_bytes
    limit = f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n // 1024} KiB"
    return Problem(413, "copy_too_large", f"The copy is larger than the {limit} that are checked.")


async def _drain_refused(services: Deps, raw: AsyncIterator[bytes], declared: int) -> None:
    """Read and drop a refused copy that is only a little too large, so its sender gets the 413 instead
    of a broken connection; within the slots for copies being read, never past ``upload_drain_bytes``."""
    settings = services.settings
    if declared > settings.verify_max_bytes + settings.upload_drain_bytes or services.verify_reading.locked():
        return
    async with services.verify_reading:
        await drain(raw, declared, seconds=settings.upload_idle_seconds)


async def _digest_of_copy(services: Deps, request: Caller) -> str:
    """The SHA-256 of the copy in the body (raw, or the ``file`` part of a form), read as it arrives:
    at most ``verify_max_bytes``, and a sender that stalls or crawls is cut off (408) like an upload."""
    settings = services.settings
    reading = services.verify_reading
    if reading.locked():
        raise Problem(
            503,
            "checks_busy",
            "Too many copies are being checked right now. Try again in a few seconds.",
            headers={"Retry-After": "5"},
        )
    declared = content_length(request.headers.get("content-length"))
    raw = request.stream()
    if declared is not None and declared > settings.verify_max_bytes:
        await _drain_refused(services, raw, declared)
        raise _copy_too_large(settings)
    content_type = request.headers.get("content-type", "")
    body: AsyncIterator[bytes] = raw
    if content_type.lower().startswith("multipart/form-data"):
        body = multipart_file(content_type, body, MultipartUpload())
    async with reading:
        digest = hashlib.sha256()
        size = 0
        started = time.monotonic()
        iterator = aiter(body)
        while True:
            try:
                async with asyncio.timeout(settings.upload_idle_seconds):
                    chunk = await anext(iterator)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise Problem(
                    408, "upload_too_slow", "Nothing arrived for a while, so the check was stopped."
                ) from None
            size += len(chunk)
            if size > settings.verify_max_bytes:
                await drain(raw, settings.upload_drain_bytes, seconds=settings.upload_idle_seconds)
                raise _copy_too_large(settings)
            elapsed = time.monotonic() - started
            if elapsed > settings.upload_rate_grace_seconds and size / elapsed < settings.upload_min_bytes_per_second:
                raise Problem(408, "upload_too_slow", "The copy arrived too slowly, so the check was stopped.")
            digest.update(chunk)
    if size == 0:
        raise Problem(422, "copy_missing", "Send the copy to check: the PDF as the body, or a form field 'file'.")
    return digest.hexdigest()


class VerifyController(Controller):
    """No sign-in: a citizen's phone opens it from the QR. Limited per client address."""

    path = "/verify"
    tags = ["public check"]

    @get("/{code:str}", operation_id="verify_result", media_type=MediaType.JSON, security=[])
    async def check(
        self,
        code: FromPath[str],
        request: Caller,
        services: Deps,
        sha256: Annotated[str | None, QueryParameter(description="the SHA-256 of the copy in hand")] = None,
        dossier_code: Annotated[str | None, QueryParameter(max_length=100)] = None,
        procedure_code: Annotated[str | None, QueryParameter(max_length=100)] = None,
        holder: Annotated[str | None, QueryParameter(max_length=40, description="the holder's ID number")] = None,
        format: Annotated[Literal["json", "html"] | None, QueryParameter(description="json or html")] = None,
    ) -> Response[Any]:
        """Is this digitized result genuine and still valid, and which unit issued it? Give the code (from
        the QR) and, to compare, the SHA-256 of the copy in hand or the QR's fields. A plain Vietnamese
        page (`Accept: text/html` or `?format=html`) or JSON. A code that never existed and one withdrawn
        get the same answer."""
        await _limited(services, request)
        if sha256 is not None and not _SHA256.match(sha256):
            raise Problem(422, "invalid_sha256", "Give the file's SHA-256 (64 hexadecimal characters).")
        given = {"sha256": sha256, "dossier_code": dossier_code, "procedure_code": procedure_code, "holder": holder}
        return await _answer(services, code, given, _wants_html(request, format))

    @post(
        "/{code:str}",
        operation_id="verify_copy",
        media_type=MediaType.JSON,
        security=[],
        status_code=HTTP_200_OK,
        request_max_body_size=None,  # read as it arrives, up to WAREHOUSE_VERIFY_MAX_BYTES
        opt=NOT_AUDITED,  # changes nothing; a public caller must not fill the audit trail
    )
    async def check_copy(
        self,
        code: FromPath[str],
        request: Caller,
        services: Deps,
        format: Annotated[Literal["json", "html"] | None, QueryParameter(description="json or html")] = None,
    ) -> Response[Any]:
        """Check the copy in hand: send its bytes (the PDF as the body, or a form's `file` field) and the
        answer says, as the GET does, whether it is the copy the warehouse keeps (`genuine`). Nothing
        sent is kept. At most `WAREHOUSE_VERIFY_MAX_BYTES`; counted against the address's checks."""
        await _limited(services, request)
        digest = await _digest_of_copy(services, request)
        return await _answer(services, code, {"sha256": digest}, _wants_html(request, format))

"""Copies with legal standing (Circular 01/2023/TT-VPCP): the organisation signs a copy of an accepted
file (the QR at the top left of its first page, a PAdES signature with the unit's certificate), and
anyone can check a result by its digitization result code.

The original never changes: the signed copy is the original's bytes with one incremental update,
stored beside it under a key of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from storage import File, ObjectNotFound, Settings, Unit
from storage.legal import FILE_KINDS, ResultCode, SignedCopy, default_policy
from warehouse.context import Services
from warehouse.principal import Principal, require_admin
from warehouse.refusals import Busy, Conflict, Forbidden, Invalid, NotFound, TooLarge
from warehouse.signing import NotSignable, Pkcs12Signers, Signers, SignerSpec, SignerUnavailable

log = logging.getLogger(__name__)
_CHUNK = 1024 * 1024
VIETNAM = timezone(timedelta(hours=7))


def keys_folder(settings: Settings) -> Path:
    """The folder of the units' PKCS#12 files (``signing_keys_dir``, else under the data folder)."""
    return settings.signing_keys_dir or settings.data_dir / "signing-keys"


def signers_of(settings: Settings) -> Signers:
    """Where the units' keys are: today a folder of PKCS#12 files."""
    return Pkcs12Signers(keys_folder(settings))


@dataclass(frozen=True, slots=True)
class Signed:
    copy: SignedCopy
    created: bool
    result: ResultCode | None


def issued_text(moment: datetime) -> str:
    return moment.astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M")


def qr_text(settings: Settings, result: ResultCode | None, facts: dict[str, str], issued: datetime) -> str:
    """What the QR carries (art. 26): the dossier code, procedure code, holder's identifier, the
    document's name, the information system, the time of issue, and for a result its validity and
    scope and the address where anyone can check it."""
    lines = [
        f"Mã hồ sơ: {facts['dossier_code']}",
        f"Mã TTHC: {facts['procedure_code']}",
        f"Số định danh: {facts['holder'] or '-'}",
        f"Tên giấy tờ: {facts['document_name']}",
        f"Hệ thống: {settings.system_name}",
        f"Thời điểm: {issued_text(issued)}",
    ]
    if result is not None:
        until = f"đến {result.valid_until:%d/%m/%Y}" if result.valid_until else "không thời hạn"
        lines += [
            f"Mã KQSH: {result.code}",
            f"Hiệu lực: {until}; phạm vi: {settings.result_scope}",
            f"Kiểm tra: {verify_url(settings, result.code)}",
        ]
    return "\n".join(lines)


def verify_url(settings: Settings, code: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/verify/{code}"


async def sign_file(services: Services, principal: Principal, f: File, *, again: bool) -> Signed:
    """The unit's signed copy of an accepted file (made once; ``again`` makes a new one, after the
    unit's certificate was renewed, say)."""
    settings = services.settings
    if principal.role != "signer":
        raise Forbidden("forbidden", "Only an account with the signer role may sign copies.")
    dossier = await services.dossiers.get(f.dossier_id, scope=None)
    if dossier is None or dossier.unit_id not in await services.own_units(principal.account.unit_id):
        raise Forbidden("forbidden", "You may sign only your own unit's files, with its certificate.")
    if dossier.state != "active":
        raise Conflict("dossier_deleted", "The file's dossier has been deleted; its files are not signed.")
    if f.state != "ready":
        raise Conflict("file_not_ready", "Only a file that passed inspection can be signed. Wait for its verdict.")
    if f.size > settings.sign_max_bytes:
        raise TooLarge(
            "file_too_large_to_sign",
            f"The file is larger than the {settings.sign_max_bytes // (1024 * 1024)} MiB that are signed. "
            "Split it into smaller files.",
        )
    legal = services.legal
    result = await legal.result_of_file(f.id)
    existing = await legal.signed_copies(f.id)
    if existing and not again:
        return Signed(existing[0], False, result)
    if len(existing) >= settings.sign_max_copies:
        raise Conflict(
            "too_many_signed_copies",
            f"This file already has {len(existing)} signed copies, the most a file may have. Use the newest.",
        )
    unit = await services.units.get(dossier.unit_id)
    assert unit is not None
    spec = signers_of(settings).for_unit(unit.code)
    if spec is None:
        raise Conflict(
            "signing_key_missing",
            f"No signing certificate is installed for unit {unit.code}. Ask the administrator to install "
            "the unit's PKCS#12 file.",
        )
    copy_id = uuid.uuid4()
    issued = datetime.now(UTC)
    facts = {
        "dossier_code": dossier.code,
        "procedure_code": dossier.procedure_code,
        "holder": dossier.subject_id_number,
        "document_name": result.document_name if result else f.name,
    }
    text = qr_text(settings, result, facts, issued)
    async with services.signing.slot():
        copy = await _make_copy(services, f, unit, spec, copy_id, issued, text, result, principal)
    async with services.db.transaction() as conn:
        await legal.insert_signed(conn, copy)
    return Signed(copy, True, result)


async def _make_copy(
    services: Services,
    f: File,
    unit: Unit,
    spec: SignerSpec,
    copy_id: uuid.UUID,
    issued: datetime,
    text: str,
    result: ResultCode | None,
    principal: Principal,
) -> SignedCopy:
    """Fetch the original (checked against its record), sign it in a child, store the copy."""
    settings = services.settings
    with tempfile.TemporaryDirectory(prefix="sign-") as folder:
        source, target = Path(folder) / "original.pdf", Path(folder) / "signed.pdf"
        digest = hashlib.sha256()
        try:
            with source.open("wb") as out:  # into the page cache: not worth a thread hop per chunk
                async for chunk in services.objects.stream(f.object_key):
                    digest.update(chunk)
                    out.write(chunk)
        except ObjectNotFound:
            raise NotFound(
                "content_missing", "The file's bytes are missing from storage. Tell the administrator."
            ) from None
        if digest.hexdigest() != f.sha256:
            log.error("file %s: stored bytes do not match the recorded SHA-256; not signed", f.id)
            raise Busy("content_mismatch", "The stored file does not match its record. Tell the administrator.")
        try:
            made = await services.signing.run(
                spec,
                str(source),
                str(target),
                qr_text=text,
                qr_size_mm=settings.qr_size_mm,
                field_name=f"KhoSoHoa-{copy_id.hex[:12]}",
                reason="Sao y bản chính từ bản giấy (bản số hóa)",
                location=unit.name,
            )
        except TimeoutError:
            raise Busy("signing_timeout", "Signing took too long. Try again later.", retry_after=30) from None
        except SignerUnavailable as exc:
            raise Conflict("signing_key_unusable", f"The unit's signing key cannot be used: {exc}.") from None
        except NotSignable as exc:
            raise Invalid(
                "file_not_signable",
                f"The file's structure does not allow a signature to be added ({exc}). Export or scan it again.",
            ) from None
        key = f"signed/{f.id}/{copy_id}.pdf"

        async def signed_bytes() -> AsyncIterator[bytes]:
            with target.open("rb") as fh:
                while block := fh.read(_CHUNK):
                    yield block

        size = target.stat().st_size
        stored = await services.objects.put_stream(
            key, signed_bytes(), content_type="application/pdf", max_bytes=size, length=size
        )
        copy_size, copy_sha256 = stored.size, stored.sha256
    return SignedCopy(
        id=copy_id,
        file_id=f.id,
        unit_id=unit.id,
        object_key=key,
        size=copy_size,
        sha256=copy_sha256,
        result_code=result.code if result else None,
        certificate_subject=made["certificate_subject"],
        certificate_serial=made["certificate_serial"],
        signed_by=principal.account.id,
        signed_at=issued,
        qr={"corner": made["corner"], "rect": made["rect"], "rotate": made["rotate"], "text": text},
        findings=made["findings"],
    )


# -- the signature policy ----------------------------------------------------------------------------------


async def policy_of(services: Services, unit: Unit) -> dict[str, Any]:
    """What the unit sets, and what applies to it (its own, an ancestor's, or the settings' default)."""
    own = await services.legal.policies_set(unit.id)
    found = await services.legal.policies_for(unit.id)
    applied = {kind: found[kind] or default_policy(services.settings, kind) for kind in FILE_KINDS}
    return {"unit": unit.code, "set": own, "applied": applied}


async def set_policy(
    services: Services, principal: Principal, unit: Unit, values: dict[str, str | None]
) -> dict[str, Any]:
    require_admin(principal)
    if not principal.can_write(unit.id):
        raise Forbidden("forbidden", "You may set the signature policy only of your own units.")
    async with services.db.transaction() as conn:
        for kind, policy in values.items():
            await services.legal.set_policy(conn, unit.id, kind, policy, principal.account.id)
    return await policy_of(services, unit)


# -- the public check ------------------------------------------------------------------------------------


def masked(holder: str) -> str:
    """The holder's identifier with all but its last four characters hidden."""
    if not holder:
        return ""
    return "*" * max(0, len(holder) - 4) + holder[-4:]


# A record that is never found, checked exactly like a real one, so that an unknown or withdrawn code
# takes the same work and time as a known one.
_NOBODY = ResultCode(
    code="",
    file_id=uuid.UUID(int=0),
    dossier_id=uuid.UUID(int=0),
    dossier_code="",
    procedure_code="",
    unit_id=0,
    unit_code="",
    unit_name="",
    result_type=None,
    holder="",
    document_name="",
    issued_at=datetime(2000, 1, 1, tzinfo=UTC),
    valid_until=None,
    withdrawn_at=None,
    file_sha256="0" * 64,
    copy_sha256=[],
)


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.strip().casefold().encode(), b.strip().casefold().encode())


async def verify(services: Services, code: str, given: dict[str, str]) -> dict[str, Any] | None:
    """What anyone may know of a result by its code; None when there is no such code in use (never
    existed, or withdrawn: the same answer). ``given`` may hold the SHA-256 of a copy (``sha256``) or the
    QR's fields (``dossier_code``, ``procedure_code``, ``holder``); each is compared."""
    found = await services.legal.result(code)
    record = found if found is not None and found.withdrawn_at is None else _NOBODY
    checks: dict[str, bool] = {}
    if given.get("sha256"):
        wanted = given["sha256"].lower()
        checks["sha256"] = any([_same(wanted, h) for h in [record.file_sha256, *record.copy_sha256]])
    for name, value in (
        ("dossier_code", record.dossier_code),
        ("procedure_code", record.procedure_code),
        ("holder", record.holder),
    ):
        if given.get(name):
            checks[name] = _same(given[name], value)
    if record is _NOBODY:
        return None
    today = datetime.now(VIETNAM).date()
    valid = record.valid_on(today)
    return {
        "code": record.code,
        "genuine": all(checks.values()) if checks else None,
        "checked": checks,
        "valid": valid,
        "state": "valid" if valid else "expired",
        "valid_until": record.valid_until,
        "issued_at": record.issued_at,
        "issued_by": {"code": record.unit_code, "name": record.unit_name},
        "document_name": record.document_name,
        "dossier_code": record.dossier_code,
        "procedure_code": record.procedure_code,
        "holder": masked(record.holder),
        "system": services.settings.system_name,
    }


def vi_date(day: date | None) -> str:
    return f"{day:%d/%m/%Y}" if day else "không thời hạn"

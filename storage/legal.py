"""Copies with legal standing (migration 0011): the signature policy per unit and file kind, the
digitization result code of each accepted result, and the organisation's signed copies."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from storage.catalogue import Catalogue, in_force, valid_until
from storage.config import Settings
from storage.db import Transaction

FILE_KINDS = ("component", "result")
# What a code may look like (the table's CHECK): anything else is looked up as a code no row has, so a
# malformed code (a NUL, a 10 KB string) costs the same as an unknown one and never reaches Postgres.
CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,79}$")


def result_code(fmt: str, *, holder: str, result_type: str, unit: str, year: int, seq: int) -> str:
    """The digitization result code (Circular 01/2023/TT-VPCP art. 10), the one place it is made.

    ``fmt`` is the setting ``result_code_format``; the default joins the holder's identifier, the result
    type's code and the sequence. Characters a code may not carry are dropped and empty parts (a holder
    without an identifier) leave no doubled separator, so every code is safe in a URL and a QR.
    """
    raw = fmt.format(holder=holder, result_type=result_type, unit=unit, year=year, seq=seq)
    code = re.sub(r"[^0-9A-Za-z._-]", "", raw)
    code = re.sub(r"([._-])[._-]+", r"\1", code).strip("._-")
    return code[:80]


def default_policy(settings: Settings, kind: str) -> str:
    """What an unsigned or badly signed file of this kind gets where no unit sets a policy."""
    return settings.signature_policy_result if kind == "result" else settings.signature_policy_component


@dataclass(frozen=True, slots=True)
class NewResultCode:
    """A code to give a result file in the same statement that accepts it."""

    code: str
    seq: int
    result_type: str | None
    holder: str
    document_name: str
    valid_until: date | None


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What the inspection of a file needs of its dossier: the unit (its signature policy) and what a
    result code is made of."""

    unit_id: int
    unit_code: str
    dossier_code: str
    procedure_code: str
    received_on: date
    holder: str
    result_kind_code: str | None
    result_issued_on: date | None
    result_valid_until: date | None
    policy_component: str | None = None  # the signature policy the unit or its nearest ancestor sets
    policy_result: str | None = None

    def policy(self, kind: str, settings: Settings) -> str:
        """The policy for this file kind: the unit's (or an ancestor's), else the settings' default."""
        found = self.policy_result if kind == "result" else self.policy_component
        return found or default_policy(settings, kind)


@dataclass(frozen=True, slots=True)
class ResultCode:
    code: str
    file_id: UUID
    dossier_id: UUID
    dossier_code: str
    procedure_code: str
    unit_id: int
    unit_code: str
    unit_name: str
    result_type: str | None
    holder: str
    document_name: str
    issued_at: datetime
    valid_until: date | None
    withdrawn_at: datetime | None
    file_sha256: str
    copy_sha256: list[str]  # of its signed copies

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> ResultCode:
        return cls(**{f.name: r[f.name] for f in fields(cls)})

    def valid_on(self, day: date) -> bool:
        return self.withdrawn_at is None and (self.valid_until is None or day <= self.valid_until)


@dataclass(frozen=True, slots=True)
class SignedCopy:
    id: UUID
    file_id: UUID
    unit_id: int
    object_key: str
    size: int
    sha256: str
    result_code: str | None
    certificate_subject: str
    certificate_serial: str
    signed_by: int
    signed_at: datetime
    qr: dict[str, Any]
    findings: list[dict[str, Any]]

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> SignedCopy:
        return cls(**{f.name: r[f.name] for f in fields(cls)})


_RESULT = """
SELECT r.code, r.file_id, r.dossier_id, d.code AS dossier_code, d.procedure_code, r.unit_id,
       u.code AS unit_code, u.name AS unit_name, r.result_type, r.holder, r.document_name, r.issued_at,
       r.valid_until, r.withdrawn_at, f.sha256 AS file_sha256,
       ARRAY(SELECT s.sha256 FROM signed_copies s WHERE s.file_id = r.file_id) AS copy_sha256
FROM result_codes r JOIN dossiers d ON d.id = r.dossier_id JOIN units u ON u.id = r.unit_id
JOIN files f ON f.id = r.file_id
"""

_SIGNED = """id, file_id, unit_id, object_key, size, sha256, result_code, certificate_subject,
certificate_serial, signed_by, signed_at, qr, findings"""


class Legal:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # -- the signature policy ------------------------------------------------------------------------

    async def policies_for(self, unit_id: int) -> dict[str, str | None]:
        """The policy that applies to the unit's files of each kind (None: the settings' default)."""
        r = await self._pool.fetchrow(
            "SELECT signature_policy_of($1, 'component') AS component, signature_policy_of($1, 'result') AS result",
            unit_id,
        )
        assert r is not None  # a SELECT of two values answers one row
        return {kind: r[kind] for kind in FILE_KINDS}

    async def policies_set(self, unit_id: int) -> dict[str, str]:
        """The policies the unit itself sets, by file kind."""
        rows = await self._pool.fetch("SELECT file_kind, policy FROM signature_policies WHERE unit_id = $1", unit_id)
        return {r["file_kind"]: r["policy"] for r in rows}

    async def set_policy(self, conn: Transaction, unit_id: int, kind: str, policy: str | None, by: int) -> None:
        """Set (or, with None, clear so the unit inherits) the unit's policy for a file kind."""
        if policy is None:
            await conn.execute("DELETE FROM signature_policies WHERE unit_id = $1 AND file_kind = $2", unit_id, kind)
            return
        await conn.execute(
            """
            INSERT INTO signature_policies (unit_id, file_kind, policy, updated_by) VALUES ($1, $2, $3, $4)
            ON CONFLICT (unit_id, file_kind) DO UPDATE
            SET policy = excluded.policy, updated_by = excluded.updated_by, updated_at = now()
            """,
            unit_id,
            kind,
            policy,
            by,
        )

    # -- result codes ----------------------------------------------------------------------------------

    async def files_facts(self, file_ids: Sequence[UUID]) -> dict[UUID, FileFacts]:
        """Each file's dossier and unit, and the signature policies that apply there, in one query, by
        file id."""
        rows = await self._pool.fetch(
            """
            SELECT f.id AS file_id, d.unit_id, u.code AS unit_code, d.code AS dossier_code, d.procedure_code,
                   d.received_on, d.subject_id_number AS holder, d.result_kind_code, d.result_issued_on,
                   d.result_valid_until,
                   signature_policy_of(d.unit_id, 'component') AS policy_component,
                   signature_policy_of(d.unit_id, 'result') AS policy_result
            FROM files f JOIN dossiers d ON d.id = f.dossier_id JOIN units u ON u.id = d.unit_id
            WHERE f.id = ANY($1::uuid[])
            """,
            list(file_ids),
        )
        out = {}
        for r in rows:
            values = dict(r)
            file_id = values.pop("file_id")
            out[file_id] = FileFacts(**values)
        return out

    async def new_code(
        self, fmt: str, facts: FileFacts, *, part_code: str | None, file_name: str, today: date
    ) -> NewResultCode:
        """A code for a result of this dossier, from the next number of the sequence (never reused).

        The result type is the file's part code, else the dossier's result kind; the document's name
        and its validity come from the procedure version in force on the day the dossier was received
        (the dossier's own validity first, when it states one).
        """
        seq = int(await self._pool.fetchval("SELECT nextval('result_code_seq')"))
        result_type = part_code or facts.result_kind_code
        versions = (await Catalogue(self._pool).versions([facts.procedure_code])).get(facts.procedure_code, [])
        version = in_force(versions, facts.received_on)
        kind = version.result_type(result_type) if version is not None and result_type else None
        until = facts.result_valid_until
        if until is None and kind is not None:
            until = valid_until(kind, facts.result_issued_on or today)
        code = result_code(
            fmt,
            holder=facts.holder,
            result_type=result_type or "",
            unit=facts.unit_code,
            year=today.year,
            seq=seq,
        )
        return NewResultCode(
            code=code or str(seq),
            seq=seq,
            result_type=result_type,
            holder=facts.holder,
            document_name=(kind.name if kind is not None else file_name)[:300],
            valid_until=until,
        )

    async def code_of_file(self, file_id: UUID) -> NewResultCode | None:
        """The code the file was given, as it was given."""
        r = await self._pool.fetchrow(
            """SELECT code, seq, result_type, holder, document_name, valid_until FROM result_codes
            WHERE file_id = $1""",
            file_id,
        )
        return NewResultCode(**dict(r)) if r else None

    async def result(self, code: str) -> ResultCode | None:
        """The result with this code, withdrawn or not."""
        r = await self._pool.fetchrow(_RESULT + " WHERE r.code = $1", code if CODE.match(code) else "-")
        return ResultCode.from_record(r) if r else None

    async def result_of_file(self, file_id: UUID) -> ResultCode | None:
        r = await self._pool.fetchrow(_RESULT + " WHERE r.file_id = $1", file_id)
        return ResultCode.from_record(r) if r else None

    async def insert_signed(self, conn: Transaction, copy: SignedCopy) -> None:
        await conn.execute(
            f"INSERT INTO signed_copies ({_SIGNED}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            *(getattr(copy, f.name) for f in fields(SignedCopy)),
        )

    async def signed_copies(self, file_id: UUID) -> list[SignedCopy]:
        """The file's signed copies, newest first."""
        rows = await self._pool.fetch(
            f"SELECT {_SIGNED} FROM signed_copies WHERE file_id = $1 ORDER BY signed_at DESC", file_id
        )
        return [SignedCopy.from_record(r) for r in rows]

"""The shapes of dossier fields, the one place both the server and the station client read them: the
server refuses what breaks them (422), the client finds it in the manifest before a long upload.
Standard library only, so the client can import it without any of the server's dependencies.

Procedure codes follow the national procedure database (e.g. ``1.002891`` or
``1.002891.000.00.00.H40``); dossier codes Circular 01/2018/TT-VPCP art. 19; unit codes Decision
20/2020/QĐ-TTg (``000.01.21.HXX``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROCEDURE_CODE = r"^[0-9]\.[0-9]{6}(\.[0-9A-Z]+)*$"
DOSSIER_CODE = r"^[0-9A-Za-z][0-9A-Za-z./_-]{2,63}$"
UNIT_CODE = r"^[0-9A-Z.]{1,35}$"
# A component or result type within its procedure (e.g. ``TP1``, ``KQ1``).
PART_CODE = r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$"


@dataclass(frozen=True, slots=True)
class IdKind:
    pattern: str
    vi: str
    en: str


# Identifier kinds of a person or organisation, and the shape each number takes.
ID_KINDS: dict[str, IdKind] = {
    "cccd": IdKind(r"^[0-9]{12}$", "CCCD có 12 chữ số", "a citizen ID (CCCD) has 12 digits"),
    "cmnd": IdKind(r"^([0-9]{9}|[0-9]{12})$", "CMND có 9 hoặc 12 chữ số", "an old ID card (CMND) has 9 or 12 digits"),
    "passport": IdKind(
        r"^[A-Z0-9]{6,9}$", "hộ chiếu có 6 đến 9 chữ hoặc số", "a passport number has 6 to 9 letters or digits"
    ),
    "mst": IdKind(
        r"^[0-9]{10}(-[0-9]{3})?$",
        "mã số thuế có 10 chữ số, hoặc 10-3",
        "a tax or enterprise code has 10 digits, or 10-3",
    ),
    "other": IdKind(r"^\S.{0,63}$", "số giấy tờ có 1 đến 64 ký tự", "an identifier has 1 to 64 characters"),
}


def normalize_identifier(kind: str, number: str) -> str:
    """The number as it is stored: trimmed, and upper-cased where letters carry no case (passports)."""
    value = number.strip()
    return value.upper() if kind == "passport" else value


def identifier_fits(kind: str, number: str) -> bool:
    """Whether a normalized number has the shape of its (known) kind."""
    return re.fullmatch(ID_KINDS[kind].pattern, number) is not None

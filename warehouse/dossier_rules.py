"""Rules for dossier fields and codes (Decree 61/2018 art. 26, Circular 01/2018/TT-VPCP art. 19)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from warehouse.refusals import Conflict, Invalid

# The shapes themselves are shared with the station client's manifest check (warehouse/rules.py).
from warehouse.rules import ID_KINDS, identifier_fits, normalize_identifier

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_DAILY_SEQUENCE = 9999


def today_local() -> date:
    """Today in Vietnam, which is what a dossier's receipt date and code mean."""
    return datetime.now(LOCAL_TZ).date()


def format_dossier_code(unit_code: str, received_on: date, sequence: int) -> str:
    """``<receiving unit code>-YYMMDD-XXXX``."""
    if not 1 <= sequence <= MAX_DAILY_SEQUENCE:
        raise Conflict(
            "daily_sequence_exhausted",
            f"Unit {unit_code} has already received {MAX_DAILY_SEQUENCE} dossiers on {received_on:%d/%m/%Y}; "
            "give this dossier its code explicitly.",
        )
    return f"{unit_code}-{received_on:%y%m%d}-{sequence:04d}"


def check_identifier(kind: str, number: str) -> str:
    """The identifier number in its stored form, or a 422 saying what shape it must take."""
    if kind not in ID_KINDS:
        raise Invalid(
            "invalid_id_kind",
            f"subject.id_kind must be one of {', '.join(ID_KINDS)}; got {kind!r}.",
        )
    value = normalize_identifier(kind, number)
    if not identifier_fits(kind, value):
        raise Invalid("invalid_id_number", f"subject.id_number is not valid: {ID_KINDS[kind].en}.")
    return value


def check_dates(
    received_on: date | None,
    issued_on: date | None,
    valid_until: date | None,
) -> None:
    today = today_local()
    if received_on is not None and received_on > today:
        raise Invalid("received_in_future", "received_on cannot be later than today.")
    if issued_on is not None and issued_on > today:
        raise Invalid("issued_in_future", "result.issued_on cannot be later than today.")
    if issued_on is not None and valid_until is not None and valid_until < issued_on:
        raise Invalid("validity_before_issue", "result.valid_until cannot be earlier than result.issued_on.")

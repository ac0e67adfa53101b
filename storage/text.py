"""Text folding shared by what writes search text and what searches it; text Postgres can store."""

from __future__ import annotations

import unicodedata
from typing import Any

_EXTRA = str.maketrans({"đ": "d", "Đ": "d"})


def nfc(value: str) -> str:
    """Vietnamese text in one normal form (NFC), as stored and compared."""
    return unicodedata.normalize("NFC", value)


def fold(value: str) -> str:
    """Lower case, without diacritics and with single spaces: ``Lạng Sơn`` -> ``lang son``."""
    decomposed = unicodedata.normalize("NFD", value.translate(_EXTRA))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.lower().split())


def storable(value: Any) -> Any:
    """``value`` with NUL characters removed from every string in it (Postgres refuses them in text and
    jsonb; real PDFs' extracted text carries them)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value

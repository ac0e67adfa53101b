"""Text folding shared by what writes search text and what searches it."""

from __future__ import annotations

import unicodedata

_EXTRA = str.maketrans({"đ": "d", "Đ": "d"})


def nfc(value: str) -> str:
    """Vietnamese text in one normal form (NFC), as stored and compared."""
    return unicodedata.normalize("NFC", value)


def fold(value: str) -> str:
    """Lower case, without diacritics and with single spaces: ``Lạng Sơn`` -> ``lang son``."""
    decomposed = unicodedata.normalize("NFD", value.translate(_EXTRA))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.lower().split())

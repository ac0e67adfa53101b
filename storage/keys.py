"""The one place that knows how object keys are laid out in the bucket."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID


def original_key(file_id: UUID, received_at: datetime) -> str:
    """Where the bytes of an uploaded file live: by month, so a prefix lists a month's intake."""
    return f"originals/{received_at:%Y/%m}/{file_id}.pdf"


def incoming_key(session_id: UUID) -> str:
    """Where a direct upload's client writes with its presigned POST policy when the store cannot pin
    the bytes by their SHA-256. The warehouse copies the bytes from here to their ``original_key``
    before checking them, so no credential a client ever held can write other bytes under a record."""
    return f"incoming/{session_id}.pdf"


def ocr_key(original: str) -> str:
    """The OCR'd copy of an original, beside it: ``originals/...`` -> ``derived/.../<id>.ocr.pdf``."""
    stem = original.removeprefix("originals/").removesuffix(".pdf")
    return f"derived/{stem}.ocr.pdf"

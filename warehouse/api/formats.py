"""Which format an answer that comes in several is wanted in: ``?format=`` first, else ``Accept``."""

from __future__ import annotations

from warehouse.api.deps import Caller
from warehouse.api.problems import XLSX

FORMATS = {"csv": "text/csv", "xlsx": XLSX, "png": "image/png", "json": "application/json", "html": "text/html"}


def wanted_format(request: Caller, format: str | None, offered: tuple[str, ...]) -> str:
    """The media type asked for: the one ``format`` names, else the first of ``offered`` that ``Accept``
    names, else JSON."""
    if format in FORMATS:
        return FORMATS[format]
    accept = request.headers.get("accept", "")
    return next((m for m in offered if m in accept), "application/json")

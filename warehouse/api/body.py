"""Reading a whole request body that must stay small (a batch, a spreadsheet), under a limit that is a
setting: refused with 413 as soon as it is known to be larger, never held past the limit."""

from __future__ import annotations

from warehouse.api.deps import Caller
from warehouse.refusals import TooLarge
from warehouse.uploads import content_length


def _too_large(limit: int, what: str) -> TooLarge:
    size = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
    return TooLarge("body_too_large", f"The {what} is larger than the {size} this warehouse takes. Send it in parts.")


async def read_body(request: Caller, limit: int, *, what: str) -> bytes:
    declared = content_length(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise _too_large(limit, what)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit, what)
    return bytes(body)

"""Fair share: per-account and per-unit limits, so one commune uploading flat out cannot slow the rest.

Counters live in Redis (storage.limits), so the limits hold across API processes. Defaults are
settings; an account's ``limits`` override them (keys below).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

from storage import Account, Budget, Settings, Window, WindowState
from warehouse.context import Services
from warehouse.refusals import TooLarge, TooMany, TooSlow

MiB = 1024 * 1024
LIMIT_KEYS = ("requests_per_second", "concurrent_uploads", "upload_mb_per_minute")


def account_limits(settings: Settings, account: Account) -> dict[str, int]:
    limits = {
        "requests_per_second": settings.rate_account_rps,
        "concurrent_uploads": settings.rate_account_uploads,
        "upload_mb_per_minute": settings.rate_account_upload_mb_per_minute,
    }
    for key, value in (account.limits or {}).items():
        if key in limits and isinstance(value, int) and value > 0:
            limits[key] = value
    return limits


def reset_seconds(state: WindowState) -> int:
    """Whole seconds until the window lets requests through again (at least one)."""
    return max(1, math.ceil(state.resets_in_ms / 1000))


def rate_headers(state: WindowState) -> dict[str, str]:
    return {
        "RateLimit-Limit": str(state.window.limit),
        "RateLimit-Remaining": str(state.remaining),
        "RateLimit-Reset": str(reset_seconds(state)),
    }


def over_limit_sentence(state: WindowState, what: str) -> str:
    return f"Too many {what}. Wait {reset_seconds(state)} seconds and try again."


def _tightest(states: list[WindowState]) -> WindowState:
    return min(states, key=lambda s: (s.remaining, -s.resets_in_ms))


async def check_request(services: Services, account: Account) -> tuple[WindowState | None, str | None]:
    """Count one request against the account and its unit: the tightest window, and what is over its
    limit (None when neither is; the caller refuses the request with 429 otherwise)."""
    limits = account_limits(services.settings, account)
    states = await services.counters.hit(
        [
            Window(f"rl:rps:a:{account.id}", limits["requests_per_second"], 1),
            Window(f"rl:rps:u:{account.unit_id}", services.settings.rate_unit_rps, 1),
        ]
    )
    if states is None:
        return None, None
    for state in states:
        if state.exceeded:
            return state, "requests from your account" if state is states[0] else "requests from your unit"
    return _tightest(states), None


def _budgets(settings: Settings, account: Account) -> list[Budget]:
    limits = account_limits(settings, account)
    return [
        Budget(f"rl:bytes:a:{account.id}", limits["upload_mb_per_minute"] * MiB / 60, _BURST_SECONDS),
        Budget(f"rl:bytes:u:{account.unit_id}", settings.rate_unit_upload_mb_per_minute * MiB / 60, _BURST_SECONDS),
    ]


def _slot_keys(account: Account) -> list[str]:
    return [f"rl:slot:a:{account.id}", f"rl:slot:u:{account.unit_id}"]


# Uploads may run this far ahead of their per-minute volume before the next one waits (the old
# fixed windows were a sixth of a minute).
_BURST_SECONDS = 10.0
# A paused sender is held at most this long at a time (then charged again).
_MAX_PAUSE_SECONDS = 10.0
_CHARGE_STEP = MiB


async def check_volume(services: Services, account: Account) -> None:
    """429 when the account or its unit has already sent more than its per-minute volume allows."""
    state = await services.counters.spend(_budgets(services.settings, account), 0, refuse_when_behind=True)
    if state is not None and state.refused:
        wait = max(1, math.ceil(state.wait_ms / 1000))
        whom = "your account" if state.refused == 1 else "your unit"
        raise TooMany(
            "rate_limited",
            f"Too many megabytes uploaded in the last minute from {whom}. Wait {wait} seconds and try again.",
            retry_after=wait,
        )


async def charge_volume(services: Services, account: Account, size: int) -> None:
    """Count ``size`` bytes that went (or will go) to the store without passing through the API."""
    await services.counters.spend(_budgets(services.settings, account), size, refuse_when_behind=False)


@asynccontextmanager
async def upload_slot(
    services: Services, account: Account, holder: str | None = None, *, expiry_seconds: float = 3600
) -> AsyncIterator[str]:
    """Hold one of the account's and the unit's concurrent-upload slots while the body is received
    (after checking the volume budget). Yields the holder's name."""
    await check_volume(services, account)
    holder = holder or f"req:{uuid4()}"
    taken = await take_slot(services, account, holder, expiry_seconds=expiry_seconds)
    try:
        yield holder
    finally:
        if taken:
            await release_slot(services, account, holder)


async def take_slot(services: Services, account: Account, holder: str, *, expiry_seconds: float) -> bool:
    """Take a slot for ``holder`` (a direct upload holds one until it completes or its policy ends);
    429 when the account's or the unit's are all taken. False when the counters are unavailable."""
    settings = services.settings
    limits = account_limits(settings, account)
    keys = _slot_keys(account)
    full = await services.counters.acquire(
        [(keys[0], limits["concurrent_uploads"]), (keys[1], settings.rate_unit_uploads)],
        holder,
        expiry_seconds=expiry_seconds,
    )
    if full:
        whom = "your account" if full == 1 else "your unit"
        raise TooMany(
            "too_many_uploads",
            f"Too many uploads at once from {whom}. Wait for one to finish, then send the next.",
            retry_after=5,
        )
    return full is not None


async def release_slot(services: Services, account: Account, holder: str) -> None:
    await services.counters.release(_slot_keys(account), holder)


async def metered(
    services: Services, account: Account, body: AsyncIterator[bytes], *, max_bytes: int
) -> AsyncIterator[bytes]:
    """The request body, charged to the account's and unit's volume as it arrives.

    A sender that runs ahead of its per-minute volume is paused (its bytes are simply not read, so the
    connection slows it down). A body that stops for ``upload_idle_seconds``, or arrives slower than
    ``upload_min_bytes_per_second`` once ``upload_rate_grace_seconds`` have passed (pauses not counted),
    is refused with 408; more than ``max_bytes`` with 413. A sender can therefore hold an upload slot
    only while it actually sends.
    """
    settings = services.settings
    budgets = _budgets(settings, account)
    started = time.monotonic()
    paused = 0.0
    total = 0
    uncharged = 0
    iterator = aiter(body)
    while True:
        try:
            async with asyncio.timeout(settings.upload_idle_seconds):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise _too_slow(
                f"Nothing arrived for {settings.upload_idle_seconds:g} seconds, so the upload was stopped."
            ) from None
        total += len(chunk)
        if total > max_bytes:
            raise TooLarge(
                "body_too_large",
                f"The request is larger than the {max_bytes // MiB} MiB this warehouse accepts. "
                "Split the scan into several files or lower its resolution.",
            )
        active = time.monotonic() - started - paused
        if active > settings.upload_rate_grace_seconds and total / active < settings.upload_min_bytes_per_second:
            raise _too_slow(f"The upload arrived at {total / active:.0f} bytes a second.")
        uncharged += len(chunk)
        if uncharged >= _CHARGE_STEP:
            state = await services.counters.spend(budgets, uncharged, refuse_when_behind=False)
            uncharged = 0
            if state is not None and state.wait_ms > 0:
                pause = min(state.wait_ms / 1000, _MAX_PAUSE_SECONDS)
                await asyncio.sleep(pause)
                paused += pause
        yield chunk
    if uncharged:
        await services.counters.spend(budgets, uncharged, refuse_when_behind=False)


def _too_slow(what: str) -> TooSlow:
    # The body is left unread, so the answer also closes the connection (warehouse/connections.py).
    return TooSlow(
        "upload_too_slow",
        f"{what} Check the connection and send the file again; on a weak link, send it in parts "
        "(POST /api/v1/uploads) so that a break costs only one part.",
    )

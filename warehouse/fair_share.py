"""Fair share: per-account and per-unit limits, so one commune uploading flat out cannot slow the rest.

Counters live in Redis (storage.limits), so the limits hold across API processes. Defaults are
settings; an account's ``limits`` override them (keys below).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from storage import Account, Settings, Window, WindowState
from warehouse.context import Services
from warehouse.errors import Problem

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


def rate_headers(state: WindowState) -> dict[str, str]:
    reset = max(1, math.ceil(state.resets_in_ms / 1000))
    return {
        "RateLimit-Limit": str(state.window.limit),
        "RateLimit-Remaining": str(state.remaining),
        "RateLimit-Reset": str(reset),
    }


def _refusal(state: WindowState, what: str) -> Problem:
    reset = max(1, math.ceil(state.resets_in_ms / 1000))
    return Problem(
        429,
        "rate_limited",
        f"Too many {what}. Wait {reset} seconds and try again.",
        headers={"Retry-After": str(reset), **rate_headers(state)},
    )


def _tightest(states: list[WindowState]) -> WindowState:
    return min(states, key=lambda s: (s.remaining, -s.resets_in_ms))


async def check_request(services: Services, account: Account) -> WindowState | None:
    """Count one request against the account and its unit; 429 when either is over its limit."""
    limits = account_limits(services.settings, account)
    states = await services.counters.hit(
        [
            Window(f"rl:rps:a:{account.id}", limits["requests_per_second"], 1),
            Window(f"rl:rps:u:{account.unit_id}", services.settings.rate_unit_rps, 1),
        ]
    )
    if states is None:
        return None
    for state in states:
        if state.exceeded:
            whom = "requests from your account" if state is states[0] else "requests from your unit"
            raise _refusal(state, whom)
    return _tightest(states)


@asynccontextmanager
async def upload_slot(services: Services, account: Account, declared_bytes: int | None) -> AsyncIterator[None]:
    """Hold one of the account's and the unit's concurrent-upload slots, and count the bytes."""
    settings = services.settings
    limits = account_limits(settings, account)
    if declared_bytes:
        await count_upload_bytes(services, account, declared_bytes)
    keys = [f"rl:up:a:{account.id}", f"rl:up:u:{account.unit_id}"]
    full = await services.counters.acquire(
        [(keys[0], limits["concurrent_uploads"]), (keys[1], settings.rate_unit_uploads)]
    )
    if full:
        whom = "your account" if full == 1 else "your unit"
        raise Problem(
            429,
            "too_many_uploads",
            f"Too many uploads at once from {whom}. Wait for one to finish, then send the next.",
            headers={"Retry-After": "5"},
        )
    try:
        yield
    finally:
        if full is not None:
            await services.counters.release(keys)


# Per-minute byte budgets are enforced in windows of a sixth of a minute, so a greedy sender is held
# to its pace instead of spending the whole minute's budget in a burst and then waiting.
_BYTE_WINDOW_SECONDS = 10
_WINDOWS_PER_MINUTE = 60 // _BYTE_WINDOW_SECONDS


async def count_upload_bytes(services: Services, account: Account, size: int) -> None:
    limits = account_limits(services.settings, account)
    amount = max(1, size // MiB)
    per_window = [
        max(1, limits["upload_mb_per_minute"] // _WINDOWS_PER_MINUTE),
        max(1, services.settings.rate_unit_upload_mb_per_minute // _WINDOWS_PER_MINUTE),
    ]
    states = await services.counters.hit(
        [
            Window(f"rl:mb:a:{account.id}", per_window[0], _BYTE_WINDOW_SECONDS, amount),
            Window(f"rl:mb:u:{account.unit_id}", per_window[1], _BYTE_WINDOW_SECONDS, amount),
        ]
    )
    for state in states or []:
        if state.exceeded:
            raise _refusal(state, "megabytes uploaded in the last minute")

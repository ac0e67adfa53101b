"""Counters in Redis behind the fair-share limits, shared by every API process.

Fixed windows that start at their first hit; concurrency slots with a safety expiry. When Redis does
not answer, limits are not enforced (the warehouse keeps serving) and a warning is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# For each key i: ARGV[2i-1] = amount, ARGV[2i] = window seconds. Returns {count, ttl} per key.
_HIT = """
local out = {}
for i = 1, #KEYS do
    local amount = tonumber(ARGV[2 * i - 1])
    local window = tonumber(ARGV[2 * i])
    local value = redis.call('INCRBY', KEYS[i], amount)
    if value == amount then redis.call('PEXPIRE', KEYS[i], window * 1000) end
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then redis.call('PEXPIRE', KEYS[i], window * 1000); ttl = window * 1000 end
    out[#out + 1] = value
    out[#out + 1] = ttl
end
return out
"""

# Take one slot in every key if all are below their limit (ARGV[i]); ARGV[#KEYS + 1] = safety expiry.
_ACQUIRE = """
for i = 1, #KEYS do
    local held = tonumber(redis.call('GET', KEYS[i]) or '0')
    if held >= tonumber(ARGV[i]) then return i end
end
for i = 1, #KEYS do
    redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[#KEYS + 1]))
end
return 0
"""

_RELEASE = """
for i = 1, #KEYS do
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Window:
    """A limit of ``limit`` units per ``seconds``, counted under ``key``."""

    key: str
    limit: int
    seconds: int
    amount: int = 1


@dataclass(frozen=True, slots=True)
class WindowState:
    window: Window
    used: int
    resets_in_ms: int

    @property
    def exceeded(self) -> bool:
        return self.used > self.window.limit

    @property
    def remaining(self) -> int:
        return max(0, self.window.limit - self.used)


class Counters:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._hit = redis.register_script(_HIT)
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)

    async def hit(self, windows: list[Window]) -> list[WindowState] | None:
        """Count a hit in each window; None when Redis does not answer (nothing is enforced then)."""
        args: list[int] = []
        for w in windows:
            args += [w.amount, w.seconds]
        try:
            raw = await self._hit(keys=[w.key for w in windows], args=args)
        except (RedisError, OSError) as exc:
            log.warning("rate counters unavailable, not enforcing: %s", exc)
            return None
        return [WindowState(w, int(raw[2 * i]), int(raw[2 * i + 1])) for i, w in enumerate(windows)]

    async def acquire(self, slots: list[tuple[str, int]], *, expiry_seconds: int = 3600) -> int | None:
        """Take a slot in each (key, limit). 0 when taken, else the 1-based index of the full one;
        None when Redis does not answer."""
        try:
            full = await self._acquire(keys=[k for k, _ in slots], args=[lim for _, lim in slots] + [expiry_seconds])
        except (RedisError, OSError) as exc:
            log.warning("concurrency counters unavailable, not enforcing: %s", exc)
            return None
        return int(full)

    async def release(self, keys: list[str]) -> None:
        try:
            await self._release(keys=keys, args=[])
        except (RedisError, OSError) as exc:
            log.warning("could not release concurrency slots %s: %s", keys, exc)

"""Counters in Redis behind the fair-share limits, shared by every API process.

Three kinds, each one Lua script so a decision is atomic across processes:

- request windows: fixed windows that start at their first hit. A hit is counted in every window or
  in none: a request refused for its account does not use up its unit's share;
- byte budgets: a rate with a burst allowance (GCRA, times from Redis' own clock). An upload may start
  while the budget is no more than its burst ahead; the bytes are charged as they arrive, and the
  answer says how far past the burst the charge went, so the sender can be paused to its pace;
- slots: concurrency limits whose holders each carry their own expiry (a sorted set per key), so a
  holder that dies or a direct upload that is never completed frees its slot by itself.

When Redis does not answer, limits are not enforced (the warehouse keeps serving) and a warning is
logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# For each key i: ARGV[3i-2] = amount, ARGV[3i-1] = window seconds, ARGV[3i] = limit.
# Returns {refused, count_1, ttl_1, ...}: refused is 0 when every window took the hit, else the index
# of the first window it would have overrun (then nothing was counted, and that window's count is the
# one it would have reached).
_HIT = """
local counts, ttls = {}, {}
local refused = 0
for i = 1, #KEYS do
    local amount = tonumber(ARGV[3 * i - 2])
    local value = tonumber(redis.call('GET', KEYS[i]) or '0')
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then ttl = tonumber(ARGV[3 * i - 1]) * 1000 end
    counts[i], ttls[i] = value, ttl
    if refused == 0 and value + amount > tonumber(ARGV[3 * i]) then
        refused = i
        counts[i] = value + amount
    end
end
if refused == 0 then
    for i = 1, #KEYS do
        local amount = tonumber(ARGV[3 * i - 2])
        local value = redis.call('INCRBY', KEYS[i], amount)
        if value == amount or redis.call('PTTL', KEYS[i]) < 0 then
            redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[3 * i - 1]) * 1000)
        end
        counts[i] = value
        ttls[i] = redis.call('PTTL', KEYS[i])
    end
end
local out = {refused}
for i = 1, #KEYS do
    out[#out + 1] = counts[i]
    out[#out + 1] = ttls[i]
end
return out
"""

# For each key i: ARGV[3i-2] = milliseconds one unit costs, ARGV[3i-1] = burst in milliseconds,
# ARGV[3i] = amount; ARGV[3n+1] = 1 to refuse when a key is already past its burst (then nothing is
# charged), 0 to charge regardless. Returns {refused, wait_ms}: refused is the index of the key that
# refused (0 when charged); wait_ms is how far past its burst the worst key is (after the charge).
_BUDGET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local check = tonumber(ARGV[3 * n + 1]) == 1
local tats = {}
for i = 1, n do
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat < now then tat = now end
    tats[i] = tat
    local over = tat - now - tonumber(ARGV[3 * i - 1])
    if check and over > 0 then return {i, math.ceil(over)} end
end
local wait = 0
for i = 1, n do
    local burst = tonumber(ARGV[3 * i - 1])
    local new = tats[i] + tonumber(ARGV[3 * i - 2]) * tonumber(ARGV[3 * i])
    redis.call('SET', KEYS[i], string.format('%d', new), 'PX', math.ceil(new - now + burst) + 1000)
    if new - now - burst > wait then wait = new - now - burst end
end
return {0, math.ceil(wait)}
"""

# KEYS: slot sets; ARGV[i] = limit of KEYS[i]; ARGV[n+1] = holder; ARGV[n+2] = its expiry in ms.
# A holder already in a set keeps its place (its expiry is renewed). Returns 0, or the index of the
# first full set (then nothing was taken).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local holder = ARGV[n + 1]
local expiry = tonumber(ARGV[n + 2])
for i = 1, n do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    if not redis.call('ZSCORE', KEYS[i], holder) and redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[i]) then
        return i
    end
end
for i = 1, n do
    redis.call('ZADD', KEYS[i], now + expiry, holder)
    local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
    redis.call('PEXPIREAT', KEYS[i], math.max(tonumber(last[2]), now + expiry))
end
return 0
"""

_RELEASE = """
for i = 1, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
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


@dataclass(frozen=True, slots=True)
class Budget:
    """``units_per_second`` on average under ``key``, allowed to run ``burst_seconds`` ahead."""

    key: str
    units_per_second: float
    burst_seconds: float


@dataclass(frozen=True, slots=True)
class BudgetState:
    refused: int  # 1-based index of the budget that refused (nothing charged), 0 when charged
    wait_ms: int  # how long until the worst budget is back within its burst


class Counters:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._hit = redis.register_script(_HIT)
        self._budget = redis.register_script(_BUDGET)
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)

    async def hit(self, windows: list[Window]) -> list[WindowState] | None:
        """Count a hit in every window, or in none when one would go over its limit (that window's
        state is then ``exceeded``); None when Redis does not answer (nothing is enforced then)."""
        args: list[int] = []
        for w in windows:
            args += [w.amount, w.seconds, w.limit]
        try:
            raw = await self._hit(keys=[w.key for w in windows], args=args)
        except (RedisError, OSError) as exc:
            log.warning("rate counters unavailable, not enforcing: %s", exc)
            return None
        return [WindowState(w, int(raw[1 + 2 * i]), int(raw[2 + 2 * i])) for i, w in enumerate(windows)]

    async def spend(self, budgets: list[Budget], amount: int, *, refuse_when_behind: bool) -> BudgetState | None:
        """Charge ``amount`` to every budget. With ``refuse_when_behind``, charge nothing and name the
        budget when one is already past its burst. None when Redis does not answer."""
        args: list[float | int] = []
        for b in budgets:
            args += [1000.0 / b.units_per_second, int(b.burst_seconds * 1000), amount]
        args.append(1 if refuse_when_behind else 0)
        try:
            refused, wait = await self._budget(keys=[b.key for b in budgets], args=args)
        except (RedisError, OSError) as exc:
            log.warning("byte budgets unavailable, not enforcing: %s", exc)
            return None
        return BudgetState(int(refused), int(wait))

    async def acquire(self, slots: list[tuple[str, int]], holder: str, *, expiry_seconds: float) -> int | None:
        """Take a slot for ``holder`` in each (key, limit) until it is released or ``expiry_seconds``
        pass. 0 when taken, else the 1-based index of the full one; None when Redis does not answer."""
        try:
            full = await self._acquire(
                keys=[k for k, _ in slots],
                args=[lim for _, lim in slots] + [holder, int(expiry_seconds * 1000)],
            )
        except (RedisError, OSError) as exc:
            log.warning("concurrency counters unavailable, not enforcing: %s", exc)
            return None
        return int(full)

    async def release(self, keys: list[str], holder: str) -> None:
        try:
            await self._release(keys=keys, args=[holder])
        except (RedisError, OSError) as exc:
            log.warning("could not release concurrency slots %s: %s", keys, exc)


# KEYS[1] = the login's hash of failures by address; ARGV: address, free attempts, base ms, max ms.
# Counts a failure from that address; past the free attempts the pair is locked, twice as long each
# time. Returns the lock's remaining milliseconds (0: not locked).
_SIGN_IN_FAILED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('HINCRBY', KEYS[1], ARGV[1] .. ':n', 1)
local free, base, max = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local lock = 0
if n >= free then
    lock = math.min(max, base * 2 ^ (n - free))
    redis.call('HSET', KEYS[1], ARGV[1] .. ':until', now + lock)
end
redis.call('PEXPIRE', KEYS[1], max * 2)
return lock
"""

_SIGN_IN_LOCKED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':until') or '0')
if until_ms > now then return until_ms - now end
return 0
"""


class SignIns:
    """Failed sign-ins per login and client address: a lock holds for that pair only, so nobody can
    lock a rightful user out from elsewhere. Fails open (with a warning) when Redis does not answer."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._failed = redis.register_script(_SIGN_IN_FAILED)
        self._locked = redis.register_script(_SIGN_IN_LOCKED)

    @staticmethod
    def _key(login: str) -> str:
        return f"signin:{login}"

    async def locked_for_ms(self, login: str, address: str) -> int:
        try:
            return int(await self._locked(keys=[self._key(login)], args=[address]))
        except (RedisError, OSError) as exc:
            log.warning("sign-in counters unavailable, not enforcing: %s", exc)
            return 0

    async def failed(self, login: str, address: str, *, free_attempts: int, base_seconds: int, max_seconds: int) -> int:
        """Count a failure; the milliseconds the pair is now locked for (0: not locked)."""
        try:
            return int(
                await self._failed(
                    keys=[self._key(login)],
                    args=[address, free_attempts, base_seconds * 1000, max_seconds * 1000],
                )
            )
        except (RedisError, OSError) as exc:
            log.warning("sign-in counters unavailable, not enforcing: %s", exc)
            return 0

    async def succeeded(self, login: str, address: str) -> None:
        try:
            await self._redis.hdel(self._key(login), f"{address}:n", f"{address}:until")  # type: ignore[misc]
        except (RedisError, OSError) as exc:
            log.warning("could not clear failed sign-ins of %s: %s", login, exc)

    async def forget(self, login: str) -> None:
        """Lift every lock of the login (an administrator's reset)."""
        try:
            await self._redis.delete(self._key(login))
        except (RedisError, OSError) as exc:
            log.warning("could not clear failed sign-ins of %s: %s", login, exc)

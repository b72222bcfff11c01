"""Counters, quotas and replay answers in Redis (the gateway's only state)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from libs.redis import Redis, key

_PREFIX = "brandclub:gw"
PENDING = b"\x00pending"


@dataclass(frozen=True)
class Window:
    name: str
    seconds: int
    limit: int


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


# A sliding window, in one atomic script: each window is split into sub-windows (buckets) kept
# as fields of one hash. A call is admitted when the calls of every bucket that may still lie
# within the window (the partly covered oldest one counted whole, so never too few) stay below
# the limit; only an admitted call is counted, so refused calls consume nothing. Hence at most
# `limit` calls are admitted in any `seconds`-long span (a fixed calendar window let twice
# through across its edge); a slot frees up at most one bucket late.
# KEYS: one hash per window. ARGV: now_ms, then per window: period_ms, bucket_ms, limit.
# Returns 0 when admitted, else the 1-based index of the first exceeded window.
_SLIDING_WINDOW = """
local now = tonumber(ARGV[1])
local buckets = {}
for i = 1, #KEYS do
  local period = tonumber(ARGV[2 + (i - 1) * 3])
  local size = tonumber(ARGV[3 + (i - 1) * 3])
  local limit = tonumber(ARGV[4 + (i - 1) * 3])
  local current = math.floor(now / size)
  local oldest = current - math.floor(period / size)
  local fields = redis.call('HGETALL', KEYS[i])
  local used = 0
  local stale = {}
  for j = 1, #fields, 2 do
    local index = tonumber(fields[j])
    if index < oldest then
      stale[#stale + 1] = fields[j]
    else
      used = used + tonumber(fields[j + 1])
    end
  end
  if #stale > 0 then
    redis.call('HDEL', KEYS[i], unpack(stale))
  end
  if used + 1 > limit then
    return i
  end
  buckets[i] = {current, period + size}
end
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], buckets[i][1], 1)
  redis.call('PEXPIRE', KEYS[i], buckets[i][2])
end
return 0
"""


def sliding_window_keys(subject: str, windows: list[Window]) -> list[str]:
    """One hash per window, all tagged by the subject: the script reads them together, so
    they share a Redis Cluster slot."""
    return [key(_PREFIX, "sw", tag=subject, rest=[w.name]) for w in windows]


def _bucket_ms(seconds: int) -> int:
    """Sub-window size: a sixtieth of the window (1 s of a minute, 1 min of an hour, 24 min of
    a day), so a call costs one hash of about 60 fields per window."""
    return max(1000, seconds * 1000 // 60)


class RateLimiter:
    """Sliding-window limits (see _SLIDING_WINDOW): one script call, one round trip."""

    def __init__(self, redis: Redis, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def hit(self, subject: str, windows: list[Window]) -> Window | None:
        """Count one call against every window unless one of them is full; the first full
        window (the call is then not counted anywhere), or None."""
        keys = sliding_window_keys(subject, windows)
        args: list[int] = [int(self._clock() * 1000)]
        for window in windows:
            args += [window.seconds * 1000, _bucket_ms(window.seconds), window.limit]
        exceeded = int(await self._script(keys=keys, args=args))
        return windows[exceeded - 1] if exceeded else None


class ReplayStore:
    """The first answer to a signed write, kept for the timestamp window and then some, keyed
    by app and sign (the sign covers the timestamp and every parameter)."""

    def __init__(self, redis: Redis, *, keep_seconds: int = 15 * 60) -> None:
        self._redis = redis
        self._keep = keep_seconds

    def _key(self, app_key: str, sign: str) -> str:
        return key(_PREFIX, "replay", tag=app_key, rest=[sign])

    async def claim(self, app_key: str, sign: str) -> bytes | None:
        """None when this call is the first; otherwise the first call's answer (or PENDING
        while it is still running)."""
        key = self._key(app_key, sign)
        if await self._redis.set(key, PENDING, nx=True, ex=self._keep):
            return None
        value = _as_bytes(await self._redis.get(key))
        return value if value is not None else PENDING

    async def wait_answer(self, app_key: str, sign: str, seconds: float) -> bytes:
        key = self._key(app_key, sign)
        deadline = time.monotonic() + seconds
        while True:
            value = _as_bytes(await self._redis.get(key))
            if value is not None and value != PENDING:
                return value
            if time.monotonic() >= deadline:
                return PENDING
            await asyncio.sleep(0.05)

    async def store(self, app_key: str, sign: str, answer: bytes) -> None:
        await self._redis.set(self._key(app_key, sign), answer, ex=self._keep)

    async def release(self, app_key: str, sign: str) -> None:
        """Forget a claim whose call never produced an answer, so a retry can run."""
        await self._redis.delete(self._key(app_key, sign))


AUDIT_STREAM = "brandclub:audit:openplatform"
AUDIT_MAX_LEN = 5_000_000


class AuditLog:
    """Every open-platform call, appended to a Redis stream (trimmed approximately)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def record(self, fields: dict[str, str]) -> None:
        await self._redis.xadd(AUDIT_STREAM, fields,  # type: ignore[arg-type]
                               maxlen=AUDIT_MAX_LEN, approximate=True)

"""Counters, quotas and replay answers in Redis (the gateway's only state)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from libs.redis import Redis

_PREFIX = "brandclub:gw"
PENDING = b"\x00pending"


@dataclass(frozen=True)
class Window:
    name: str
    seconds: int
    limit: int


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


class RateLimiter:
    """Fixed-window counters: one INCR per window in a single round trip."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def hit(self, subject: str, windows: list[Window]) -> Window | None:
        """Count one call against every window; the first exceeded window, or None."""
        now = int(time.time())
        keys = [f"{_PREFIX}:rl:{{{subject}}}:{w.name}:{now // w.seconds}" for w in windows]
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, window in zip(keys, windows, strict=True):
                pipe.incr(key)
                pipe.expire(key, window.seconds + 5)
            results = await pipe.execute()
        for index, window in enumerate(windows):
            if int(results[index * 2]) > window.limit:
                return window
        return None


class ReplayStore:
    """The first answer to a signed write, kept for the timestamp window and then some, keyed
    by app and sign (the sign covers the timestamp and every parameter)."""

    def __init__(self, redis: Redis, *, keep_seconds: int = 15 * 60) -> None:
        self._redis = redis
        self._keep = keep_seconds

    def _key(self, app_key: str, sign: str) -> str:
        return f"{_PREFIX}:replay:{{{app_key}}}:{sign}"

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

"""libs.cache: TTL expiry, LRU bound, single-flight loads, failures not cached."""

from __future__ import annotations

import asyncio
import time

import pytest

from libs.cache import TtlCache


def test_entries_expire_after_their_ttl() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=0.05)
    cache.put("a", 1)
    assert cache.get("a") == 1
    time.sleep(0.08)
    assert cache.get("a") is None


def test_past_max_entries_the_least_recently_used_goes_first() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=60, max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now more recent than b
    cache.put("c", 3)
    assert cache.get("b") is None
    assert cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_forget_and_clear_drop_entries() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=60)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.forget("a")
    assert cache.get("a") is None and cache.get("b") == 2
    cache.clear()
    assert len(cache) == 0


def test_a_cache_without_a_positive_ttl_is_refused() -> None:
    with pytest.raises(ValueError):
        TtlCache(ttl=0)


async def test_concurrent_misses_share_one_load() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=60)
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return 7

    values = await asyncio.gather(*(cache.get_or_load("k", load) for _ in range(20)))
    assert values == [7] * 20
    assert calls == 1
    assert await cache.get_or_load("k", load) == 7 and calls == 1


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=60)

    async def fail() -> int:
        await asyncio.sleep(0.01)
        raise RuntimeError("upstream down")

    results = await asyncio.gather(*(cache.get_or_load("k", fail) for _ in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)

    async def ok() -> int:
        return 5

    assert await cache.get_or_load("k", ok) == 5

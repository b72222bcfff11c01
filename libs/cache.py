"""An in-process cache with a time to live, for values a process may act on slightly stale.

One policy everywhere: entries expire `ttl` seconds after they were stored and, past
`max_entries`, the least recently used entry goes first (cachetools' TTLCache). `get_or_load`
is single-flight: concurrent misses on one key share a single load, so a hot key that expires
under load costs one upstream call, not one per waiting request. Never cache what must be
read live (a member's standing for eligibility, stock); say so where such a value is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TTLCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Values kept `ttl` seconds, at most `max_entries` of them (least recently used evicted)."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        if ttl <= 0 or max_entries <= 0:
            raise ValueError("ttl and max_entries must be positive")
        self._entries: TTLCache[K, V] = TTLCache(maxsize=max_entries, ttl=ttl)
        self._loading: dict[K, asyncio.Future[V]] = {}

    def get(self, key: K) -> V | None:
        return self._entries.get(key)

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value

    def forget(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, or `load()`'s, stored; a failed load is not cached."""
        if key in self._entries:
            return self._entries[key]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved here, so a load nobody shared logs no warning
            raise
        else:
            self._entries[key] = value
            future.set_result(value)
            return value
        finally:
            del self._loading[key]

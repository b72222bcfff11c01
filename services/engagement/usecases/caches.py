"""Engagement's in-process cache of activity definitions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from libs.cache import TtlCache
from services.engagement.domain.activities import Activity

# How long a process may act on an activity definition another process just changed.
ACTIVITY_CACHE_SECONDS = 1.0
ACTIVITY_CACHE_ENTRIES = 10_000


class ActivityCache:
    """Activities read on the hot paths, kept ACTIVITY_CACHE_SECONDS (libs.cache: the least
    recently used go first past ACTIVITY_CACHE_ENTRIES; concurrent misses share one read)."""

    def __init__(self, load: Callable[[str, str], Awaitable[Activity]]) -> None:
        self._load = load
        self._entries: TtlCache[tuple[str, str], Activity] = TtlCache(
            ACTIVITY_CACHE_SECONDS, max_entries=ACTIVITY_CACHE_ENTRIES)

    async def get(self, brand_id: str, activity_id: str) -> Activity:
        return await self._entries.get_or_load((brand_id, activity_id),
                                               lambda: self._load(brand_id, activity_id))

    def forget(self, brand_id: str, activity_id: str) -> None:
        self._entries.forget((brand_id, activity_id))

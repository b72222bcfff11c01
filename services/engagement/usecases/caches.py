"""Engagement's in-process cache of activity definitions."""

from __future__ import annotations

import time

from libs.db import Database
from services.engagement.domain.activities import Activity
from services.engagement.usecases.activities import get_activity

# How long a process may act on an activity definition another process just changed.
ACTIVITY_CACHE_SECONDS = 1.0


class ActivityCache:
    """Activities read on the hot paths, kept ACTIVITY_CACHE_SECONDS; cleared whole past
    10,000 entries."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._entries: dict[tuple[str, str], tuple[float, Activity]] = {}

    async def get(self, brand_id: str, activity_id: str) -> Activity:
        key = (brand_id, activity_id)
        cached = self._entries.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        async with self._db.connection() as conn:
            activity = await get_activity(conn, brand_id, activity_id)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + ACTIVITY_CACHE_SECONDS, activity)
        return activity

    def forget(self, brand_id: str, activity_id: str) -> None:
        self._entries.pop((brand_id, activity_id), None)

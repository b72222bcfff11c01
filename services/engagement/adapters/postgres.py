"""asyncpg repository for the engagement schema."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection
from services.engagement.domain.activities import Activity, ActivityKind, ActivityState


class ActivityRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def page(self, brand_id: str, limit: int,
                   after: tuple[datetime, str] | None) -> list[Activity]:
        """Newest first, keyset-paged on (created_at, activity_id)."""
        rows = await self._conn.fetch(
            "SELECT * FROM activities WHERE brand_id = $1 "
            "AND ($2::timestamptz IS NULL OR (created_at, activity_id) < ($2, $3)) "
            "ORDER BY created_at DESC, activity_id DESC LIMIT $4",
            brand_id, after[0] if after else None, after[1] if after else "", limit,
        )
        return [Activity(r["activity_id"], r["brand_id"], ActivityKind(r["kind"]),
                         ActivityState(r["state"]), r["title"], r["starts_at"], r["ends_at"],
                         r["created_at"]) for r in rows]

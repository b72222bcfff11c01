"""Which shops an account follows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from libs.db import Connection


class FollowRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def add_follow(self, brand_id: str, shop_id: str, account_id: str,
                         now: datetime) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO follows (brand_id, shop_id, account_id, followed_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            brand_id, shop_id, account_id, now,
        )
        return bool(added)

    async def add_follows(self, brand_id: str, shop_id: str,
                          follows: Sequence[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
        rows = await self._conn.fetch(
            "INSERT INTO follows (brand_id, shop_id, account_id, followed_at) "
            "SELECT $1, $2, f.account_id, f.followed_at "
            "FROM unnest($3::text[], $4::timestamptz[]) AS f (account_id, followed_at) "
            "ON CONFLICT DO NOTHING RETURNING account_id, followed_at",
            brand_id, shop_id, [f[0] for f in follows], [f[1] for f in follows])
        return [(r["account_id"], r["followed_at"]) for r in rows]

    async def remove_follow(self, shop_id: str, account_id: str) -> bool:
        removed = await self._conn.fetchval(
            "DELETE FROM follows WHERE shop_id = $1 AND account_id = $2 RETURNING true",
            shop_id, account_id,
        )
        return bool(removed)

    async def count_follows(self, brand_id: str, account_id: str) -> int:
        count = await self._conn.fetchval(
            "SELECT count(*) FROM follows WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id,
        )
        return int(count)

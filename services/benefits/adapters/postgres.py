"""asyncpg repository for the benefits schema."""

from __future__ import annotations

from libs.db import Connection
from services.benefits.domain.points import PointsBalance


class PointsRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def balance(self, brand_id: str, account_id: str) -> PointsBalance:
        row = await self._conn.fetchrow(
            "SELECT available, pending FROM points_accounts "
            "WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id,
        )
        if row is None:
            return PointsBalance(brand_id, account_id)
        return PointsBalance(brand_id, account_id, row["available"], row["pending"])

"""What messaging keeps from membership events: cancelled members and paid orders."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection


class MemberFactsRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def cancelled(self, brand_id: str, accounts: list[str]) -> set[str]:
        rows = await self.conn.fetch(
            "SELECT account_id FROM cancelled_members WHERE brand_id = $1 "
            "AND account_id = ANY($2)", brand_id, accounts)
        return {r["account_id"] for r in rows}

    async def mark_cancelled(self, brand_id: str, account_id: str, at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO cancelled_members (brand_id, account_id, cancelled_at) "
            "VALUES ($1, $2, $3) ON CONFLICT (brand_id, account_id) DO UPDATE "
            "SET cancelled_at = EXCLUDED.cancelled_at", brand_id, account_id, at)

    async def clear_cancelled(self, brand_id: str, account_id: str) -> None:
        await self.conn.execute(
            "DELETE FROM cancelled_members WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id)

    async def add_order(self, brand_id: str, order_id: str, account_id: str, cents: int,
                        at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO member_orders (brand_id, order_id, account_id, paid_cents, paid_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            brand_id, order_id, account_id, cents, at)

    async def ordered_between(self, brand_id: str, account_id: str, start: datetime,
                              end: datetime) -> bool:
        return bool(await self.conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM member_orders WHERE brand_id = $1 "
            "AND account_id = $2 AND paid_at >= $3 AND paid_at < $4)",
            brand_id, account_id, start, end))

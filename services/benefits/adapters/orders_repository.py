"""What each order earned and what each refund took back. Every query filters by brand."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection
from services.benefits.domain.points import OrderPoints


class OrderRepository:
    """What each order earned and what each refund took back."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def known(self, brand_id: str, order_id: str) -> bool:
        return bool(await self._conn.fetchval(
            "SELECT true FROM order_points WHERE brand_id = $1 AND order_id = $2",
            brand_id, order_id))

    async def add(self, brand_id: str, order: OrderPoints, now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO order_points (brand_id, order_id, account_id, paid_cents, points, "
            "entry_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            brand_id, order.order_id, order.account_id, order.paid_cents, order.points,
            order.entry_id, now)

    async def lock(self, brand_id: str, order_id: str) -> OrderPoints | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM order_points WHERE brand_id = $1 AND order_id = $2 FOR UPDATE",
            brand_id, order_id)
        if row is None:
            return None
        return OrderPoints(row["order_id"], row["account_id"], row["paid_cents"],
                           row["points"], row["refunded_cents"], row["points_taken"],
                           row["entry_id"])

    async def refund_known(self, brand_id: str, refund_id: str) -> bool:
        return bool(await self._conn.fetchval(
            "SELECT true FROM order_refunds WHERE brand_id = $1 AND refund_id = $2",
            brand_id, refund_id))

    async def add_refund(self, brand_id: str, refund_id: str, order_id: str,
                         refunded_cents: int, refunded_total: int, taken: int,
                         now: datetime) -> None:
        await self._conn.execute(
            "UPDATE order_points SET refunded_cents = $3, points_taken = points_taken + $4 "
            "WHERE brand_id = $1 AND order_id = $2",
            brand_id, order_id, refunded_total, taken)
        await self._conn.execute(
            "INSERT INTO order_refunds (brand_id, refund_id, order_id, refunded_cents, "
            "points_taken, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            brand_id, refund_id, order_id, refunded_cents, taken, now)

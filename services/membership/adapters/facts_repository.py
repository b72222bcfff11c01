"""Marketplace facts: claimed event ids, orders and refunds, the stats and growth they make,
behaviours, and account states."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from libs.db import Connection, Record
from services.membership.adapters.rows import (
    stats_from_row,
)
from services.membership.domain.model import (
    Stats,
)


class FactRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def claim_fact(self, brand_id: str, event_id: str, kind: str) -> bool:
        claimed = await self._conn.fetchval(
            "INSERT INTO ingested_facts (brand_id, event_id, kind) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING true", brand_id, event_id, kind)
        return bool(claimed)

    async def add_order(self, brand_id: str, order_id: str, shop_id: str, account_id: str,
                        paid_cents: int, paid_at: datetime,
                        return_window_end: datetime | None) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO orders (brand_id, order_id, shop_id, account_id, paid_cents, paid_at, "
            "return_window_end_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT DO NOTHING RETURNING true",
            brand_id, order_id, shop_id, account_id, paid_cents, paid_at, return_window_end)
        return bool(added)

    async def get_order(self, brand_id: str, order_id: str) -> Record | None:
        return await self._conn.fetchrow(
            "SELECT * FROM orders WHERE brand_id = $1 AND order_id = $2 FOR UPDATE",
            brand_id, order_id)

    async def add_refund(self, brand_id: str, refund_id: str, order_id: str, cents: int,
                         refunded_at: datetime) -> bool:
        added = await self._conn.fetchval(
            "INSERT INTO order_refunds (brand_id, refund_id, order_id, refunded_cents, "
            "refunded_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
            brand_id, refund_id, order_id, cents, refunded_at)
        return bool(added)

    async def refund_order(self, brand_id: str, order_id: str, cents: int) -> int:
        return int(await self._conn.fetchval(
            "UPDATE orders SET refunded_cents = refunded_cents + $3 "
            "WHERE brand_id = $1 AND order_id = $2 RETURNING refunded_cents",
            brand_id, order_id, cents))

    async def stats_after_paid(self, brand_id: str, account_id: str, cents: int,
                               paid_at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO member_stats (brand_id, account_id, order_count, paid_cents, "
            "first_order_at, last_order_at) VALUES ($1, $2, 1, $3, $4, $4) "
            "ON CONFLICT (brand_id, account_id) DO UPDATE SET "
            "order_count = member_stats.order_count + 1, "
            "paid_cents = member_stats.paid_cents + $3, "
            "first_order_at = least(member_stats.first_order_at, $4), "
            "last_order_at = greatest(member_stats.last_order_at, $4)",
            brand_id, account_id, cents, paid_at)

    async def stats_after_refund(self, brand_id: str, account_id: str, cents: int,
                                 order_fully_refunded: bool) -> None:
        await self._conn.execute(
            "UPDATE member_stats SET paid_cents = paid_cents - $3, "
            "order_count = order_count - (CASE WHEN $4 THEN 1 ELSE 0 END) "
            "WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id, cents, order_fully_refunded)

    async def stats(self, brand_id: str, account_id: str, growth: int) -> Stats:
        row = await self._conn.fetchrow(
            "SELECT * FROM member_stats WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id)
        return stats_from_row(row, growth)

    async def growth(self, brand_id: str, account_id: str, since: datetime) -> int:
        return int(await self._conn.fetchval(
            "SELECT coalesce(sum(paid_cents - refunded_cents), 0) FROM orders "
            "WHERE brand_id = $1 AND account_id = $2 AND paid_at >= $3",
            brand_id, account_id, since))

    async def add_behaviours(self, brand_id: str, kind: str,
                             occurrences: Sequence[tuple[str, datetime]]) -> None:
        if occurrences:
            await self._conn.execute(
                "INSERT INTO member_behaviours (brand_id, account_id, kind, occurred_at) "
                "SELECT $1, b.account_id, $2, b.occurred_at "
                "FROM unnest($3::text[], $4::timestamptz[]) AS b (account_id, occurred_at)",
                brand_id, kind, [o[0] for o in occurrences], [o[1] for o in occurrences])

    async def account_state(self, account_id: str) -> tuple[bool, datetime | None]:
        row = await self._conn.fetchrow(
            "SELECT abnormal, last_active_at FROM account_states WHERE account_id = $1",
            account_id)
        return (bool(row["abnormal"]), row["last_active_at"]) if row else (False, None)

    async def set_account_abnormal(self, account_id: str, abnormal: bool,
                                   now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO account_states (account_id, abnormal, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (account_id) DO UPDATE SET abnormal = EXCLUDED.abnormal, "
            "updated_at = EXCLUDED.updated_at", account_id, abnormal, now)

    async def set_account_active(self, account_id: str, active_at: datetime,
                                 now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO account_states (account_id, last_active_at, updated_at) "
            "VALUES ($1, $2, $3) ON CONFLICT (account_id) DO UPDATE SET "
            "last_active_at = greatest(account_states.last_active_at, EXCLUDED.last_active_at), "
            "updated_at = EXCLUDED.updated_at", account_id, active_at, now)

"""Mall items, stock, per-member holdings and redemptions. Every query filters by brand."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection
from services.benefits.adapters.rows import item_from_row, redemption_from_row
from services.benefits.domain.benefits import MallItem, Redemption


class MallRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def save_item(self, item: MallItem, now: datetime, *, create: bool) -> MallItem:
        args = (item.brand_id, item.item_id, item.kind.value, item.title, item.description,
                item.price_points, item.stock_total, item.per_member_limit,
                item.coupon_template_id, item.eligible_levels,
                "on_sale" if item.on_sale else "off_sale", now)
        if create:
            row = await self._conn.fetchrow(
                "INSERT INTO mall_items (brand_id, item_id, kind, title, description, "
                "price_points, stock_total, per_member_limit, coupon_template_id, "
                "eligible_levels, state, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, "
                "$6, $7, $8, $9, $10, $11, $12, $12) RETURNING *", *args)
        else:
            row = await self._conn.fetchrow(
                "UPDATE mall_items SET kind = $3, title = $4, description = $5, "
                "price_points = $6, stock_total = $7, per_member_limit = $8, "
                "coupon_template_id = $9, eligible_levels = $10, state = $11, updated_at = $12 "
                "WHERE brand_id = $1 AND item_id = $2 RETURNING *", *args)
        return item_from_row(row)

    async def item(self, brand_id: str, item_id: str, *, lock: bool = False) -> MallItem | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM mall_items WHERE brand_id = $1 AND item_id = $2"
            + (" FOR UPDATE" if lock else ""), brand_id, item_id)
        return item_from_row(row) if row else None

    async def items(self, brand_id: str, only_on_sale: bool, after: str | None,
                    limit: int) -> list[MallItem]:
        rows = await self._conn.fetch(
            "SELECT * FROM mall_items WHERE brand_id = $1 AND ($2 = false OR state = 'on_sale') "
            "AND ($3::text IS NULL OR item_id > $3) ORDER BY item_id LIMIT $4",
            brand_id, only_on_sale, after, limit)
        return [item_from_row(r) for r in rows]

    async def take_stock(self, brand_id: str, item_id: str, quantity: int) -> bool:
        return bool(await self._conn.fetchval(
            "UPDATE mall_items SET stock_redeemed = stock_redeemed + $3 WHERE brand_id = $1 "
            "AND item_id = $2 AND stock_redeemed + $3 <= stock_total RETURNING true",
            brand_id, item_id, quantity))

    async def return_stock(self, brand_id: str, item_id: str, quantity: int) -> None:
        await self._conn.execute(
            "UPDATE mall_items SET stock_redeemed = stock_redeemed - $3 WHERE brand_id = $1 "
            "AND item_id = $2", brand_id, item_id, quantity)

    async def take_holding(self, brand_id: str, item_id: str, account_id: str, quantity: int,
                           limit: int) -> bool:
        return bool(await self._conn.fetchval(
            "INSERT INTO mall_holdings (brand_id, item_id, account_id, count) "
            "SELECT $1, $2, $3, $4 WHERE $5 = 0 OR $4 <= $5 "
            "ON CONFLICT (brand_id, item_id, account_id) "
            "DO UPDATE SET count = mall_holdings.count + $4 "
            "WHERE $5 = 0 OR mall_holdings.count + $4 <= $5 RETURNING true",
            brand_id, item_id, account_id, quantity, limit))

    async def return_holding(self, brand_id: str, item_id: str, account_id: str,
                             quantity: int) -> None:
        await self._conn.execute(
            "UPDATE mall_holdings SET count = count - $4 WHERE brand_id = $1 AND item_id = $2 "
            "AND account_id = $3", brand_id, item_id, account_id, quantity)

    async def lock_request(self, brand_id: str, request_id: str) -> None:
        """Serialise redemptions recorded under one request id until commit."""
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                 f"redemption:{brand_id}:{request_id}")

    async def add_redemption(self, r: Redemption, fingerprint: bytes) -> bool:
        return bool(await self._conn.fetchval(
            "INSERT INTO redemptions (brand_id, redemption_id, request_id, fingerprint, "
            "account_id, item_id, quantity, points, state, fulfilment_status, "
            "shipping_address, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, "
            "$8, $9, $10, $11, $12, $12) ON CONFLICT (brand_id, request_id) DO NOTHING "
            "RETURNING true",
            r.brand_id, r.redemption_id, r.request_id, fingerprint, r.account_id, r.item_id,
            r.quantity, r.points, r.state.value, r.fulfilment.value, r.shipping_address,
            r.created_at))

    async def by_request(self, brand_id: str, request_id: str
                         ) -> tuple[Redemption, bytes] | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM redemptions WHERE brand_id = $1 AND request_id = $2",
            brand_id, request_id)
        return (redemption_from_row(row), bytes(row["fingerprint"])) if row else None

    async def redemption(self, brand_id: str, redemption_id: str, *, lock: bool = False
                         ) -> Redemption | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM redemptions WHERE brand_id = $1 AND redemption_id = $2"
            + (" FOR UPDATE" if lock else ""), brand_id, redemption_id)
        return redemption_from_row(row) if row else None

    async def update_redemption(self, r: Redemption, now: datetime) -> Redemption:
        row = await self._conn.fetchrow(
            "UPDATE redemptions SET state = $3, spend_entry_id = $4, refund_entry_id = $5, "
            "coupon_ids = $6, virtual_code = $7, fulfilment_status = $8, tracking_number = $9, "
            "failure_reason = $10, updated_at = $11 WHERE brand_id = $1 AND redemption_id = $2 "
            "RETURNING *",
            r.brand_id, r.redemption_id, r.state.value, r.spend_entry_id, r.refund_entry_id,
            r.coupon_ids, r.virtual_code, r.fulfilment.value, r.tracking_number,
            r.failure_reason, now)
        return redemption_from_row(row)

    async def redemptions(self, brand_id: str, account_id: str | None,
                          before_seq: int | None, limit: int) -> list[tuple[int, Redemption]]:
        rows = await self._conn.fetch(
            "SELECT * FROM redemptions WHERE brand_id = $1 AND ($2::text IS NULL OR "
            "account_id = $2) AND ($3::bigint IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4",
            brand_id, account_id, before_seq, limit)
        return [(r["seq"], redemption_from_row(r)) for r in rows]

    async def holding(self, brand_id: str, item_id: str, account_id: str) -> int:
        """How many of the item the member redeemed (their per-member count)."""
        return int(await self._conn.fetchval(
            "SELECT count FROM mall_holdings WHERE brand_id = $1 AND item_id = $2 "
            "AND account_id = $3", brand_id, item_id, account_id) or 0)

    async def count_recovery_attempt(self, brand_id: str, redemption_id: str,
                                     error: str) -> int:
        """One more failed recovery pass (the error kept as the failure so far); returns
        how many there were."""
        return int(await self._conn.fetchval(
            "UPDATE redemptions SET recovery_attempts = recovery_attempts + 1, "
            "failure_reason = $3, updated_at = now() WHERE brand_id = $1 "
            "AND redemption_id = $2 RETURNING recovery_attempts",
            brand_id, redemption_id, error) or 0)

    async def unfinished(self, older_than: datetime, limit: int) -> list[tuple[str, str]]:
        rows = await self._conn.fetch(
            "SELECT brand_id, redemption_id FROM redemptions WHERE state IN "
            "('started', 'points_spent') AND updated_at <= $1 ORDER BY updated_at LIMIT $2",
            older_than, limit)
        return [(r["brand_id"], r["redemption_id"]) for r in rows]

"""Coupon templates, issued coupons, holdings and gift packs. Every query filters by brand."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection
from services.benefits.adapters.rows import gift_pack_from_row, template_from_row
from services.benefits.domain.benefits import CouponTemplate, GiftPack, IssuedCoupon


class CouponRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def save_template(self, t: CouponTemplate, now: datetime, *, create: bool
                            ) -> CouponTemplate:
        args = (t.brand_id, t.template_id, t.title, t.kind.value, t.amount_off_cents,
                t.percent_off, t.threshold_cents, t.claim_start, t.claim_end, t.valid_start,
                t.valid_end, t.valid_days, t.total_stock, t.per_member_limit,
                t.eligible_levels, [p.value for p in t.placements],
                "closed" if t.closed else "active", now)
        if create:
            row = await self._conn.fetchrow(
                "INSERT INTO coupon_templates (brand_id, template_id, title, kind, "
                "amount_off_cents, percent_off, threshold_cents, claim_start, claim_end, "
                "valid_start, valid_end, valid_days, total_stock, per_member_limit, "
                "eligible_levels, placements, state, created_at, updated_at) VALUES "
                "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
                "$18, $18) RETURNING *", *args)
        else:
            row = await self._conn.fetchrow(
                "UPDATE coupon_templates SET title = $3, kind = $4, amount_off_cents = $5, "
                "percent_off = $6, threshold_cents = $7, claim_start = $8, claim_end = $9, "
                "valid_start = $10, valid_end = $11, valid_days = $12, total_stock = $13, "
                "per_member_limit = $14, eligible_levels = $15, placements = $16, state = $17, "
                "updated_at = $18 WHERE brand_id = $1 AND template_id = $2 RETURNING *", *args)
        return template_from_row(row)

    async def template(self, brand_id: str, template_id: str, *, lock: bool = False
                       ) -> CouponTemplate | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM coupon_templates WHERE brand_id = $1 AND template_id = $2"
            + (" FOR UPDATE" if lock else ""), brand_id, template_id)
        return template_from_row(row) if row else None

    async def templates(self, brand_id: str, after: str | None, limit: int
                        ) -> list[CouponTemplate]:
        rows = await self._conn.fetch(
            "SELECT * FROM coupon_templates WHERE brand_id = $1 AND ($2::text IS NULL OR "
            "template_id > $2) ORDER BY template_id LIMIT $3", brand_id, after, limit)
        return [template_from_row(r) for r in rows]

    async def claimable(self, brand_id: str, now: datetime, placement: str | None,
                        after: tuple[datetime, str] | None, limit: int
                        ) -> list[CouponTemplate]:
        """Templates open for claims now (in stock, in their claim window, at `placement`),
        oldest first, keyset-paged on (created_at, template_id) after `after`."""
        rows = await self._conn.fetch(
            "SELECT * FROM coupon_templates WHERE brand_id = $1 AND state = 'active' "
            "AND issued_count < total_stock AND claim_start <= $2 "
            "AND (claim_end IS NULL OR claim_end > $2) "
            "AND ($3::text IS NULL OR $3 = ANY(placements)) "
            "AND ($4::timestamptz IS NULL OR (created_at, template_id) > ($4, $5)) "
            "ORDER BY created_at, template_id LIMIT $6",
            brand_id, now, placement, after[0] if after else None, after[1] if after else "",
            limit)
        return [template_from_row(r) for r in rows]

    async def holdings(self, brand_id: str, account_id: str) -> dict[str, int]:
        rows = await self._conn.fetch(
            "SELECT template_id, count FROM coupon_holdings WHERE brand_id = $1 "
            "AND account_id = $2", brand_id, account_id)
        return {r["template_id"]: r["count"] for r in rows}

    async def take_holding(self, brand_id: str, template_id: str, account_id: str,
                           limit: int) -> bool:
        """One more coupon for the member unless that passes the limit (row-locked)."""
        taken = await self._conn.fetchval(
            "INSERT INTO coupon_holdings (brand_id, template_id, account_id, count) "
            "VALUES ($1, $2, $3, 1) ON CONFLICT (brand_id, template_id, account_id) "
            "DO UPDATE SET count = coupon_holdings.count + 1 "
            "WHERE coupon_holdings.count < $4 RETURNING true",
            brand_id, template_id, account_id, limit)
        return bool(taken)

    async def take_stock(self, brand_id: str, template_id: str) -> bool:
        taken = await self._conn.fetchval(
            "UPDATE coupon_templates SET issued_count = issued_count + 1 "
            "WHERE brand_id = $1 AND template_id = $2 AND issued_count < total_stock "
            "RETURNING true", brand_id, template_id)
        return bool(taken)

    async def add_coupon(self, coupon: IssuedCoupon, request_id: str) -> None:
        await self._conn.execute(
            "INSERT INTO coupons (brand_id, coupon_id, template_id, account_id, valid_start, "
            "valid_end, source, reason_code, issued_at, request_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            coupon.template.brand_id, coupon.coupon_id, coupon.template.template_id,
            coupon.account_id, coupon.valid_start, coupon.valid_end, coupon.source,
            coupon.reason_code, coupon.issued_at, request_id)

    async def member_coupons(self, brand_id: str, account_id: str, only_valid_at: datetime |
                             None, before_seq: int | None, limit: int
                             ) -> list[tuple[int, IssuedCoupon]]:
        rows = await self._conn.fetch(
            "SELECT c.seq, c.coupon_id, c.account_id, c.valid_start AS c_valid_start, "
            "c.valid_end AS c_valid_end, c.source, c.reason_code, c.issued_at, t.* "
            "FROM coupons c JOIN coupon_templates t "
            "ON t.brand_id = c.brand_id AND t.template_id = c.template_id "
            "WHERE c.brand_id = $1 AND c.account_id = $2 "
            "AND ($3::timestamptz IS NULL OR c.valid_end > $3) "
            "AND ($4::bigint IS NULL OR c.seq < $4) ORDER BY c.seq DESC LIMIT $5",
            brand_id, account_id, only_valid_at, before_seq, limit)
        return [(r["seq"], IssuedCoupon(r["coupon_id"], template_from_row(r), r["account_id"],
                                        r["c_valid_start"], r["c_valid_end"], r["source"],
                                        r["reason_code"], r["issued_at"])) for r in rows]

    async def save_gift_pack(self, pack: GiftPack, now: datetime, *, create: bool) -> GiftPack:
        args = (pack.brand_id, pack.gift_pack_id, pack.title, pack.points,
                [c[0] for c in pack.coupons], [c[1] for c in pack.coupons], pack.enabled,
                pack.start_time, pack.end_time, now)
        if create:
            row = await self._conn.fetchrow(
                "INSERT INTO gift_packs (brand_id, gift_pack_id, title, points, "
                "coupon_templates, coupon_quantities, enabled, start_time, end_time, "
                "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) "
                "RETURNING *", *args)
        else:
            row = await self._conn.fetchrow(
                "UPDATE gift_packs SET title = $3, points = $4, coupon_templates = $5, "
                "coupon_quantities = $6, enabled = $7, start_time = $8, end_time = $9, "
                "updated_at = $10 WHERE brand_id = $1 AND gift_pack_id = $2 RETURNING *", *args)
        return gift_pack_from_row(row)

    async def gift_pack(self, brand_id: str, gift_pack_id: str) -> GiftPack | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM gift_packs WHERE brand_id = $1 AND gift_pack_id = $2",
            brand_id, gift_pack_id)
        return gift_pack_from_row(row) if row else None

    async def gift_packs(self, brand_id: str, after: str | None, limit: int) -> list[GiftPack]:
        rows = await self._conn.fetch(
            "SELECT * FROM gift_packs WHERE brand_id = $1 AND ($2::text IS NULL OR "
            "gift_pack_id > $2) ORDER BY gift_pack_id LIMIT $3", brand_id, after, limit)
        return [gift_pack_from_row(r) for r in rows]

    async def active_gift_pack(self, brand_id: str, now: datetime) -> GiftPack | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM gift_packs WHERE brand_id = $1 AND enabled AND start_time <= $2 "
            "AND (end_time IS NULL OR end_time > $2) ORDER BY start_time DESC, created_at DESC "
            "LIMIT 1", brand_id, now)
        return gift_pack_from_row(row) if row else None

    async def claim_gift_pack_slot(self, brand_id: str, program_id: str, account_id: str,
                                   gift_pack_id: str, now: datetime) -> bool:
        return bool(await self._conn.fetchval(
            "INSERT INTO gift_pack_grants (brand_id, program_id, account_id, gift_pack_id, "
            "granted_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
            brand_id, program_id, account_id, gift_pack_id, now))

    async def finish_gift_pack_grant(self, brand_id: str, program_id: str, account_id: str,
                                     entry_id: str | None, coupon_ids: list[str],
                                     skipped: list[str]) -> None:
        await self._conn.execute(
            "UPDATE gift_pack_grants SET points_entry_id = $4, coupon_ids = $5, skipped = $6 "
            "WHERE brand_id = $1 AND program_id = $2 AND account_id = $3",
            brand_id, program_id, account_id, entry_id, coupon_ids, skipped)

    async def gift_pack_granted(self, brand_id: str, account_id: str) -> bool:
        return bool(await self._conn.fetchval(
            "SELECT true FROM gift_pack_grants WHERE brand_id = $1 AND account_id = $2 LIMIT 1",
            brand_id, account_id))

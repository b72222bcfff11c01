"""asyncpg repositories for the benefits schema. Every query filters by brand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from libs.db import Connection, Record
from services.benefits.domain.benefits import (
    CouponKind,
    CouponTemplate,
    EarningRule,
    Fulfilment,
    GiftPack,
    MallItem,
    MallItemKind,
    Placement,
    Redemption,
    RedemptionState,
    Trigger,
)
from services.benefits.domain.points import (
    EntryKind,
    ExpiryMode,
    Lot,
    PointsBalance,
    PointsPolicy,
    Source,
)


@dataclass(frozen=True)
class Entry:
    brand_id: str
    entry_id: str
    account_id: str
    kind: EntryKind
    amount: int
    available_delta: int
    pending_delta: int
    shortfall: int
    reason_code: str
    source: Source
    request_id: str
    reverses_entry_id: str | None
    available_at: datetime | None
    created_at: datetime
    seq: int = 0


def _entry(row: Record) -> Entry:
    return Entry(row["brand_id"], row["entry_id"], row["account_id"], EntryKind(row["kind"]),
                 row["amount"], row["available_delta"], row["pending_delta"], row["shortfall"],
                 row["reason_code"], Source(row["source"]), row["request_id"],
                 row["reverses_entry_id"], row["available_at"], row["created_at"], row["seq"])


@dataclass(frozen=True)
class PendingGrant:
    entry_id: str
    account_id: str
    amount: int
    release_at: datetime
    state: str
    released_amount: int


class PointsRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def balance(self, brand_id: str, account_id: str) -> PointsBalance:
        row = await self._conn.fetchrow(
            "SELECT available, pending, shortfall, version FROM points_accounts "
            "WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id,
        )
        if row is None:
            return PointsBalance(brand_id, account_id)
        return PointsBalance(brand_id, account_id, row["available"], row["pending"],
                             row["shortfall"], row["version"])

    async def lock_account(self, brand_id: str, account_id: str) -> PointsBalance:
        """Create the account if needed and hold its row lock until commit."""
        # One round trip: the no-op update on conflict takes the row lock and returns the row.
        row = await self._conn.fetchrow(
            "INSERT INTO points_accounts (brand_id, account_id) VALUES ($1, $2) "
            "ON CONFLICT (brand_id, account_id) DO UPDATE SET brand_id = EXCLUDED.brand_id "
            "RETURNING available, pending, shortfall, version", brand_id, account_id)
        assert row is not None
        return PointsBalance(brand_id, account_id, row["available"], row["pending"],
                             row["shortfall"], row["version"])

    async def apply(self, entry: Entry) -> PointsBalance:
        """Insert an entry and move the account's balances by exactly its deltas."""
        # One round trip: the entry and the balance move together.
        row = await self._conn.fetchrow(
            "WITH entry AS (INSERT INTO points_entries (brand_id, entry_id, account_id, kind, "
            "amount, available_delta, pending_delta, shortfall, reason_code, source, "
            "request_id, reverses_entry_id, available_at, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)) "
            "UPDATE points_accounts SET available = available + $6, pending = pending + $7, "
            "shortfall = shortfall + $8, version = version + 1, updated_at = $14 "
            "WHERE brand_id = $1 AND account_id = $3 "
            "RETURNING available, pending, shortfall, version",
            entry.brand_id, entry.entry_id, entry.account_id, entry.kind.value, entry.amount,
            entry.available_delta, entry.pending_delta, entry.shortfall, entry.reason_code,
            entry.source.value, entry.request_id, entry.reverses_entry_id, entry.available_at,
            entry.created_at)
        assert row is not None
        return PointsBalance(entry.brand_id, entry.account_id, row["available"],
                             row["pending"], row["shortfall"], row["version"])

    async def entry(self, brand_id: str, entry_id: str) -> Entry | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM points_entries WHERE brand_id = $1 AND entry_id = $2",
            brand_id, entry_id)
        return _entry(row) if row else None

    async def is_reversed(self, brand_id: str, entry_id: str) -> bool:
        return bool(await self._conn.fetchval(
            "SELECT true FROM points_entries WHERE brand_id = $1 AND reverses_entry_id = $2",
            brand_id, entry_id))

    async def history(self, brand_id: str, account_id: str, before_seq: int | None,
                      limit: int) -> list[Entry]:
        rows = await self._conn.fetch(
            "SELECT * FROM points_entries WHERE brand_id = $1 AND account_id = $2 "
            "AND ($3::bigint IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4",
            brand_id, account_id, before_seq, limit)
        return [_entry(row) for row in rows]

    async def add_lot(self, brand_id: str, lot_id: str, account_id: str, entry_id: str,
                      amount: int, remaining: int, expires_at: datetime | None,
                      now: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO points_lots (brand_id, lot_id, account_id, entry_id, amount, "
            "remaining, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            brand_id, lot_id, account_id, entry_id, amount, remaining, expires_at, now)

    async def open_lots(self, brand_id: str, account_id: str) -> list[Lot]:
        rows = await self._conn.fetch(
            "SELECT lot_id, remaining, expires_at, created_at FROM points_lots "
            "WHERE brand_id = $1 AND account_id = $2 AND remaining > 0 FOR UPDATE",
            brand_id, account_id)
        return [Lot(r["lot_id"], r["remaining"], r["expires_at"], r["created_at"]) for r in rows]

    async def lot_of_entry(self, brand_id: str, entry_id: str) -> str | None:
        return await self._conn.fetchval(
            "SELECT lot_id FROM points_lots WHERE brand_id = $1 AND entry_id = $2",
            brand_id, entry_id)

    async def move_lots(self, brand_id: str, moves: list[tuple[str, int]]) -> None:
        """Change lots' remaining by the given signed amounts."""
        if moves:
            await self._conn.executemany(
                "UPDATE points_lots SET remaining = remaining + $3 "
                "WHERE brand_id = $1 AND lot_id = $2",
                [(brand_id, lot_id, amount) for lot_id, amount in moves])

    async def record_moves(self, brand_id: str, entry_id: str,
                           moves: list[tuple[str, int]]) -> None:
        if moves:
            await self._conn.executemany(
                "INSERT INTO points_lot_moves (brand_id, entry_id, lot_id, amount) "
                "VALUES ($1, $2, $3, $4)",
                [(brand_id, entry_id, lot_id, amount) for lot_id, amount in moves])

    async def moves_of(self, brand_id: str, entry_id: str) -> list[tuple[str, int]]:
        rows = await self._conn.fetch(
            "SELECT lot_id, amount FROM points_lot_moves WHERE brand_id = $1 AND entry_id = $2",
            brand_id, entry_id)
        return [(r["lot_id"], r["amount"]) for r in rows]

    async def due_lots(self, brand_id: str, account_id: str, now: datetime) -> list[Lot]:
        rows = await self._conn.fetch(
            "SELECT lot_id, remaining, expires_at, created_at FROM points_lots "
            "WHERE brand_id = $1 AND account_id = $2 AND remaining > 0 "
            "AND expires_at IS NOT NULL AND expires_at <= $3 ORDER BY expires_at FOR UPDATE",
            brand_id, account_id, now)
        return [Lot(r["lot_id"], r["remaining"], r["expires_at"], r["created_at"]) for r in rows]

    async def accounts_with_due_lots(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        rows = await self._conn.fetch(
            "SELECT DISTINCT brand_id, account_id FROM points_lots "
            "WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2",
            now, limit)
        return [(r["brand_id"], r["account_id"]) for r in rows]

    async def expiring(self, brand_id: str, account_id: str
                       ) -> list[tuple[datetime | None, int]]:
        rows = await self._conn.fetch(
            "SELECT expires_at, sum(remaining)::bigint AS points FROM points_lots "
            "WHERE brand_id = $1 AND account_id = $2 AND remaining > 0 "
            "GROUP BY expires_at ORDER BY expires_at NULLS LAST",
            brand_id, account_id)
        return [(r["expires_at"], r["points"]) for r in rows]

    async def expiring_soon(self, brand_id: str, after: datetime, until: datetime,
                            after_account: str, limit: int
                            ) -> list[tuple[str, int, datetime]]:
        """Accounts of the brand with available points expiring in (after, until], by account
        id after `after_account`: (account, points, earliest expiry). Walks the covering index
        points_lots_expiring in account order, so each page reads only the lots it skips."""
        rows = await self._conn.fetch(
            "SELECT account_id, sum(remaining)::bigint AS points, min(expires_at) AS earliest "
            "FROM points_lots WHERE brand_id = $1 AND remaining > 0 "
            "AND expires_at IS NOT NULL AND expires_at > $2 AND expires_at <= $3 "
            "AND account_id > $4 GROUP BY account_id ORDER BY account_id LIMIT $5",
            brand_id, after, until, after_account, limit)
        return [(r["account_id"], r["points"], r["earliest"]) for r in rows]

    async def add_pending(self, brand_id: str, entry_id: str, account_id: str, amount: int,
                          release_at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO points_pending (brand_id, entry_id, account_id, amount, release_at, "
            "state) VALUES ($1, $2, $3, $4, $5, 'pending')",
            brand_id, entry_id, account_id, amount, release_at)

    async def pending_account(self, brand_id: str, entry_id: str) -> str | None:
        return await self._conn.fetchval(
            "SELECT account_id FROM points_pending WHERE brand_id = $1 AND entry_id = $2",
            brand_id, entry_id)

    async def pending(self, brand_id: str, entry_id: str) -> PendingGrant | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM points_pending WHERE brand_id = $1 AND entry_id = $2 FOR UPDATE",
            brand_id, entry_id)
        if row is None:
            return None
        return PendingGrant(row["entry_id"], row["account_id"], row["amount"],
                            row["release_at"], row["state"], row["released_amount"])

    async def update_pending(self, brand_id: str, entry_id: str, *, amount: int, state: str,
                             released_amount: int = 0,
                             released_entry_id: str | None = None) -> None:
        await self._conn.execute(
            "UPDATE points_pending SET amount = $3, state = $4, "
            "released_amount = released_amount + $5, "
            "released_entry_id = coalesce($6, released_entry_id) "
            "WHERE brand_id = $1 AND entry_id = $2",
            brand_id, entry_id, amount, state, released_amount, released_entry_id)

    async def due_pending(self, now: datetime, limit: int) -> list[tuple[str, str, str]]:
        rows = await self._conn.fetch(
            "SELECT brand_id, account_id, entry_id FROM points_pending "
            "WHERE state = 'pending' AND release_at <= $1 ORDER BY release_at LIMIT $2",
            now, limit)
        return [(r["brand_id"], r["account_id"], r["entry_id"]) for r in rows]

    async def check(self, brand_id: str, account_id: str | None) -> list[Record]:
        """Per account: stored balances beside the sums of entries, lots and pending grants."""
        return await self._conn.fetch(
            """
            SELECT a.account_id, a.available, a.pending, a.shortfall,
                   coalesce(e.available, 0) AS e_available,
                   coalesce(e.pending, 0) AS e_pending,
                   coalesce(e.shortfall, 0) AS e_shortfall,
                   coalesce(l.remaining, 0) AS lots,
                   coalesce(p.pending, 0) AS p_pending
            FROM points_accounts a
            LEFT JOIN (SELECT account_id, sum(available_delta)::bigint AS available,
                              sum(pending_delta)::bigint AS pending,
                              sum(shortfall)::bigint AS shortfall
                       FROM points_entries WHERE brand_id = $1 GROUP BY account_id) e
                   ON e.account_id = a.account_id
            LEFT JOIN (SELECT account_id, sum(remaining)::bigint AS remaining
                       FROM points_lots WHERE brand_id = $1 GROUP BY account_id) l
                   ON l.account_id = a.account_id
            LEFT JOIN (SELECT account_id, sum(amount)::bigint AS pending
                       FROM points_pending WHERE brand_id = $1 AND state = 'pending'
                       GROUP BY account_id) p
                   ON p.account_id = a.account_id
            WHERE a.brand_id = $1 AND ($2::text IS NULL OR a.account_id = $2)
            """,
            brand_id, account_id)


@dataclass(frozen=True)
class OrderPoints:
    order_id: str
    account_id: str
    paid_cents: int
    points: int
    refunded_cents: int
    points_taken: int
    entry_id: str | None


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


def _policy(row: Record) -> PointsPolicy:
    return PointsPolicy(row["brand_id"], ExpiryMode(row["expiry_mode"]), row["expiry_days"],
                        row["negative_balance_allowed"], row["time_zone"], row["updated_at"])


def _rule(row: Record) -> EarningRule:
    return EarningRule(row["brand_id"], row["rule_id"], Trigger(row["trigger"]), row["title"],
                       row["points"], row["points_per_currency_unit"], row["activity_id"],
                       row["daily_cap_points"], row["lifetime_cap_points"],
                       row["budget_points"], row["enabled"], row["granted_points"],
                       row["created_at"], row["updated_at"])


class ConfigRepository:
    """Points policy, earning rules, tier multipliers and the member-level projection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def policy(self, brand_id: str) -> PointsPolicy | None:
        row = await self._conn.fetchrow("SELECT * FROM points_policies WHERE brand_id = $1",
                                        brand_id)
        return _policy(row) if row else None

    async def save_policy(self, policy: PointsPolicy, now: datetime) -> PointsPolicy:
        row = await self._conn.fetchrow(
            "INSERT INTO points_policies (brand_id, expiry_mode, expiry_days, "
            "negative_balance_allowed, time_zone, updated_at) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (brand_id) DO UPDATE SET expiry_mode = $2, expiry_days = $3, "
            "negative_balance_allowed = $4, time_zone = CASE "
            "WHEN points_policies.time_zone_from_brand THEN points_policies.time_zone "
            "ELSE $5 END, updated_at = $6 RETURNING *",
            policy.brand_id, policy.expiry_mode.value, policy.expiry_days,
            policy.negative_balance_allowed, policy.time_zone, now)
        return _policy(row)

    async def brand_time_zone(self, brand_id: str) -> str | None:
        """The brand's own time zone as membership published it, once it has arrived."""
        zone = await self._conn.fetchval(
            "SELECT time_zone FROM points_policies WHERE brand_id = $1 "
            "AND time_zone_from_brand", brand_id)
        return str(zone) if zone is not None else None

    async def set_brand_time_zone(self, brand_id: str, time_zone: str, now: datetime) -> None:
        """Put the brand's time zone on its policy (a default policy when it has none)."""
        await self._conn.execute(
            "INSERT INTO points_policies (brand_id, expiry_mode, time_zone, "
            "time_zone_from_brand, updated_at) VALUES ($1, 'never', $2, true, $3) "
            "ON CONFLICT (brand_id) DO UPDATE SET time_zone = EXCLUDED.time_zone, "
            "time_zone_from_brand = true", brand_id, time_zone, now)

    async def add_rule(self, rule: EarningRule) -> EarningRule:
        row = await self._conn.fetchrow(
            "INSERT INTO earning_rules (brand_id, rule_id, trigger, title, points, "
            "points_per_currency_unit, activity_id, daily_cap_points, lifetime_cap_points, "
            "budget_points, enabled, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING *",
            rule.brand_id, rule.rule_id, rule.trigger.value, rule.title, rule.points,
            rule.points_per_currency_unit, rule.activity_id, rule.daily_cap_points,
            rule.lifetime_cap_points, rule.budget_points, rule.enabled, rule.created_at)
        return _rule(row)

    async def update_rule(self, rule: EarningRule, now: datetime) -> EarningRule:
        row = await self._conn.fetchrow(
            "UPDATE earning_rules SET title = $3, points = $4, points_per_currency_unit = $5, "
            "activity_id = $6, daily_cap_points = $7, lifetime_cap_points = $8, "
            "budget_points = $9, enabled = $10, updated_at = $11 "
            "WHERE brand_id = $1 AND rule_id = $2 RETURNING *",
            rule.brand_id, rule.rule_id, rule.title, rule.points,
            rule.points_per_currency_unit, rule.activity_id, rule.daily_cap_points,
            rule.lifetime_cap_points, rule.budget_points, rule.enabled, now)
        return _rule(row)

    async def rule(self, brand_id: str, rule_id: str, *, lock: bool = False
                   ) -> EarningRule | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM earning_rules WHERE brand_id = $1 AND rule_id = $2"
            + (" FOR UPDATE" if lock else ""), brand_id, rule_id)
        return _rule(row) if row else None

    async def rules(self, brand_id: str, after: str | None, limit: int) -> list[EarningRule]:
        rows = await self._conn.fetch(
            "SELECT * FROM earning_rules WHERE brand_id = $1 AND ($2::text IS NULL OR "
            "rule_id > $2) ORDER BY rule_id LIMIT $3", brand_id, after, limit)
        return [_rule(r) for r in rows]

    async def enabled_rules(self, brand_id: str, trigger: Trigger) -> list[EarningRule]:
        rows = await self._conn.fetch(
            "SELECT * FROM earning_rules WHERE brand_id = $1 AND trigger = $2 AND enabled "
            "ORDER BY created_at, rule_id", brand_id, trigger.value)
        return [_rule(r) for r in rows]

    async def add_granted(self, brand_id: str, rule_id: str, points: int) -> None:
        await self._conn.execute(
            "UPDATE earning_rules SET granted_points = granted_points + $3 "
            "WHERE brand_id = $1 AND rule_id = $2", brand_id, rule_id, points)

    async def lock_counter(self, brand_id: str, rule_id: str, account_id: str,
                           period: str) -> int:
        await self._conn.execute(
            "INSERT INTO earning_counters (brand_id, rule_id, account_id, period) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            brand_id, rule_id, account_id, period)
        return int(await self._conn.fetchval(
            "SELECT points FROM earning_counters WHERE brand_id = $1 AND rule_id = $2 "
            "AND account_id = $3 AND period = $4 FOR UPDATE",
            brand_id, rule_id, account_id, period))

    async def add_counter(self, brand_id: str, rule_id: str, account_id: str, period: str,
                          points: int) -> None:
        await self._conn.execute(
            "UPDATE earning_counters SET points = points + $5 WHERE brand_id = $1 "
            "AND rule_id = $2 AND account_id = $3 AND period = $4",
            brand_id, rule_id, account_id, period, points)

    async def multipliers(self, brand_id: str) -> dict[int, int]:
        rows = await self._conn.fetch(
            "SELECT level, percent FROM tier_multipliers WHERE brand_id = $1 ORDER BY level",
            brand_id)
        return {r["level"]: r["percent"] for r in rows}

    async def claim_program_version(self, brand_id: str, program_id: str,
                                    updated_at: datetime) -> bool:
        """Record that the projection now holds this program version; False (nothing
        recorded) when it already holds this version or a newer one."""
        return bool(await self._conn.fetchval(
            "INSERT INTO program_projections (brand_id, program_id, program_updated_at) "
            "VALUES ($1, $2, $3) ON CONFLICT (brand_id) DO UPDATE SET "
            "program_id = EXCLUDED.program_id, "
            "program_updated_at = EXCLUDED.program_updated_at "
            "WHERE program_projections.program_updated_at < EXCLUDED.program_updated_at "
            "RETURNING true", brand_id, program_id, updated_at))

    async def replace_multipliers(self, brand_id: str, multipliers: dict[int, int]) -> None:
        await self._conn.execute("DELETE FROM tier_multipliers WHERE brand_id = $1", brand_id)
        await self._conn.executemany(
            "INSERT INTO tier_multipliers (brand_id, level, percent) VALUES ($1, $2, $3)",
            [(brand_id, level, percent) for level, percent in multipliers.items()])

    async def member_level(self, brand_id: str, account_id: str) -> int:
        level = await self._conn.fetchval(
            "SELECT level FROM member_levels WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id)
        return int(level or 0)

    async def set_member_level(self, brand_id: str, account_id: str, level: int,
                               as_of: datetime) -> None:
        """Keep the newest report: an older event delivered late changes nothing."""
        await self._conn.execute(
            "INSERT INTO member_levels (brand_id, account_id, level, as_of) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (brand_id, account_id) DO UPDATE "
            "SET level = $3, as_of = $4 WHERE member_levels.as_of <= $4",
            brand_id, account_id, level, as_of)


def _template(row: Record) -> CouponTemplate:
    return CouponTemplate(
        row["brand_id"], row["template_id"], row["title"], CouponKind(row["kind"]),
        row["amount_off_cents"], row["percent_off"], row["threshold_cents"], row["claim_start"],
        row["claim_end"], row["valid_start"], row["valid_end"], row["valid_days"],
        row["total_stock"], row["per_member_limit"], list(row["eligible_levels"]),
        [Placement(p) for p in row["placements"]], row["state"] == "closed",
        row["issued_count"], row["created_at"], row["updated_at"])


@dataclass(frozen=True)
class IssuedCoupon:
    coupon_id: str
    template: CouponTemplate
    account_id: str
    valid_start: datetime
    valid_end: datetime
    source: str
    reason_code: str
    issued_at: datetime


def _gift_pack(row: Record) -> GiftPack:
    return GiftPack(row["brand_id"], row["gift_pack_id"], row["title"], row["points"],
                    list(zip(row["coupon_templates"], row["coupon_quantities"], strict=True)),
                    row["enabled"], row["start_time"], row["end_time"], row["created_at"],
                    row["updated_at"])


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
        return _template(row)

    async def template(self, brand_id: str, template_id: str, *, lock: bool = False
                       ) -> CouponTemplate | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM coupon_templates WHERE brand_id = $1 AND template_id = $2"
            + (" FOR UPDATE" if lock else ""), brand_id, template_id)
        return _template(row) if row else None

    async def templates(self, brand_id: str, after: str | None, limit: int
                        ) -> list[CouponTemplate]:
        rows = await self._conn.fetch(
            "SELECT * FROM coupon_templates WHERE brand_id = $1 AND ($2::text IS NULL OR "
            "template_id > $2) ORDER BY template_id LIMIT $3", brand_id, after, limit)
        return [_template(r) for r in rows]

    async def claimable(self, brand_id: str, now: datetime, placement: str | None
                        ) -> list[CouponTemplate]:
        rows = await self._conn.fetch(
            "SELECT * FROM coupon_templates WHERE brand_id = $1 AND state = 'active' "
            "AND issued_count < total_stock AND claim_start <= $2 "
            "AND (claim_end IS NULL OR claim_end > $2) "
            "AND ($3::text IS NULL OR $3 = ANY(placements)) ORDER BY created_at, template_id "
            "LIMIT 200", brand_id, now, placement)
        return [_template(r) for r in rows]

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
        return [(r["seq"], IssuedCoupon(r["coupon_id"], _template(r), r["account_id"],
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
        return _gift_pack(row)

    async def gift_pack(self, brand_id: str, gift_pack_id: str) -> GiftPack | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM gift_packs WHERE brand_id = $1 AND gift_pack_id = $2",
            brand_id, gift_pack_id)
        return _gift_pack(row) if row else None

    async def gift_packs(self, brand_id: str, after: str | None, limit: int) -> list[GiftPack]:
        rows = await self._conn.fetch(
            "SELECT * FROM gift_packs WHERE brand_id = $1 AND ($2::text IS NULL OR "
            "gift_pack_id > $2) ORDER BY gift_pack_id LIMIT $3", brand_id, after, limit)
        return [_gift_pack(r) for r in rows]

    async def active_gift_pack(self, brand_id: str, now: datetime) -> GiftPack | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM gift_packs WHERE brand_id = $1 AND enabled AND start_time <= $2 "
            "AND (end_time IS NULL OR end_time > $2) ORDER BY start_time DESC, created_at DESC "
            "LIMIT 1", brand_id, now)
        return _gift_pack(row) if row else None

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


def _item(row: Record) -> MallItem:
    return MallItem(row["brand_id"], row["item_id"], MallItemKind(row["kind"]), row["title"],
                    row["description"], row["price_points"], row["stock_total"],
                    row["per_member_limit"], row["coupon_template_id"],
                    list(row["eligible_levels"]), row["state"] == "on_sale",
                    row["stock_redeemed"], row["created_at"], row["updated_at"])


def _redemption(row: Record) -> Redemption:
    return Redemption(row["brand_id"], row["redemption_id"], row["request_id"],
                      row["account_id"], row["item_id"], row["quantity"], row["points"],
                      RedemptionState(row["state"]), row["spend_entry_id"],
                      row["refund_entry_id"], list(row["coupon_ids"]), row["virtual_code"],
                      Fulfilment(row["fulfilment_status"]), row["shipping_address"],
                      row["tracking_number"], row["failure_reason"], row["created_at"],
                      row["updated_at"])


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
        return _item(row)

    async def item(self, brand_id: str, item_id: str, *, lock: bool = False) -> MallItem | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM mall_items WHERE brand_id = $1 AND item_id = $2"
            + (" FOR UPDATE" if lock else ""), brand_id, item_id)
        return _item(row) if row else None

    async def items(self, brand_id: str, only_on_sale: bool, after: str | None,
                    limit: int) -> list[MallItem]:
        rows = await self._conn.fetch(
            "SELECT * FROM mall_items WHERE brand_id = $1 AND ($2 = false OR state = 'on_sale') "
            "AND ($3::text IS NULL OR item_id > $3) ORDER BY item_id LIMIT $4",
            brand_id, only_on_sale, after, limit)
        return [_item(r) for r in rows]

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
        return (_redemption(row), bytes(row["fingerprint"])) if row else None

    async def redemption(self, brand_id: str, redemption_id: str, *, lock: bool = False
                         ) -> Redemption | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM redemptions WHERE brand_id = $1 AND redemption_id = $2"
            + (" FOR UPDATE" if lock else ""), brand_id, redemption_id)
        return _redemption(row) if row else None

    async def update_redemption(self, r: Redemption, now: datetime) -> Redemption:
        row = await self._conn.fetchrow(
            "UPDATE redemptions SET state = $3, spend_entry_id = $4, refund_entry_id = $5, "
            "coupon_ids = $6, virtual_code = $7, fulfilment_status = $8, tracking_number = $9, "
            "failure_reason = $10, updated_at = $11 WHERE brand_id = $1 AND redemption_id = $2 "
            "RETURNING *",
            r.brand_id, r.redemption_id, r.state.value, r.spend_entry_id, r.refund_entry_id,
            r.coupon_ids, r.virtual_code, r.fulfilment.value, r.tracking_number,
            r.failure_reason, now)
        return _redemption(row)

    async def redemptions(self, brand_id: str, account_id: str | None,
                          before_seq: int | None, limit: int) -> list[tuple[int, Redemption]]:
        rows = await self._conn.fetch(
            "SELECT * FROM redemptions WHERE brand_id = $1 AND ($2::text IS NULL OR "
            "account_id = $2) AND ($3::bigint IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4",
            brand_id, account_id, before_seq, limit)
        return [(r["seq"], _redemption(r)) for r in rows]

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

"""Points policy, earning rules, tier multipliers and the member-level projection."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection
from services.benefits.adapters.rows import policy_from_row, rule_from_row
from services.benefits.domain.benefits import EarningRule, Trigger
from services.benefits.domain.points import PointsPolicy


class ConfigRepository:
    """Points policy, earning rules, tier multipliers and the member-level projection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def policy(self, brand_id: str) -> PointsPolicy | None:
        row = await self._conn.fetchrow("SELECT * FROM points_policies WHERE brand_id = $1",
                                        brand_id)
        return policy_from_row(row) if row else None

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
        return policy_from_row(row)

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
        return rule_from_row(row)

    async def update_rule(self, rule: EarningRule, now: datetime) -> EarningRule:
        row = await self._conn.fetchrow(
            "UPDATE earning_rules SET title = $3, points = $4, points_per_currency_unit = $5, "
            "activity_id = $6, daily_cap_points = $7, lifetime_cap_points = $8, "
            "budget_points = $9, enabled = $10, updated_at = $11 "
            "WHERE brand_id = $1 AND rule_id = $2 RETURNING *",
            rule.brand_id, rule.rule_id, rule.title, rule.points,
            rule.points_per_currency_unit, rule.activity_id, rule.daily_cap_points,
            rule.lifetime_cap_points, rule.budget_points, rule.enabled, now)
        return rule_from_row(row)

    async def rule(self, brand_id: str, rule_id: str, *, lock: bool = False
                   ) -> EarningRule | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM earning_rules WHERE brand_id = $1 AND rule_id = $2"
            + (" FOR UPDATE" if lock else ""), brand_id, rule_id)
        return rule_from_row(row) if row else None

    async def rules(self, brand_id: str, after: str | None, limit: int) -> list[EarningRule]:
        rows = await self._conn.fetch(
            "SELECT * FROM earning_rules WHERE brand_id = $1 AND ($2::text IS NULL OR "
            "rule_id > $2) ORDER BY rule_id LIMIT $3", brand_id, after, limit)
        return [rule_from_row(r) for r in rows]

    async def enabled_rules(self, brand_id: str, trigger: Trigger) -> list[EarningRule]:
        rows = await self._conn.fetch(
            "SELECT * FROM earning_rules WHERE brand_id = $1 AND trigger = $2 AND enabled "
            "ORDER BY created_at, rule_id", brand_id, trigger.value)
        return [rule_from_row(r) for r in rows]

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

    async def multipliers(self, brand_id: str, *, after_level: int = -1,
                          limit: int | None = None) -> dict[int, int]:
        """Percent by level, lowest level first: levels above `after_level`, at most `limit`."""
        rows = await self._conn.fetch(
            "SELECT level, percent FROM tier_multipliers WHERE brand_id = $1 AND level > $2 "
            "ORDER BY level LIMIT $3", brand_id, after_level, limit)
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

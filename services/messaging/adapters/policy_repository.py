"""A brand's sending policy (caps, quiet hours)."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection
from services.messaging.domain.governance import Policy


class PolicyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def upsert_policy(self, policy: Policy, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO messaging_policies (brand_id, daily_cap, weekly_cap, "
            "quiet_start_minute, quiet_end_minute, updated_at) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (brand_id) DO UPDATE SET daily_cap = EXCLUDED.daily_cap, "
            "weekly_cap = EXCLUDED.weekly_cap, quiet_start_minute = EXCLUDED.quiet_start_minute,"
            " quiet_end_minute = EXCLUDED.quiet_end_minute, updated_at = EXCLUDED.updated_at",
            policy.brand_id, policy.daily_cap, policy.weekly_cap, policy.quiet_start_minute,
            policy.quiet_end_minute, now)

    async def policy(self, brand_id: str) -> Policy:
        r = await self.conn.fetchrow("SELECT * FROM messaging_policies WHERE brand_id = $1",
                                     brand_id)
        if r is None:
            return Policy(brand_id)
        return Policy(brand_id, r["daily_cap"], r["weekly_cap"], r["quiet_start_minute"],
                      r["quiet_end_minute"])

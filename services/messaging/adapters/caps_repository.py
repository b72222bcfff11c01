"""Per member and channel day / week cap counters."""

from __future__ import annotations

from datetime import date

from libs.db import Connection
from services.messaging.domain.messages import OutboundMessage


class CapsRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def lock_caps(self, brand_id: str, keys: list[tuple[str, str]], day: date,
                        week: date) -> dict[tuple[str, str, str], int]:
        """Lock the day and week counters of (account, channel) pairs; returns their use."""
        accounts = [k[0] for k in keys for _ in (0, 1)]
        channels = [k[1] for k in keys for _ in (0, 1)]
        periods = ["day", "week"] * len(keys)
        starts = [day, week] * len(keys)
        await self.conn.execute(
            "INSERT INTO cap_counters (brand_id, account_id, channel, period, period_start) "
            "SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::date[]) "
            "ON CONFLICT DO NOTHING", brand_id, accounts, channels, periods, starts)
        rows = await self.conn.fetch(
            "SELECT c.account_id, c.channel, c.period, c.used FROM cap_counters c "
            "JOIN unnest($2::text[], $3::text[], $4::text[], $5::date[]) "
            "AS k(account_id, channel, period, period_start) USING (account_id, channel, period,"
            " period_start) WHERE c.brand_id = $1 "
            "ORDER BY c.account_id, c.channel, c.period FOR UPDATE OF c",
            brand_id, accounts, channels, periods, starts)
        return {(r["account_id"], r["channel"], r["period"]): r["used"] for r in rows}

    async def save_caps(self, brand_id: str, used: dict[tuple[str, str, str], int], day: date,
                        week: date) -> None:
        if not used:
            return
        keys = list(used)
        await self.conn.execute(
            "UPDATE cap_counters c SET used = u.used FROM unnest($2::text[], $3::text[], "
            "$4::text[], $5::date[], $6::int[]) AS u(account_id, channel, period, period_start,"
            " used) WHERE c.brand_id = $1 AND c.account_id = u.account_id "
            "AND c.channel = u.channel AND c.period = u.period "
            "AND c.period_start = u.period_start",
            brand_id, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
            [day if k[2] == "day" else week for k in keys], [used[k] for k in keys])

    async def release_caps(self, message: OutboundMessage) -> None:
        """A message that will not reach the member stops counting against the caps."""
        await self.conn.execute(
            "UPDATE cap_counters c SET used = greatest(0, used - 1) FROM outbound_messages o "
            "WHERE o.message_id = $1 AND c.brand_id = o.brand_id AND c.account_id = o.account_id "
            "AND c.channel = o.channel AND ((c.period = 'day' AND c.period_start = o.cap_day) "
            "OR (c.period = 'week' AND c.period_start = o.cap_week))", message.message_id)
        await self.conn.execute(
            "UPDATE outbound_messages SET cap_day = NULL, cap_week = NULL WHERE message_id = $1",
            message.message_id)

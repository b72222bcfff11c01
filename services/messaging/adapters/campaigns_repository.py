"""Campaigns, their fan-out progress, recipients and report."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from libs.db import Connection
from services.messaging.adapters.brand_pages import newest_first_page
from services.messaging.adapters.rows import campaign_from_row, message_from_row
from services.messaging.domain.campaigns import Campaign, CampaignStatus, Recipient


class CampaignsRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add_campaign(self, c: Campaign) -> None:
        await self.conn.execute(
            "INSERT INTO campaigns (campaign_id, brand_id, name, snapshot_id, template_id, "
            "channel, status, variables, throttle_per_second, holdout_basis_points, "
            "conversion_window_days, schedule_at, launched_at, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            c.campaign_id, c.brand_id, c.name, c.snapshot_id, c.template_id, c.channel.value,
            c.status.value, json.dumps(c.variables), c.throttle_per_second,
            c.holdout_basis_points, c.conversion_window_days, c.schedule_at, c.launched_at,
            c.created_at)

    async def campaign(self, brand_id: str, campaign_id: str, *,
                       lock: bool = False) -> Campaign | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM campaigns WHERE brand_id = $1 AND campaign_id = $2"
            + (" FOR UPDATE" if lock else ""), brand_id, campaign_id)
        return campaign_from_row(r) if r else None

    async def campaigns_page(self, brand_id: str, limit: int,
                             after: tuple[datetime, str] | None,
                             status: CampaignStatus | None) -> list[Campaign]:
        rows = await newest_first_page(self.conn, "campaigns", "campaign_id", brand_id, limit,
                                       after, "AND ($5::text IS NULL OR status = $5)",
                                       status.value if status else None)
        return [campaign_from_row(r) for r in rows]

    async def schedule_campaign(self, campaign_id: str, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE campaigns SET status = 'scheduled', schedule_at = $2 WHERE campaign_id = $1",
            campaign_id, at)

    async def due_campaign(self, now: datetime) -> tuple[Campaign, str, int] | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM campaigns WHERE status IN ('scheduled', 'running') "
            "AND schedule_at <= $1 ORDER BY schedule_at LIMIT 1 FOR UPDATE SKIP LOCKED", now)
        return (campaign_from_row(r), r["fanout_token"], r["fanout_count"]) if r else None

    async def advance_fanout(self, campaign_id: str, token: str, count: int, done: bool,
                             now: datetime) -> None:
        await self.conn.execute(
            "UPDATE campaigns SET fanout_token = $2, fanout_count = $3, status = $4, "
            "launched_at = COALESCE(launched_at, $5) WHERE campaign_id = $1",
            campaign_id, token, count, "fanned_out" if done else "running", now)

    async def add_recipients(self, campaign_id: str, rows: list[tuple[str, bool, str | None]]
                             ) -> set[str]:
        """(account, holdout, message id); returns the accounts newly taken in."""
        inserted = await self.conn.fetch(
            "INSERT INTO campaign_recipients (campaign_id, account_id, holdout, message_id) "
            "SELECT $1, * FROM unnest($2::text[], $3::bool[], $4::text[]) "
            "ON CONFLICT DO NOTHING RETURNING account_id",
            campaign_id, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
        return {r["account_id"] for r in inserted}

    async def requeue_failed(self, campaign_id: str, now: datetime) -> int:
        rows = await self.conn.fetch(
            "UPDATE outbound_messages SET status = 'queued', not_before = $2, attempts = 0, "
            "reason = '', updated_at = $2 WHERE campaign_id = $1 AND status = 'failed' "
            "RETURNING message_id", campaign_id, now)
        return len(rows)

    async def recipients_page(self, campaign_id: str, after: str, limit: int
                              ) -> list[Recipient]:
        """By account id, after `after`: each with its message (None: held out)."""
        rows = await self.conn.fetch(
            "SELECT r.account_id AS recipient_account_id, r.holdout AS recipient_holdout, o.* "
            "FROM campaign_recipients r "
            "LEFT JOIN outbound_messages o ON o.message_id = r.message_id "
            "WHERE r.campaign_id = $1 AND r.account_id > $2 ORDER BY r.account_id LIMIT $3",
            campaign_id, after, limit)
        return [Recipient(r["recipient_account_id"], r["recipient_holdout"],
                          message_from_row(r) if r["message_id"] is not None else None)
                for r in rows]

    async def campaign_report(self, c: Campaign) -> dict[str, Any]:
        counts = await self.conn.fetch(
            "SELECT o.status, o.reason, count(*) AS n FROM outbound_messages o "
            "WHERE o.campaign_id = $1 GROUP BY o.status, o.reason", c.campaign_id)
        totals = await self.conn.fetchrow(
            "SELECT count(*) AS targeted, count(*) FILTER (WHERE holdout) AS holdout "
            "FROM campaign_recipients WHERE campaign_id = $1", c.campaign_id)
        conversions = await self.conn.fetch(
            """
            SELECT r.holdout, count(DISTINCT r.account_id) AS converted,
                   coalesce(sum(mo.paid_cents), 0) AS revenue
            FROM campaign_recipients r
            LEFT JOIN outbound_messages o ON o.message_id = r.message_id
            JOIN member_orders mo ON mo.brand_id = $2 AND mo.account_id = r.account_id
                 AND mo.paid_at >= $3 AND mo.paid_at < $3 + make_interval(days => $4)
            WHERE r.campaign_id = $1
              AND (r.holdout OR o.status IN ('sent', 'delivered', 'read'))
            GROUP BY r.holdout
            """, c.campaign_id, c.brand_id, c.launched_at, c.conversion_window_days)
        return {"counts": [(r["status"], r["reason"], r["n"]) for r in counts],
                "targeted": totals["targeted"] if totals else 0,
                "holdout": totals["holdout"] if totals else 0,
                "conversions": {r["holdout"]: (r["converted"], r["revenue"])
                                for r in conversions}}

"""Outbound messages: queueing, claiming, leasing and their status."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from libs.db import Connection
from services.messaging.adapters.rows import message_from_row
from services.messaging.domain.channels import Channel
from services.messaging.domain.messages import MessageStatus, OutboundMessage


class MessagesRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add_messages(self, rows: list[dict[str, Any]]) -> list[str]:
        """Insert queued messages; a (brand, dedupe_key) seen before is skipped. Returns the
        ids actually inserted."""
        if not rows:
            return []
        inserted = await self.conn.fetch(
            """
            INSERT INTO outbound_messages (message_id, brand_id, account_id, channel, purpose,
                template_id, variables, campaign_id, journey_id, dedupe_key, status, not_before,
                spacing_ms, created_at, updated_at)
            SELECT m.message_id, m.brand_id, m.account_id, m.channel, m.purpose, m.template_id,
                   m.variables::jsonb, m.campaign_id, m.journey_id, m.dedupe_key, 'queued',
                   m.not_before, m.spacing_ms, m.created_at, m.created_at
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                        $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[],
                        $12::bigint[], $13::timestamptz[])
                 AS m(message_id, brand_id, account_id, channel, purpose, template_id,
                      variables, campaign_id, journey_id, dedupe_key, not_before, spacing_ms,
                      created_at)
            ON CONFLICT (brand_id, dedupe_key) DO NOTHING
            RETURNING message_id
            """,
            *([row[key] for row in rows] for key in (
                "message_id", "brand_id", "account_id", "channel", "purpose", "template_id",
                "variables", "campaign_id", "journey_id", "dedupe_key", "not_before",
                "spacing_ms", "created_at")))
        return [r["message_id"] for r in inserted]

    async def message(self, brand_id: str, message_id: str) -> OutboundMessage | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM outbound_messages WHERE brand_id = $1 AND message_id = $2",
            brand_id, message_id)
        return message_from_row(r) if r else None

    async def messages_by_ids(self, message_ids: list[str]) -> list[OutboundMessage]:
        rows = await self.conn.fetch(
            "SELECT * FROM outbound_messages WHERE message_id = ANY($1)", message_ids)
        return [message_from_row(r) for r in rows]

    async def mark_messages_read(self, message_ids: list[str], now: datetime
                                 ) -> list[OutboundMessage]:
        """Sent or delivered messages the member has now read; returns those that changed."""
        rows = await self.conn.fetch(
            "UPDATE outbound_messages SET status = 'read', read_at = $2, updated_at = $2 "
            "WHERE message_id = ANY($1) AND status IN ('sent', 'delivered') RETURNING *",
            message_ids, now)
        return [message_from_row(r) for r in rows]

    async def message_by_dedupe(self, brand_id: str, key: str) -> OutboundMessage | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM outbound_messages WHERE brand_id = $1 AND dedupe_key = $2",
            brand_id, key)
        return message_from_row(r) if r else None

    async def message_by_provider_id(self, brand_id: str, channel: Channel,
                                     provider_message_id: str, *,
                                     lock: bool = False) -> OutboundMessage | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM outbound_messages WHERE channel = $1 AND provider_message_id = $2 "
            f"AND brand_id = $3{' FOR UPDATE' if lock else ''}", channel.value,
            provider_message_id, brand_id)
        return message_from_row(r) if r else None

    async def claim_due(self, now: datetime, limit: int) -> list[OutboundMessage]:
        """Lock due messages (queued, or sending with an expired lease) for this transaction."""
        rows = await self.conn.fetch(
            "SELECT * FROM outbound_messages WHERE status IN ('queued', 'sending') "
            "AND not_before <= $1 AND (status = 'queued' OR lease_until < $1) "
            "ORDER BY not_before LIMIT $2 FOR UPDATE SKIP LOCKED", now, limit)
        return [message_from_row(r) for r in rows]

    async def set_status(self, message_ids: list[str], status: MessageStatus, now: datetime, *,
                         reason: str = "") -> None:
        column = {MessageStatus.SENT: "sent_at", MessageStatus.DELIVERED: "delivered_at",
                  MessageStatus.READ: "read_at"}.get(status)
        stamp = f", {column} = COALESCE({column}, $3)" if column else ""
        if status is MessageStatus.DELIVERED:
            stamp += ", sent_at = COALESCE(sent_at, $3)"
        await self.conn.execute(
            f"UPDATE outbound_messages SET status = $2, reason = $4, updated_at = $3, "
            f"lease_until = NULL{stamp} WHERE message_id = ANY($1)",
            message_ids, status.value, now, reason)

    async def defer(self, message_ids: list[str], until: datetime, now: datetime) -> None:
        """Wait until `until`, keeping each message's throttle spacing after it."""
        await self.conn.execute(
            "UPDATE outbound_messages SET not_before = $2::timestamptz + make_interval(secs => "
            "spacing_ms / 1000.0), deferrals = deferrals + 1, updated_at = $3 "
            "WHERE message_id = ANY($1)", message_ids, until, now)

    async def lease(self, message_ids: list[str], until: datetime, now: datetime,
                    caps: dict[str, tuple[date, date]]) -> None:
        await self.conn.execute(
            """
            UPDATE outbound_messages o SET status = 'sending', lease_until = $2,
                attempts = attempts + 1, updated_at = $3,
                cap_day = COALESCE(c.cap_day, o.cap_day),
                cap_week = COALESCE(c.cap_week, o.cap_week)
            FROM unnest($1::text[], $4::date[], $5::date[]) AS c(message_id, cap_day, cap_week)
            WHERE o.message_id = c.message_id
            """,
            message_ids, until, now,
            [caps.get(m, (None, None))[0] for m in message_ids],
            [caps.get(m, (None, None))[1] for m in message_ids])

    async def record_sent(self, message_id: str, provider_message_id: str,
                          now: datetime) -> bool:
        done = await self.conn.fetchval(
            "UPDATE outbound_messages SET status = 'sent', provider_message_id = $2, "
            "sent_at = $3, updated_at = $3, lease_until = NULL, reason = '' "
            "WHERE message_id = $1 AND status = 'sending' RETURNING true",
            message_id, provider_message_id, now)
        return bool(done)

    async def record_retry(self, message_id: str, reason: str, at: datetime,
                           now: datetime) -> bool:
        done = await self.conn.fetchval(
            "UPDATE outbound_messages SET status = 'queued', reason = $2, not_before = $3, "
            "lease_until = NULL, updated_at = $4 WHERE message_id = $1 AND status = 'sending' "
            "RETURNING true", message_id, reason, at, now)
        return bool(done)

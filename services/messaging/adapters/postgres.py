"""asyncpg repositories for the messaging schema."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from libs.db import Connection, Record
from services.messaging.domain.campaigns import Campaign, CampaignStatus
from services.messaging.domain.channels import Channel, ChannelConfig, ProviderKind, Purpose
from services.messaging.domain.governance import Policy
from services.messaging.domain.inbox import InboxMessage
from services.messaging.domain.messages import MessageStatus, OutboundMessage
from services.messaging.domain.templates import Template


def _inbox(r: Record) -> InboxMessage:
    return InboxMessage(r["message_id"], r["brand_id"], r["account_id"], r["title"], r["body"],
                        r["read_at"] is not None, r["created_at"])


def message_from_row(r: Record) -> OutboundMessage:
    return OutboundMessage(
        r["message_id"], r["brand_id"], r["account_id"], Channel(r["channel"]),
        Purpose(r["purpose"]), r["template_id"], json.loads(r["variables"]), r["campaign_id"],
        r["journey_id"], MessageStatus(r["status"]), r["reason"], r["not_before"],
        r["attempts"], r["deferrals"], r["provider_message_id"], r["created_at"], r["sent_at"],
        r["delivered_at"], r["read_at"])


def _template(r: Record) -> Template:
    return Template(r["template_id"], r["brand_id"], Channel(r["channel"]),
                    Purpose(r["purpose"]), r["name"], r["title"], r["body"],
                    r["provider_template_code"], json.loads(r["provider_params"]),
                    list(r["variables"]), list(r["custom_variables"]), r["link_url"],
                    r["created_at"])


def _campaign(r: Record) -> Campaign:
    return Campaign(r["campaign_id"], r["brand_id"], r["name"], r["snapshot_id"],
                    r["template_id"], Channel(r["channel"]), CampaignStatus(r["status"]),
                    json.loads(r["variables"]), r["throttle_per_second"],
                    r["holdout_basis_points"], r["conversion_window_days"], r["schedule_at"],
                    r["launched_at"], r["created_at"])


class MessagingRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- message box -------------------------------------------------------------------

    async def inbox_page(self, brand_id: str, account_id: str, limit: int,
                         after: tuple[datetime, str] | None,
                         unread_only: bool) -> list[InboxMessage]:
        """Newest first, keyset-paged on (created_at, message_id)."""
        rows = await self.conn.fetch(
            "SELECT * FROM inbox_messages WHERE brand_id = $1 AND account_id = $2 "
            "AND ($3::timestamptz IS NULL OR (created_at, message_id) < ($3, $4)) "
            "AND (NOT $6 OR read_at IS NULL) "
            "ORDER BY created_at DESC, message_id DESC LIMIT $5",
            brand_id, account_id, after[0] if after else None, after[1] if after else "",
            limit, unread_only,
        )
        return [_inbox(r) for r in rows]

    async def unread_count(self, brand_id: str, account_id: str) -> int:
        count = await self.conn.fetchval(
            "SELECT count(*) FROM inbox_messages "
            "WHERE brand_id = $1 AND account_id = $2 AND read_at IS NULL",
            brand_id, account_id,
        )
        return int(count)

    async def mark_read(self, brand_id: str, account_id: str, message_ids: list[str] | None,
                        now: datetime) -> list[str | None]:
        """Mark unread messages read; returns their outbound message ids (None for others)."""
        rows = await self.conn.fetch(
            "UPDATE inbox_messages SET read_at = $4 WHERE brand_id = $1 AND account_id = $2 "
            "AND read_at IS NULL AND ($3::text[] IS NULL OR message_id = ANY($3)) "
            "RETURNING outbound_message_id",
            brand_id, account_id, message_ids, now,
        )
        return [r["outbound_message_id"] for r in rows]

    async def existing_inbox_ids(self, brand_id: str, account_id: str,
                                 message_ids: list[str]) -> set[str]:
        rows = await self.conn.fetch(
            "SELECT message_id FROM inbox_messages WHERE brand_id = $1 AND account_id = $2 "
            "AND message_id = ANY($3)", brand_id, account_id, message_ids)
        return {r["message_id"] for r in rows}

    async def add_inbox_messages(self, rows: list[tuple[str, str, str, str, str, str, str | None,
                                                         datetime]]) -> None:
        """(message_id, brand, account, title, body, outbound id, campaign id, created_at)."""
        await self.conn.executemany(
            "INSERT INTO inbox_messages (message_id, brand_id, account_id, title, body, "
            "outbound_message_id, campaign_id, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING", rows)

    # --- channels, policy, consent -----------------------------------------------------

    async def upsert_channel(self, config: ChannelConfig, sealed: bytes) -> None:
        await self.conn.execute(
            "INSERT INTO channel_configs (brand_id, channel, provider, settings, "
            "credential_names, credentials, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (brand_id, channel) DO UPDATE SET provider = EXCLUDED.provider, "
            "settings = EXCLUDED.settings, credential_names = EXCLUDED.credential_names, "
            "credentials = EXCLUDED.credentials, updated_at = EXCLUDED.updated_at",
            config.brand_id, config.channel.value, config.provider.value,
            json.dumps(config.settings), config.credential_names, sealed, config.updated_at)

    async def channels(self, brand_id: str) -> list[tuple[ChannelConfig, bytes]]:
        rows = await self.conn.fetch(
            "SELECT * FROM channel_configs WHERE brand_id = $1 ORDER BY channel", brand_id)
        return [(ChannelConfig(r["brand_id"], Channel(r["channel"]), ProviderKind(r["provider"]),
                               json.loads(r["settings"]), list(r["credential_names"]),
                               r["updated_at"]), bytes(r["credentials"])) for r in rows]

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

    async def set_consent(self, brand_id: str, account_id: str, channel: Channel,
                          purpose: Purpose, granted: bool, source: str, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO consents (brand_id, account_id, channel, purpose, granted, source, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (brand_id, account_id, channel, purpose) DO UPDATE SET "
            "granted = EXCLUDED.granted, source = EXCLUDED.source, "
            "updated_at = EXCLUDED.updated_at",
            brand_id, account_id, channel.value, purpose.value, granted, source, now)

    async def set_consent_unless_newer(self, brand_id: str, account_id: str, channel: Channel,
                                       purpose: Purpose, granted: bool, source: str,
                                       at: datetime) -> None:
        """Record a decision made at `at` unless a later one is already recorded (an event
        delivered late never undoes what the member decided afterwards)."""
        await self.conn.execute(
            "INSERT INTO consents (brand_id, account_id, channel, purpose, granted, source, "
            "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (brand_id, account_id, channel, purpose) DO UPDATE SET "
            "granted = EXCLUDED.granted, source = EXCLUDED.source, "
            "updated_at = EXCLUDED.updated_at WHERE consents.updated_at <= EXCLUDED.updated_at",
            brand_id, account_id, channel.value, purpose.value, granted, source, at)

    async def consents(self, brand_id: str, account_id: str) -> list[Record]:
        return list(await self.conn.fetch(
            "SELECT * FROM consents WHERE brand_id = $1 AND account_id = $2 "
            "ORDER BY channel, purpose", brand_id, account_id))

    async def consent_map(self, brand_id: str, accounts: list[str]
                          ) -> dict[tuple[str, str, str], bool]:
        rows = await self.conn.fetch(
            "SELECT account_id, channel, purpose, granted FROM consents "
            "WHERE brand_id = $1 AND account_id = ANY($2)", brand_id, accounts)
        return {(r["account_id"], r["channel"], r["purpose"]): r["granted"] for r in rows}

    async def cancelled(self, brand_id: str, accounts: list[str]) -> set[str]:
        rows = await self.conn.fetch(
            "SELECT account_id FROM cancelled_members WHERE brand_id = $1 "
            "AND account_id = ANY($2)", brand_id, accounts)
        return {r["account_id"] for r in rows}

    async def mark_cancelled(self, brand_id: str, account_id: str, at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO cancelled_members (brand_id, account_id, cancelled_at) "
            "VALUES ($1, $2, $3) ON CONFLICT (brand_id, account_id) DO UPDATE "
            "SET cancelled_at = EXCLUDED.cancelled_at", brand_id, account_id, at)

    async def clear_cancelled(self, brand_id: str, account_id: str) -> None:
        await self.conn.execute(
            "DELETE FROM cancelled_members WHERE brand_id = $1 AND account_id = $2",
            brand_id, account_id)

    async def add_order(self, brand_id: str, order_id: str, account_id: str, cents: int,
                        at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO member_orders (brand_id, order_id, account_id, paid_cents, paid_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            brand_id, order_id, account_id, cents, at)

    async def ordered_between(self, brand_id: str, account_id: str, start: datetime,
                              end: datetime) -> bool:
        return bool(await self.conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM member_orders WHERE brand_id = $1 "
            "AND account_id = $2 AND paid_at >= $3 AND paid_at < $4)",
            brand_id, account_id, start, end))

    # --- templates ---------------------------------------------------------------------

    async def add_template(self, t: Template) -> None:
        await self.conn.execute(
            "INSERT INTO templates (template_id, brand_id, channel, purpose, name, title, body, "
            "provider_template_code, provider_params, variables, custom_variables, link_url, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            t.template_id, t.brand_id, t.channel.value, t.purpose.value, t.name, t.title, t.body,
            t.provider_template_code, json.dumps(t.provider_params), t.variables,
            t.custom_variables, t.link_url, t.created_at)

    async def template(self, brand_id: str, template_id: str) -> Template | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM templates WHERE brand_id = $1 AND template_id = $2",
            brand_id, template_id)
        return _template(r) if r else None

    async def _brand_page(self, table: str, key: str, brand_id: str, limit: int,
                          after: tuple[datetime, str] | None, where: str = "",
                          *args: Any) -> list[Record]:
        """Newest first, keyset-paged on (created_at, <key>); `where` uses $5 onwards."""
        return list(await self.conn.fetch(
            f"SELECT * FROM {table} WHERE brand_id = $1 "  # table and key are fixed names
            f"AND ($2::timestamptz IS NULL OR (created_at, {key}) < ($2, $3)) {where} "
            f"ORDER BY created_at DESC, {key} DESC LIMIT $4",
            brand_id, after[0] if after else None, after[1] if after else "", limit, *args))

    async def templates_page(self, brand_id: str, limit: int,
                             after: tuple[datetime, str] | None,
                             channel: Channel | None) -> list[Template]:
        rows = await self._brand_page("templates", "template_id", brand_id, limit, after,
                                      "AND ($5::text IS NULL OR channel = $5)",
                                      channel.value if channel else None)
        return [_template(r) for r in rows]

    async def campaigns_page(self, brand_id: str, limit: int,
                             after: tuple[datetime, str] | None,
                             status: CampaignStatus | None) -> list[Campaign]:
        rows = await self._brand_page("campaigns", "campaign_id", brand_id, limit, after,
                                      "AND ($5::text IS NULL OR status = $5)",
                                      status.value if status else None)
        return [_campaign(r) for r in rows]

    async def templates(self, ids: Iterable[str]) -> dict[str, Template]:
        rows = await self.conn.fetch("SELECT * FROM templates WHERE template_id = ANY($1)",
                                     list(set(ids)))
        return {r["template_id"]: _template(r) for r in rows}

    # --- outbound messages -------------------------------------------------------------

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

    async def sandbox_page(self, brand_id: str, limit: int,
                           after: tuple[datetime, str] | None) -> list[Record]:
        return list(await self.conn.fetch(
            "SELECT * FROM sandbox_deliveries WHERE brand_id = $1 "
            "AND ($2::timestamptz IS NULL OR (created_at, delivery_id) > ($2, $3)) "
            "ORDER BY created_at, delivery_id LIMIT $4",
            brand_id, after[0] if after else None, after[1] if after else "", limit))

    # --- campaigns ---------------------------------------------------------------------

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
        return _campaign(r) if r else None

    async def schedule_campaign(self, campaign_id: str, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE campaigns SET status = 'scheduled', schedule_at = $2 WHERE campaign_id = $1",
            campaign_id, at)

    async def due_campaign(self, now: datetime) -> tuple[Campaign, str, int] | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM campaigns WHERE status IN ('scheduled', 'running') "
            "AND schedule_at <= $1 ORDER BY schedule_at LIMIT 1 FOR UPDATE SKIP LOCKED", now)
        return (_campaign(r), r["fanout_token"], r["fanout_count"]) if r else None

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

    async def recipients_page(self, campaign_id: str, after: str, limit: int) -> list[Record]:
        return list(await self.conn.fetch(
            "SELECT r.account_id AS recipient_account_id, r.holdout AS recipient_holdout, o.* "
            "FROM campaign_recipients r "
            "LEFT JOIN outbound_messages o ON o.message_id = r.message_id "
            "WHERE r.campaign_id = $1 AND r.account_id > $2 ORDER BY r.account_id LIMIT $3",
            campaign_id, after, limit))

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

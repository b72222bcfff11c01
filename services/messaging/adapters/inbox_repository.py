"""The member's message box: its messages, unread counts and reads."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection
from services.messaging.adapters.rows import inbox_from_row
from services.messaging.domain.inbox import InboxMessage


class InboxRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

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
        return [inbox_from_row(r) for r in rows]

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

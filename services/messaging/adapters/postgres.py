"""asyncpg repository for the messaging schema."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection
from services.messaging.domain.inbox import InboxMessage


class InboxRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def page(self, brand_id: str, account_id: str, limit: int,
                   after: tuple[datetime, str] | None) -> list[InboxMessage]:
        """Newest first, keyset-paged on (created_at, message_id)."""
        rows = await self._conn.fetch(
            "SELECT * FROM inbox_messages WHERE brand_id = $1 AND account_id = $2 "
            "AND ($3::timestamptz IS NULL OR (created_at, message_id) < ($3, $4)) "
            "ORDER BY created_at DESC, message_id DESC LIMIT $5",
            brand_id, account_id, after[0] if after else None, after[1] if after else "", limit,
        )
        return [InboxMessage(r["message_id"], r["brand_id"], r["account_id"], r["title"],
                             r["body"], r["read_at"] is not None, r["created_at"]) for r in rows]

    async def unread_count(self, brand_id: str, account_id: str) -> int:
        count = await self._conn.fetchval(
            "SELECT count(*) FROM inbox_messages "
            "WHERE brand_id = $1 AND account_id = $2 AND read_at IS NULL",
            brand_id, account_id,
        )
        return int(count)

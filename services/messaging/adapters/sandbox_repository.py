"""What the sandbox provider recorded instead of sending."""

from __future__ import annotations

import json
from datetime import datetime

from libs.db import Connection
from services.messaging.domain.channels import Channel
from services.messaging.domain.messages import SandboxDelivery


class SandboxDeliveriesRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def sandbox_page(self, brand_id: str, limit: int,
                           after: tuple[datetime, str] | None) -> list[SandboxDelivery]:
        """Oldest first, keyset-paged on (created_at, delivery_id)."""
        rows = await self.conn.fetch(
            "SELECT * FROM sandbox_deliveries WHERE brand_id = $1 "
            "AND ($2::timestamptz IS NULL OR (created_at, delivery_id) > ($2, $3)) "
            "ORDER BY created_at, delivery_id LIMIT $4",
            brand_id, after[0] if after else None, after[1] if after else "", limit)
        return [SandboxDelivery(r["delivery_id"], r["brand_id"], Channel(r["channel"]),
                                r["message_id"], r["masked_address"], r["title"], r["body"],
                                json.loads(r["params"]), r["created_at"]) for r in rows]

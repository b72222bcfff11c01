"""What the sandbox provider recorded instead of sending."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection, Record


class SandboxDeliveriesRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def sandbox_page(self, brand_id: str, limit: int,
                           after: tuple[datetime, str] | None) -> list[Record]:
        return list(await self.conn.fetch(
            "SELECT * FROM sandbox_deliveries WHERE brand_id = $1 "
            "AND ($2::timestamptz IS NULL OR (created_at, delivery_id) > ($2, $3)) "
            "ORDER BY created_at, delivery_id LIMIT $4",
            brand_id, after[0] if after else None, after[1] if after else "", limit))

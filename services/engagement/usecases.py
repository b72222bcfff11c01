"""Engagement use cases."""

from __future__ import annotations

from datetime import datetime

from libs.db import Connection
from libs.errors import require
from libs.paging import decode_page_token, encode_page_token, page_size
from services.engagement.adapters.postgres import ActivityRepository
from services.engagement.domain.activities import Activity


async def list_activities(conn: Connection, brand_id: str, requested_size: int,
                          token: str) -> tuple[list[Activity], str]:
    brand_id = require(brand_id, "brand_id")
    size = page_size(requested_size)
    position = decode_page_token(token, ("t", "id"))
    after = (datetime.fromisoformat(position["t"]), position["id"]) if position else None
    rows = await ActivityRepository(conn).page(brand_id, size + 1, after)
    page, more = rows[:size], len(rows) > size
    next_token = (encode_page_token({"t": page[-1].created_at.isoformat(),
                                     "id": page[-1].activity_id}) if more else "")
    return page, next_token

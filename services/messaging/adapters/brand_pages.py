"""Keyset pages over one brand's rows, newest first (templates, campaigns)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from libs.db import Connection, Record


async def newest_first_page(conn: Connection, table: str, key: str, brand_id: str, limit: int,
                            after: tuple[datetime, str] | None, where: str = "",
                            *args: Any) -> list[Record]:
    """Newest first, keyset-paged on (created_at, <key>); `where` uses $5 onwards."""
    return list(await conn.fetch(
        f"SELECT * FROM {table} WHERE brand_id = $1 "  # table and key are fixed names
        f"AND ($2::timestamptz IS NULL OR (created_at, {key}) < ($2, $3)) {where} "
        f"ORDER BY created_at DESC, {key} DESC LIMIT $4",
        brand_id, after[0] if after else None, after[1] if after else "", limit, *args))

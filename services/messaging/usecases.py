"""Messaging use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from libs.db import Connection
from libs.errors import require
from libs.paging import decode_page_token, encode_page_token, page_size
from services.messaging.adapters.postgres import InboxRepository
from services.messaging.domain.inbox import InboxMessage


@dataclass(frozen=True)
class InboxPage:
    messages: list[InboxMessage]
    next_page_token: str
    unread_count: int


async def list_inbox(conn: Connection, brand_id: str, account_id: str, requested_size: int,
                     token: str) -> InboxPage:
    brand_id, account_id = require(brand_id, "brand_id"), require(account_id, "account_id")
    size = page_size(requested_size)
    position = decode_page_token(token, ("t", "id"))
    after = (datetime.fromisoformat(position["t"]), position["id"]) if position else None
    repo = InboxRepository(conn)
    rows = await repo.page(brand_id, account_id, size + 1, after)
    page, more = rows[:size], len(rows) > size
    next_token = (encode_page_token({"t": page[-1].created_at.isoformat(),
                                     "id": page[-1].message_id}) if more else "")
    return InboxPage(page, next_token, await repo.unread_count(brand_id, account_id))

"""The member's message box: pages, the unread count, marking read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from libs.db import Connection
from libs.errors import InvalidArgument, NotFound, require
from libs.idempotency import CommitOnce, Reply
from libs.paging import decode_time_and_id, keyset_page, page_size, time_and_id
from services.messaging.adapters.inbox_repository import InboxRepository
from services.messaging.adapters.messages_repository import MessagesRepository
from services.messaging.domain.inbox import InboxMessage
from services.messaging.domain.messages import MessageStatus
from services.messaging.usecases.context import MessagingContext
from services.messaging.usecases.status_events import message_status_events


@dataclass(frozen=True)
class InboxPage:
    messages: list[InboxMessage]
    next_page_token: str
    unread_count: int


async def list_inbox(app: MessagingContext, brand_id: str, account_id: str,
                     requested_size: int, token: str, unread_only: bool = False) -> InboxPage:
    brand_id, account_id = require(brand_id, "brand_id"), require(account_id, "account_id")
    filters = {"brand_id": brand_id, "account_id": account_id, "unread_only": unread_only}
    size = page_size(requested_size)
    after = decode_time_and_id(token, filters=filters)
    async with app.db.connection() as conn:
        box = InboxRepository(conn)
        rows = await box.inbox_page(brand_id, account_id, size + 1, after, unread_only)
        unread = await box.unread_count(brand_id, account_id)
    page, next_token = keyset_page(rows, size, lambda m: time_and_id(m.created_at, m.message_id),
                                   filters=filters)
    return InboxPage(page, next_token, unread)


async def unread_count(app: MessagingContext, brand_id: str, account_id: str) -> int:
    async with app.db.connection() as conn:
        return await InboxRepository(conn).unread_count(require(brand_id, "brand_id"),
                                                        require(account_id, "account_id"))


async def mark_read(app: MessagingContext, commit_once: CommitOnce[tuple[int, int], Reply],
                    brand_id: str, account_id: str, message_ids: list[str],
                    mark_all: bool) -> Reply:
    """Answers (newly read, still unread). Unknown ids are refused, naming the first."""
    return await commit_once(lambda conn: _mark_read(conn, brand_id, account_id, message_ids,
                                                     mark_all, app.clock()))


async def _mark_read(conn: Connection, brand_id: str, account_id: str, message_ids: list[str],
                     mark_all: bool, now: datetime) -> tuple[int, int]:
    brand_id, account_id = require(brand_id, "brand_id"), require(account_id, "account_id")
    if mark_all == bool(message_ids):
        raise InvalidArgument("give either message_ids or all = true", field="message_ids",
                              reason="MESSAGE_IDS_OR_ALL")
    box = InboxRepository(conn)
    if message_ids:
        known = await box.existing_inbox_ids(brand_id, account_id, message_ids)
        for message_id in message_ids:
            if message_id not in known:
                raise NotFound(f"message {message_id} is not in this member's box",
                               reason="INBOX_MESSAGE_NOT_FOUND",
                               metadata={"message_id": message_id})
    outbound = await box.mark_read(brand_id, account_id, message_ids or None, now)
    linked = [m for m in outbound if m]
    if linked:
        read = await MessagesRepository(conn).mark_messages_read(linked, now)
        await message_status_events(conn, read, MessageStatus.READ)
    return len(outbound), await box.unread_count(brand_id, account_id)

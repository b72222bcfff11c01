"""Single messages: queueing one, reading it, provider receipts and the sandbox."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from libs.db import Connection
from libs.errors import InvalidArgument, Unauthenticated, found, require
from libs.idempotency import CommitOnce, Reply
from libs.paging import decode_time_and_id, keyset_page, page_size, time_and_id
from services.messaging.adapters.caps_repository import CapsRepository
from services.messaging.adapters.channels_repository import ChannelsRepository
from services.messaging.adapters.crypto import CredentialCipher
from services.messaging.adapters.messages_repository import MessagesRepository
from services.messaging.adapters.sandbox_repository import SandboxDeliveriesRepository
from services.messaging.domain.channels import Channel, new_id
from services.messaging.domain.messages import MessageStatus, OutboundMessage, SandboxDelivery
from services.messaging.domain.receipts import (
    RECEIPT_SECRET,
    ReceiptOutcome,
    ReceiptResult,
    parse_receipts,
    verify_signature,
)
from services.messaging.domain.templates import BRAND_VARIABLES, Template, require_variables
from services.messaging.usecases.context import MessagingContext
from services.messaging.usecases.status_events import Failure, message_status_events
from services.messaging.usecases.templates import get_template, unknown_variables


def message_row(*, brand_id: str, account_id: str, template: Template,
                variables: dict[str, str], dedupe_key: str, not_before: datetime,
                now: datetime, campaign_id: str | None = None, journey_id: str | None = None,
                spacing_ms: int = 0) -> dict[str, Any]:
    return {"message_id": new_id("msg"), "brand_id": brand_id, "account_id": account_id,
            "channel": template.channel.value, "purpose": template.purpose.value,
            "template_id": template.template_id, "variables": json.dumps(variables),
            "campaign_id": campaign_id, "journey_id": journey_id, "dedupe_key": dedupe_key,
            "not_before": not_before, "spacing_ms": spacing_ms, "created_at": now}


async def send_message(app: MessagingContext, commit_once: CommitOnce[OutboundMessage, Reply],
                       request_id: str, brand_id: str, account_id: str, template_id: str,
                       variables: dict[str, str], schedule_at: datetime | None) -> Reply:
    """Queue one message now or for later (never before now)."""
    return await commit_once(lambda conn: _queue(conn, request_id, brand_id, account_id,
                                                 template_id, variables, schedule_at,
                                                 app.clock()))


async def _queue(conn: Connection, request_id: str, brand_id: str, account_id: str,
                 template_id: str, variables: dict[str, str], schedule_at: datetime | None,
                 now: datetime) -> OutboundMessage:
    brand_id, account_id = require(brand_id, "brand_id"), require(account_id, "account_id")
    template = await get_template(conn, brand_id, template_id)
    unknown_variables(template, variables, "variables")
    require_variables(template, [*BRAND_VARIABLES, *variables], "variables")
    key = f"request:{request_id}"
    outbound = MessagesRepository(conn)
    await outbound.add_messages([message_row(
        brand_id=brand_id, account_id=account_id, template=template, variables=variables,
        dedupe_key=key, not_before=max(schedule_at or now, now), now=now)])
    message = await outbound.message_by_dedupe(brand_id, key)
    assert message is not None
    await message_status_events(conn, [message], MessageStatus.QUEUED)
    return message


async def get_message(app: MessagingContext, brand_id: str, message_id: str
                      ) -> OutboundMessage:
    async with app.db.connection() as conn:
        message = await MessagesRepository(conn).message(require(brand_id, "brand_id"),
                                                         require(message_id, "message_id"))
    return found(message, f"message {message_id}", reason="MESSAGE_NOT_FOUND",
                 message_id=message_id)


async def receive_receipt(app: MessagingContext,
                          commit_once: CommitOnce[OutboundMessage, Reply], brand_id: str,
                          channel: Channel, provider_message_id: str, delivered: bool,
                          error_code: str) -> Reply:
    """A provider's receipt for one message, as an operator or a provider bridge relays it."""
    return await commit_once(lambda conn: record_receipt(
        conn, brand_id, channel, provider_message_id, delivered, error_code, app.clock()))


async def record_receipt(conn: Connection, brand_id: str, channel: Channel,
                         provider_message_id: str, delivered: bool, error_code: str,
                         now: datetime) -> OutboundMessage:
    brand_id = require(brand_id, "brand_id")
    provider_message_id = require(provider_message_id, "provider_message_id")
    outbound = MessagesRepository(conn)
    message = found(
        await outbound.message_by_provider_id(brand_id, channel, provider_message_id),
        f"{channel.value} message with provider id {provider_message_id}",
        reason="MESSAGE_NOT_FOUND", provider_message_id=provider_message_id)
    if message.status is MessageStatus.SENT:
        status = MessageStatus.DELIVERED if delivered else MessageStatus.FAILED
        reason = "" if delivered else (error_code or "NOT_DELIVERED")
        await outbound.set_status([message.message_id], status, now, reason=reason)
        if not delivered:
            await CapsRepository(conn).release_caps(message)
        await message_status_events(conn, [message], status,
                                    {message.message_id: error_code}, Failure.NOT_DELIVERED)
    updated = await outbound.message(brand_id, message.message_id)
    assert updated is not None
    return updated


async def record_signed_receipts(app: MessagingContext, brand_id: str, channel: Channel,
                                 body: bytes, timestamp: str, signature: str
                                 ) -> list[ReceiptResult]:
    """Check the callback against the channel's receipt secret, then record each receipt in
    one transaction: nothing is recorded unless the signature and timestamp hold. Not keyed by
    a request id: a provider's retried callback answers DUPLICATE for what is recorded."""
    async with app.db.transaction() as conn:
        return await _record_signed(conn, app.cipher, brand_id, channel, body, timestamp,
                                    signature, app.clock())


async def _record_signed(conn: Connection, cipher: CredentialCipher, brand_id: str,
                         channel: Channel, body: bytes, timestamp: str, signature: str,
                         now: datetime) -> list[ReceiptResult]:
    brand_id = require(brand_id, "brand_id")
    if channel is Channel.INBOX:
        raise InvalidArgument("the message box has no provider receipts", field="channel",
                              reason="CHANNEL_NOT_CONFIGURABLE")
    sealed = next((blob for config, blob in await ChannelsRepository(conn).channels(brand_id)
                   if config.channel is channel), None)
    secret = cipher.open(brand_id, sealed).get(RECEIPT_SECRET, "") if sealed else ""
    if not secret:
        raise Unauthenticated(f"no receipt secret is configured for {channel.value}",
                              reason="RECEIPT_SECRET_NOT_CONFIGURED")
    verify_signature(secret, timestamp, body, signature, now)
    results = []
    for receipt in parse_receipts(body):
        # Locked: two callbacks racing for one message record it once.
        message = await MessagesRepository(conn).message_by_provider_id(
            brand_id, channel, receipt.provider_message_id, lock=True)
        if message is None:
            results.append(ReceiptResult(receipt.provider_message_id, ReceiptOutcome.REJECTED,
                                         "MESSAGE_NOT_FOUND"))
            continue
        if message.status is not MessageStatus.SENT:
            final = message.status in (MessageStatus.DELIVERED, MessageStatus.FAILED,
                                       MessageStatus.READ)
            results.append(ReceiptResult(
                receipt.provider_message_id,
                ReceiptOutcome.DUPLICATE if final else ReceiptOutcome.REJECTED,
                "" if final else "MESSAGE_NOT_SENT", message.message_id))
            continue
        at = min(receipt.provider_time or now, now)
        if message.sent_at is not None:
            at = max(at, message.sent_at)
        await record_receipt(conn, brand_id, channel, receipt.provider_message_id,
                             receipt.delivered, receipt.error_code, at)
        results.append(ReceiptResult(receipt.provider_message_id, ReceiptOutcome.ACCEPTED,
                                     "", message.message_id))
    return results


async def sandbox_page(app: MessagingContext, brand_id: str, requested_size: int,
                       token: str) -> tuple[list[SandboxDelivery], str]:
    """One page of what the sandbox provider recorded for the brand, oldest first."""
    filters = {"brand_id": require(brand_id, "brand_id")}
    size = page_size(requested_size)
    after = decode_time_and_id(token, filters=filters)
    async with app.db.connection() as conn:
        rows = await SandboxDeliveriesRepository(conn).sandbox_page(brand_id, size + 1, after)
    return keyset_page(rows, size, lambda d: time_and_id(d.created_at, d.delivery_id),
                       filters=filters)

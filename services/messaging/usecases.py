"""Messaging use cases: the message box, channels, consent, templates, single messages and
campaigns. Each runs in the caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from libs.db import Connection, Record
from libs.errors import (
    Code,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
    require,
)
from libs.paging import decode_page_token, encode_page_token, page_size
from services.messaging.adapters.crypto import CredentialCipher
from services.messaging.adapters.postgres import MessagingRepository, message_from_row
from services.messaging.domain.campaigns import (
    Campaign,
    CampaignStatus,
    validate_campaign_fields,
)
from services.messaging.domain.channels import (
    Channel,
    ChannelConfig,
    ProviderKind,
    Purpose,
    new_id,
    validate_channel_config,
)
from services.messaging.domain.governance import Policy, validate_policy
from services.messaging.domain.inbox import InboxMessage
from services.messaging.domain.journeys import Journey
from services.messaging.domain.messages import MessageStatus, OutboundMessage
from services.messaging.domain.receipts import (
    RECEIPT_SECRET,
    ReceiptOutcome,
    ReceiptResult,
    parse_receipts,
    verify_signature,
)
from services.messaging.domain.templates import (
    BRAND_VARIABLES,
    MEMBER_VARIABLES,
    Template,
    require_variables,
    template_variables,
    validate_template_shape,
)
from services.messaging.events import message_status_events
from services.messaging.ports import AudienceSource

MAX_SOURCE_LENGTH = 64


@dataclass(frozen=True)
class InboxPage:
    messages: list[InboxMessage]
    next_page_token: str
    unread_count: int


# --- message box ------------------------------------------------------------------------


async def list_inbox(conn: Connection, brand_id: str, account_id: str, requested_size: int,
                     token: str, unread_only: bool = False) -> InboxPage:
    brand_id, account_id = require(brand_id, "brand_id"), require(account_id, "account_id")
    size = page_size(requested_size)
    position = decode_page_token(token, ("t", "id"))
    after = (datetime.fromisoformat(position["t"]), position["id"]) if position else None
    repo = MessagingRepository(conn)
    rows = await repo.inbox_page(brand_id, account_id, size + 1, after, unread_only)
    page, more = rows[:size], len(rows) > size
    next_token = (encode_page_token({"t": page[-1].created_at.isoformat(),
                                     "id": page[-1].message_id}) if more else "")
    return InboxPage(page, next_token, await repo.unread_count(brand_id, account_id))


async def unread_count(conn: Connection, brand_id: str, account_id: str) -> int:
    return await MessagingRepository(conn).unread_count(require(brand_id, "brand_id"),
                                                        require(account_id, "account_id"))


async def mark_read(conn: Connection, brand_id: str, account_id: str, message_ids: list[str],
                    mark_all: bool, now: datetime) -> tuple[int, int]:
    """Returns (newly read, still unread). Unknown ids are refused, naming the first."""
    brand_id, account_id = require(brand_id, "brand_id"), require(account_id, "account_id")
    if mark_all == bool(message_ids):
        raise InvalidArgument("give either message_ids or all = true", field="message_ids",
                              reason="MESSAGE_IDS_OR_ALL")
    repo = MessagingRepository(conn)
    if message_ids:
        known = await repo.existing_inbox_ids(brand_id, account_id, message_ids)
        for message_id in message_ids:
            if message_id not in known:
                raise NotFound(f"message {message_id} is not in this member's box",
                               reason="INBOX_MESSAGE_NOT_FOUND",
                               metadata={"message_id": message_id})
    outbound = await repo.mark_read(brand_id, account_id, message_ids or None, now)
    linked = [m for m in outbound if m]
    if linked:
        rows = await conn.fetch(
            "UPDATE outbound_messages SET status = 'read', read_at = $2, updated_at = $2 "
            "WHERE message_id = ANY($1) AND status IN ('sent', 'delivered') RETURNING *",
            linked, now)
        await message_status_events(conn, [message_from_row(r) for r in rows],
                                    MessageStatus.READ)
    return len(outbound), await repo.unread_count(brand_id, account_id)


# --- channels, policy, consent ------------------------------------------------------------


async def configure_channel(conn: Connection, cipher: CredentialCipher, brand_id: str,
                            channel: Channel, provider: ProviderKind, settings: dict[str, str],
                            credentials: dict[str, str], now: datetime) -> ChannelConfig:
    brand_id = require(brand_id, "brand_id")
    validate_channel_config(channel, provider, settings, credentials)
    config = ChannelConfig(brand_id, channel, provider, dict(settings),
                           sorted(credentials), now)
    await MessagingRepository(conn).upsert_channel(config, cipher.seal(brand_id, credentials))
    return config


async def list_channels(conn: Connection, brand_id: str) -> list[ChannelConfig]:
    return [config for config, _ in
            await MessagingRepository(conn).channels(require(brand_id, "brand_id"))]


async def set_policy(conn: Connection, policy: Policy, now: datetime) -> Policy:
    require(policy.brand_id, "policy.brand_id")
    await MessagingRepository(conn).upsert_policy(validate_policy(policy), now)
    return policy


async def get_policy(conn: Connection, brand_id: str) -> Policy:
    return await MessagingRepository(conn).policy(require(brand_id, "brand_id"))


async def set_consent(conn: Connection, brand_id: str, account_id: str, channel: Channel,
                      purpose: Purpose, granted: bool, source: str, now: datetime) -> Record:
    brand_id, account_id = require(brand_id, "brand_id"), require(account_id, "account_id")
    source = require(source, "source")
    if len(source) > MAX_SOURCE_LENGTH:
        raise InvalidArgument("source must be at most 64 characters", field="source",
                              reason="SOURCE_TOO_LONG")
    repo = MessagingRepository(conn)
    await repo.set_consent(brand_id, account_id, channel, purpose, granted, source, now)
    rows = [r for r in await repo.consents(brand_id, account_id)
            if r["channel"] == channel.value and r["purpose"] == purpose.value]
    return rows[0]


async def list_consents(conn: Connection, brand_id: str, account_id: str) -> list[Record]:
    return await MessagingRepository(conn).consents(require(brand_id, "brand_id"),
                                                    require(account_id, "account_id"))


# --- templates ------------------------------------------------------------------------


async def create_template(conn: Connection, template: Template) -> Template:
    require(template.brand_id, "template.brand_id")
    require(template.name, "template.name")
    validate_template_shape(template.channel, template.title, template.body,
                            template.provider_template_code, template.provider_params)
    used = template_variables(template.title, template.body, template.provider_params,
                              template.custom_variables)
    created = replace(template, template_id=new_id("tpl"), variables=used,
                      custom_variables=sorted(set(template.custom_variables)))
    await MessagingRepository(conn).add_template(created)
    return created


async def get_template(conn: Connection, brand_id: str, template_id: str) -> Template:
    found = await MessagingRepository(conn).template(require(brand_id, "brand_id"),
                                                     require(template_id, "template_id"))
    if found is None:
        raise NotFound(f"template {template_id} does not exist", reason="TEMPLATE_NOT_FOUND",
                       metadata={"template_id": template_id})
    return found


T = TypeVar("T")


async def brand_page(brand_id: str, requested_size: int, token: str,
                     fetch: Callable[[str, int, tuple[datetime, str] | None],
                                     Awaitable[list[T]]],
                     position_of: Callable[[T], tuple[datetime, str]]) -> tuple[list[T], str]:
    """One page of a brand's items, newest first; the token names the last one shown."""
    brand_id = require(brand_id, "brand_id")
    size = page_size(requested_size)
    position = decode_page_token(token, ("t", "id"))
    after = None
    if position:
        try:
            after = (datetime.fromisoformat(str(position["t"])), str(position["id"]))
        except ValueError:
            raise InvalidArgument("page_token is not one this service issued",
                                  field="page_token", reason="PAGE_TOKEN_INVALID") from None
    items = await fetch(brand_id, size + 1, after)
    page = items[:size]
    if len(items) <= size:
        return page, ""
    last_at, last_id = position_of(page[-1])
    return page, encode_page_token({"t": last_at.isoformat(), "id": last_id})


async def list_templates(conn: Connection, brand_id: str, requested_size: int, token: str,
                         channel: Channel | None) -> tuple[list[Template], str]:
    repo = MessagingRepository(conn)

    async def fetch(brand: str, limit: int,
                    after: tuple[datetime, str] | None) -> list[Template]:
        return await repo.templates_page(brand, limit, after, channel)

    return await brand_page(brand_id, requested_size, token, fetch,
                            lambda t: (t.created_at, t.template_id))


def unknown_variables(template: Template, supplied: dict[str, str], field: str) -> None:
    for name in supplied:
        if name not in template.custom_variables:
            raise InvalidArgument(f"template {template.template_id} has no custom variable "
                                  f"{name}", field=f"{field}.{name}",
                                  reason="UNKNOWN_TEMPLATE_VARIABLE")


def message_row(*, brand_id: str, account_id: str, template: Template,
                variables: dict[str, str], dedupe_key: str, not_before: datetime,
                now: datetime, campaign_id: str | None = None, journey_id: str | None = None,
                spacing_ms: int = 0) -> dict[str, Any]:
    return {"message_id": new_id("msg"), "brand_id": brand_id, "account_id": account_id,
            "channel": template.channel.value, "purpose": template.purpose.value,
            "template_id": template.template_id, "variables": json.dumps(variables),
            "campaign_id": campaign_id, "journey_id": journey_id, "dedupe_key": dedupe_key,
            "not_before": not_before, "spacing_ms": spacing_ms, "created_at": now}


async def send_message(conn: Connection, request_id: str, brand_id: str, account_id: str,
                       template_id: str, variables: dict[str, str],
                       schedule_at: datetime | None, now: datetime) -> OutboundMessage:
    brand_id, account_id = require(brand_id, "brand_id"), require(account_id, "account_id")
    template = await get_template(conn, brand_id, template_id)
    unknown_variables(template, variables, "variables")
    require_variables(template, [*BRAND_VARIABLES, *variables], "variables")
    repo = MessagingRepository(conn)
    key = f"request:{request_id}"
    await repo.add_messages([message_row(
        brand_id=brand_id, account_id=account_id, template=template, variables=variables,
        dedupe_key=key, not_before=max(schedule_at or now, now), now=now)])
    message = await repo.message_by_dedupe(brand_id, key)
    assert message is not None
    await message_status_events(conn, [message], MessageStatus.QUEUED)
    return message


async def get_message(conn: Connection, brand_id: str, message_id: str) -> OutboundMessage:
    found = await MessagingRepository(conn).message(require(brand_id, "brand_id"),
                                                    require(message_id, "message_id"))
    if found is None:
        raise NotFound(f"message {message_id} does not exist", reason="MESSAGE_NOT_FOUND",
                       metadata={"message_id": message_id})
    return found


async def record_receipt(conn: Connection, brand_id: str, channel: Channel,
                         provider_message_id: str, delivered: bool, error_code: str,
                         now: datetime) -> OutboundMessage:
    brand_id = require(brand_id, "brand_id")
    provider_message_id = require(provider_message_id, "provider_message_id")
    repo = MessagingRepository(conn)
    message = await repo.message_by_provider_id(brand_id, channel, provider_message_id)
    if message is None:
        raise NotFound(f"no {channel.value} message with provider id {provider_message_id}",
                       reason="MESSAGE_NOT_FOUND",
                       metadata={"provider_message_id": provider_message_id})
    if message.status is MessageStatus.SENT:
        status = MessageStatus.DELIVERED if delivered else MessageStatus.FAILED
        reason = "" if delivered else (error_code or "NOT_DELIVERED")
        await repo.set_status([message.message_id], status, now, reason=reason)
        if not delivered:
            await repo.release_caps(message)
        await message_status_events(conn, [message], status, {message.message_id: reason})
    updated = await repo.message(brand_id, message.message_id)
    assert updated is not None
    return updated


async def record_signed_receipts(conn: Connection, cipher: CredentialCipher, brand_id: str,
                                 channel: Channel, body: bytes, timestamp: str,
                                 signature: str, now: datetime) -> list[ReceiptResult]:
    """Check the callback against the channel's receipt secret, then record each receipt:
    nothing is recorded unless the signature and timestamp hold."""
    brand_id = require(brand_id, "brand_id")
    if channel is Channel.INBOX:
        raise InvalidArgument("the message box has no provider receipts", field="channel",
                              reason="CHANNEL_NOT_CONFIGURABLE")
    repo = MessagingRepository(conn)
    sealed = next((blob for config, blob in await repo.channels(brand_id)
                   if config.channel is channel), None)
    secret = cipher.open(brand_id, sealed).get(RECEIPT_SECRET, "") if sealed else ""
    if not secret:
        raise Unauthenticated(f"no receipt secret is configured for {channel.value}",
                              reason="RECEIPT_SECRET_NOT_CONFIGURED")
    verify_signature(secret, timestamp, body, signature, now)
    results = []
    for receipt in parse_receipts(body):
        # Locked: two callbacks racing for one message record it once.
        message = await repo.message_by_provider_id(brand_id, channel,
                                                    receipt.provider_message_id, lock=True)
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


async def sandbox_page(conn: Connection, brand_id: str, requested_size: int,
                       token: str) -> tuple[list[Record], str]:
    size = page_size(requested_size)
    position = decode_page_token(token, ("t", "id"))
    after = (datetime.fromisoformat(position["t"]), position["id"]) if position else None
    rows = await MessagingRepository(conn).sandbox_page(require(brand_id, "brand_id"),
                                                        size + 1, after)
    page = rows[:size]
    more = len(rows) > size
    return page, (encode_page_token({"t": page[-1]["created_at"].isoformat(),
                                     "id": page[-1]["delivery_id"]}) if more else "")


# --- campaigns ------------------------------------------------------------------------


async def create_campaign(conn: Connection, audience: AudienceSource, draft: Campaign,
                          now: datetime) -> Campaign:
    brand_id = require(draft.brand_id, "campaign.brand_id")
    window = validate_campaign_fields(draft.name, draft.snapshot_id, draft.throttle_per_second,
                                      draft.holdout_basis_points, draft.conversion_window_days)
    try:
        template = await get_template(conn, brand_id, draft.template_id)
    except NotFound as missing:
        missing.metadata["field"] = "campaign.template_id"
        raise
    if draft.channel is not template.channel:
        raise InvalidArgument(f"template {template.template_id} is for {template.channel.value},"
                              f" not {draft.channel.value}", field="campaign.channel",
                              reason="TEMPLATE_CHANNEL_MISMATCH")
    unknown_variables(template, draft.variables, "campaign.variables")
    require_variables(template, [*BRAND_VARIABLES, *MEMBER_VARIABLES, *draft.variables],
                      "campaign.variables")
    # Refuses a snapshot of another brand or one that does not exist (NOT_FOUND from membership).
    try:
        await audience.snapshot_member_count(brand_id, draft.snapshot_id)
    except DomainError as missing:  # membership's answer, carried across
        if missing.code is Code.NOT_FOUND:
            missing.metadata["field"] = "campaign.snapshot_id"
        raise
    campaign = replace(draft, campaign_id=new_id("cmp"), brand_id=brand_id,
                       status=CampaignStatus.DRAFT, conversion_window_days=window,
                       launched_at=None, created_at=now)
    await MessagingRepository(conn).add_campaign(campaign)
    return campaign


async def get_campaign(conn: Connection, brand_id: str, campaign_id: str, *,
                       lock: bool = False) -> Campaign:
    found = await MessagingRepository(conn).campaign(require(brand_id, "brand_id"),
                                                     require(campaign_id, "campaign_id"),
                                                     lock=lock)
    if found is None:
        raise NotFound(f"campaign {campaign_id} does not exist", reason="CAMPAIGN_NOT_FOUND",
                       metadata={"campaign_id": campaign_id})
    return found


async def list_campaigns(conn: Connection, brand_id: str, requested_size: int, token: str,
                         status: CampaignStatus | None) -> tuple[list[Campaign], str]:
    repo = MessagingRepository(conn)

    async def fetch(brand: str, limit: int,
                    after: tuple[datetime, str] | None) -> list[Campaign]:
        return await repo.campaigns_page(brand, limit, after, status)

    return await brand_page(brand_id, requested_size, token, fetch,
                            lambda c: (c.created_at, c.campaign_id))


async def list_journeys(conn: Connection, brand_id: str, requested_size: int, token: str,
                        active: bool | None) -> tuple[list[Journey], str]:
    repo = MessagingRepository(conn)

    async def fetch(brand: str, limit: int,
                    after: tuple[datetime, str] | None) -> list[Journey]:
        return await repo.journeys_page(brand, limit, after, active)

    return await brand_page(brand_id, requested_size, token, fetch,
                            lambda j: (j.created_at, j.journey_id))


async def launch_campaign(conn: Connection, brand_id: str, campaign_id: str,
                          schedule_at: datetime | None, now: datetime) -> Campaign:
    """Schedule a draft (now or later); a launched campaign is returned unchanged."""
    campaign = await get_campaign(conn, brand_id, campaign_id, lock=True)
    if campaign.status is not CampaignStatus.DRAFT:
        return campaign
    at = max(schedule_at or now, now)
    if at > now + timedelta(days=365):
        raise InvalidArgument("schedule_time must be within a year", field="schedule_time",
                              reason="OUT_OF_RANGE")
    await MessagingRepository(conn).schedule_campaign(campaign_id, at)
    return replace(campaign, status=CampaignStatus.SCHEDULED, schedule_at=at)


async def retry_campaign(conn: Connection, brand_id: str, campaign_id: str,
                         now: datetime) -> int:
    campaign = await get_campaign(conn, brand_id, campaign_id, lock=True)
    if campaign.status is CampaignStatus.DRAFT:
        raise FailedPrecondition("a draft campaign has nothing to retry",
                                 reason="CAMPAIGN_NOT_LAUNCHED",
                                 metadata={"campaign_id": campaign_id})
    return await MessagingRepository(conn).requeue_failed(campaign_id, now)


async def campaign_recipients(conn: Connection, brand_id: str, campaign_id: str,
                              requested_size: int, token: str
                              ) -> tuple[list[tuple[str, bool, OutboundMessage | None]], str]:
    await get_campaign(conn, brand_id, campaign_id)
    size = page_size(requested_size)
    position = decode_page_token(token, ("a",))
    rows = await MessagingRepository(conn).recipients_page(
        campaign_id, position["a"] if position else "", size + 1)
    page = rows[:size]
    result = [(r["recipient_account_id"], r["recipient_holdout"],
               message_from_row(r) if r["message_id"] is not None else None) for r in page]
    return result, (encode_page_token({"a": page[-1]["recipient_account_id"]})
                    if len(rows) > size else "")


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: str
    targeted: int
    holdout: int
    suppressed: dict[str, int]
    by_status: dict[MessageStatus, int]
    converted: int
    converted_revenue_cents: int
    holdout_converted: int
    holdout_revenue_cents: int

    @property
    def messaged(self) -> int:
        return sum(self.by_status.get(s, 0) for s in
                   (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ))

    def rate(self, converted: int, base: int) -> int:
        return round(converted * 10_000 / base) if base else 0


async def campaign_report(conn: Connection, brand_id: str, campaign_id: str) -> CampaignReport:
    campaign = await get_campaign(conn, brand_id, campaign_id)
    raw = await MessagingRepository(conn).campaign_report(campaign)
    by_status: dict[MessageStatus, int] = {}
    suppressed: dict[str, int] = {}
    for status, reason, count in raw["counts"]:
        by_status[MessageStatus(status)] = by_status.get(MessageStatus(status), 0) + count
        if status == MessageStatus.SUPPRESSED.value:
            suppressed[reason] = suppressed.get(reason, 0) + count
    treated = raw["conversions"].get(False, (0, 0))
    held = raw["conversions"].get(True, (0, 0))
    return CampaignReport(campaign_id, raw["targeted"], raw["holdout"], suppressed, by_status,
                          int(treated[0]), int(treated[1]), int(held[0]), int(held[1]))

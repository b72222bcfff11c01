"""Background work: campaign fan-out and the dispatcher that sends due messages.

The dispatcher claims due messages in a transaction, decides for each one (consent, cancelled,
quiet hours, caps) and records the decision; messages for the message box are delivered in that
same transaction. SMS and WeChat messages are leased, sent outside the transaction, and their
outcome recorded in a second one; a crash in between lets the lease expire and the message is
tried again (providers get our message id as their de-duplication key where they take one).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from libs.clock import Clock
from libs.db import Connection, Database
from libs.jobs import background_loop
from libs.logging import get_logger
from services.messaging.adapters.campaigns_repository import CampaignsRepository
from services.messaging.adapters.caps_repository import CapsRepository
from services.messaging.adapters.channels_repository import ChannelsRepository
from services.messaging.adapters.consents_repository import ConsentsRepository
from services.messaging.adapters.crypto import CredentialCipher
from services.messaging.adapters.inbox_repository import InboxRepository
from services.messaging.adapters.member_facts_repository import MemberFactsRepository
from services.messaging.adapters.messages_repository import MessagesRepository
from services.messaging.adapters.policy_repository import PolicyRepository
from services.messaging.adapters.providers import Delivery, ProviderRegistry, SendOutcome
from services.messaging.adapters.templates_repository import TemplatesRepository
from services.messaging.domain.campaigns import in_holdout, throttled_time
from services.messaging.domain.channels import Channel, ChannelConfig, new_id
from services.messaging.domain.governance import (
    Candidate,
    CapUsage,
    Policy,
    Reason,
    Verdict,
    cap_periods,
    decide,
)
from services.messaging.domain.messages import (
    MAX_ATTEMPTS,
    MessageStatus,
    OutboundMessage,
    retry_delay_seconds,
)
from services.messaging.domain.templates import Template, missing_variables, render
from services.messaging.ports import AudienceSource, BrandDirectory, RecipientDirectory
from services.messaging.usecases.messages import message_row
from services.messaging.usecases.status_events import message_status_events

log = get_logger(__name__)
LEASE_SECONDS = 120


@dataclass
class _Lease:
    message: OutboundMessage
    config: ChannelConfig
    template: Template
    values: dict[str, str]


class Dispatcher:
    def __init__(self, db: Database, *, brands: BrandDirectory, recipients: RecipientDirectory,
                 providers: ProviderRegistry, cipher: CredentialCipher, clock: Clock,
                 batch_size: int = 500, concurrency: int = 16,
                 idle_seconds: float = 0.5) -> None:
        self._db = db
        self._brands = brands
        self._recipients = recipients
        self._providers = providers
        self._cipher = cipher
        self._clock = clock
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._idle_seconds = idle_seconds

    async def run(self) -> None:
        await background_loop("dispatcher", self.run_once,
                              interval_seconds=self._idle_seconds, batch=1)()

    async def run_once(self) -> int:
        """Decide (and send) one batch of due messages; returns how many were handled."""
        now = self._clock()
        async with self._db.transaction() as conn:
            due = await MessagesRepository(conn).claim_due(now, self._batch_size)
            if not due:
                return 0
            by_brand: dict[str, list[OutboundMessage]] = defaultdict(list)
            for message in due:
                by_brand[message.brand_id].append(message)
            leases: list[_Lease] = []
            for brand_id, messages in sorted(by_brand.items()):
                leases += await self._decide_brand(conn, brand_id, messages, now)
        if leases:
            gate = asyncio.Semaphore(self._concurrency)

            async def send(lease: _Lease) -> tuple[_Lease, SendOutcome | None]:
                async with gate:
                    return lease, await self._send(lease)

            outcomes = await asyncio.gather(*(send(lease) for lease in leases))
            await self._record(outcomes)
        return len(due)

    async def _decide_brand(self, conn: Connection, brand_id: str,
                            messages: list[OutboundMessage], now: datetime) -> list[_Lease]:
        brand = await self._brands.brand(brand_id)
        zone = ZoneInfo(brand.time_zone)
        outbound, caps = MessagesRepository(conn), CapsRepository(conn)
        policy = await PolicyRepository(conn).policy(brand_id)
        configs = {config.channel: replace_credentials(config, self._cipher.open(brand_id, sealed))
                   for config, sealed in await ChannelsRepository(conn).channels(brand_id)}
        accounts = sorted({m.account_id for m in messages})
        consents = await ConsentsRepository(conn).consent_map(brand_id, accounts)
        cancelled = await MemberFactsRepository(conn).cancelled(brand_id, accounts)
        templates = await TemplatesRepository(conn).templates(m.template_id for m in messages)
        day, week = cap_periods(now, zone)
        cap_keys = sorted({(m.account_id, m.channel.value) for m in messages
                           if m.purpose.value == "marketing"
                           and m.status is MessageStatus.QUEUED})
        used = await caps.lock_caps(brand_id, cap_keys, day, week) if cap_keys else {}
        usage = {key: CapUsage(used.get((*key, "day"), 0), used.get((*key, "week"), 0))
                 for key in cap_keys}
        brand_values = {"brand_name": brand.display_name}
        suppressed: dict[str, str] = {}
        deferred: dict[datetime, list[str]] = defaultdict(list)
        inbox: list[OutboundMessage] = []
        leases: list[_Lease] = []
        counted: dict[str, tuple[date, date]] = {}
        for message in messages:
            template = templates[message.template_id]
            values = {**brand_values, **message.variables}
            if missing_variables(template, values):
                suppressed[message.message_id] = Reason.TEMPLATE_VARIABLE_MISSING.value
                continue
            config = configs.get(message.channel)
            candidate = Candidate(
                message.account_id, message.channel, message.purpose,
                cancelled=message.account_id in cancelled,
                consent=consents.get((message.account_id, message.channel.value,
                                      message.purpose.value)),
                channel_ready=message.channel is Channel.INBOX or config is not None)
            key = (message.account_id, message.channel.value)
            if message.status is MessageStatus.SENDING:
                # A lease that expired (crash mid-send): already counted, decide the rest again.
                decision = decide(candidate, replace_caps(policy), CapUsage(), now, zone)
            else:
                decision = decide(candidate, policy, usage.setdefault(key, CapUsage()), now,
                                  zone)
            if decision.verdict is Verdict.SUPPRESS:
                assert decision.reason is not None
                suppressed[message.message_id] = decision.reason.value
                if message.status is MessageStatus.SENDING:
                    await caps.release_caps(message)
            elif decision.verdict is Verdict.DEFER:
                assert decision.not_before is not None
                deferred[decision.not_before].append(message.message_id)
            else:
                if message.purpose.value == "marketing" and \
                        message.status is MessageStatus.QUEUED:
                    counted[message.message_id] = (day, week)
                if message.channel is Channel.INBOX:
                    inbox.append(message)
                else:
                    assert config is not None
                    leases.append(_Lease(message, config, template, values))
        if cap_keys:
            await caps.save_caps(brand_id, {(*k, period): getattr(u, period)
                                            for k, u in usage.items()
                                            for period in ("day", "week")}, day, week)
        by_id = {m.message_id: m for m in messages}
        if suppressed:
            for reason in sorted(set(suppressed.values())):
                ids = [i for i, r in suppressed.items() if r == reason]
                await outbound.set_status(ids, MessageStatus.SUPPRESSED, now, reason=reason)
            await message_status_events(conn, [by_id[i] for i in suppressed],
                                        MessageStatus.SUPPRESSED, suppressed)
        for until, ids in deferred.items():
            await outbound.defer(ids, until, now)
        if inbox:
            rows = []
            for message in inbox:
                content = render(templates[message.template_id],
                                 {**brand_values, **message.variables})
                rows.append((new_id("inb"), brand_id, message.account_id, content.title,
                             content.body, message.message_id, message.campaign_id, now))
            await InboxRepository(conn).add_inbox_messages(rows)
            ids = [m.message_id for m in inbox]
            await outbound.lease(ids, now, now, {i: counted[i] for i in ids if i in counted})
            await outbound.set_status(ids, MessageStatus.DELIVERED, now)
            await message_status_events(conn, inbox, MessageStatus.DELIVERED)
        if leases:
            ids = [lease.message.message_id for lease in leases]
            await outbound.lease(ids, now + timedelta(seconds=LEASE_SECONDS), now,
                                 {i: counted[i] for i in ids if i in counted})
        return leases

    async def _send(self, lease: _Lease) -> SendOutcome | None:
        """None: the member has no address on this channel."""
        message = lease.message
        try:
            address = await self._recipients.address(message.brand_id, message.account_id,
                                                     lease.config, message.message_id)
        except Exception as exc:
            return SendOutcome(False, error_code=f"DIRECTORY_{type(exc).__name__}",
                               retryable=True)
        if address is None:
            return None
        delivery = Delivery(message.message_id, message.brand_id, message.channel, address,
                            render(lease.template, lease.values),
                            lease.template.provider_template_code, lease.template.link_url)
        try:
            return await self._providers.for_kind(lease.config.provider).send(lease.config,
                                                                                delivery)
        except Exception as exc:  # a provider bug must not lose the message
            log.warning("provider_error", message_id=message.message_id, error=repr(exc))
            return SendOutcome(False, error_code=f"PROVIDER_{type(exc).__name__}",
                               retryable=True)

    async def _record(self, outcomes: list[tuple[_Lease, SendOutcome | None]]) -> None:
        now = self._clock()
        async with self._db.transaction() as conn:
            outbound, caps = MessagesRepository(conn), CapsRepository(conn)
            sent: list[OutboundMessage] = []
            failed: dict[str, str] = {}
            no_address: list[OutboundMessage] = []
            by_id = {lease.message.message_id: lease.message for lease, _ in outcomes}
            for lease, outcome in outcomes:
                message = lease.message
                if outcome is None:
                    no_address.append(message)
                elif outcome.accepted:
                    if await outbound.record_sent(message.message_id,
                                                  outcome.provider_message_id, now):
                        sent.append(message)
                elif outcome.retryable and message.attempts + 1 < MAX_ATTEMPTS:
                    await outbound.record_retry(
                        message.message_id, outcome.error_code,
                        now + timedelta(seconds=retry_delay_seconds(message.attempts + 1)), now)
                else:
                    failed[message.message_id] = outcome.error_code
            for message in no_address:
                await caps.release_caps(message)
            if no_address:
                ids = [m.message_id for m in no_address]
                await outbound.set_status(ids, MessageStatus.SUPPRESSED, now,
                                          reason=Reason.NO_ADDRESS.value)
                await message_status_events(conn, no_address, MessageStatus.SUPPRESSED,
                                            dict.fromkeys(ids, Reason.NO_ADDRESS.value))
            for message_id, code in failed.items():
                await caps.release_caps(by_id[message_id])
                await outbound.set_status([message_id], MessageStatus.FAILED, now, reason=code)
            await message_status_events(conn, [by_id[i] for i in failed], MessageStatus.FAILED,
                                        failed)
            await message_status_events(conn, sent, MessageStatus.SENT)


def replace_credentials(config: ChannelConfig, credentials: dict[str, str]) -> ChannelConfig:
    return ChannelConfig(config.brand_id, config.channel, config.provider, config.settings,
                         config.credential_names, config.updated_at, credentials)


def replace_caps(policy: Policy) -> Policy:
    """The policy without caps (for a message that was counted already)."""
    return replace(policy, daily_cap=0, weekly_cap=0)


class CampaignFanout:
    """Takes scheduled campaigns' snapshot members in, page by page, resumably."""

    def __init__(self, db: Database, *, audience: AudienceSource, clock: Clock,
                 idle_seconds: float = 0.5) -> None:
        self._db = db
        self._audience = audience
        self._clock = clock
        self._idle_seconds = idle_seconds

    async def run(self) -> None:
        await background_loop("campaign_fanout", self.run_once,
                              interval_seconds=self._idle_seconds, batch=1)()

    async def run_once(self) -> int:
        """Take one page of one due campaign; returns the members taken in (0: idle)."""
        now = self._clock()
        async with self._db.transaction() as conn:
            campaigns, outbound = CampaignsRepository(conn), MessagesRepository(conn)
            due = await campaigns.due_campaign(now)
            if due is None:
                return 0
            campaign, token, count = due
            templates = await TemplatesRepository(conn).templates([campaign.template_id])
            template = templates[campaign.template_id]
            page = await self._audience.snapshot_page(campaign.brand_id, campaign.snapshot_id,
                                                      token)
            start = campaign.schedule_at or now
            recipients: list[tuple[str, bool, str | None]] = []
            rows = []
            for index, member in enumerate(page.members):
                if in_holdout(campaign.campaign_id, member.account_id,
                              campaign.holdout_basis_points):
                    recipients.append((member.account_id, True, None))
                    continue
                at = throttled_time(start, count + index, campaign.throttle_per_second)
                row = message_row(
                    brand_id=campaign.brand_id, account_id=member.account_id,
                    template=template, variables={**member.variables(), **campaign.variables},
                    dedupe_key=f"campaign:{campaign.campaign_id}:{member.account_id}",
                    not_before=max(at, now), now=now, campaign_id=campaign.campaign_id,
                    spacing_ms=int((at - start).total_seconds() * 1000))
                rows.append(row)
                recipients.append((member.account_id, False, str(row["message_id"])))
            fresh = await campaigns.add_recipients(campaign.campaign_id, recipients)
            inserted = set(await outbound.add_messages(
                [row for row in rows if row["account_id"] in fresh]))
            if inserted:
                queued = await outbound.messages_by_ids(list(inserted))
                await message_status_events(conn, queued, MessageStatus.QUEUED)
            await campaigns.advance_fanout(campaign.campaign_id, page.next_page_token,
                                           count + len(page.members), not page.next_page_token,
                                           now)
            return max(1, len(page.members))


async def drain(loop_once: Callable[[], Awaitable[int]], *, limit: int = 10_000) -> int:
    """Run a loop's `run_once` until it reports nothing left (tests and tools)."""
    total = 0
    for _ in range(limit):
        handled = await loop_once()
        if not handled:
            break
        total += handled
    return total

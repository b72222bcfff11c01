"""Campaigns: drafting, launching, retrying, recipients and the report."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from libs.db import Connection
from libs.errors import (
    Code,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    found,
    require,
)
from libs.paging import decode_page_token, encode_page_token, page_size
from services.messaging.adapters.campaigns_repository import CampaignsRepository
from services.messaging.adapters.rows import message_from_row
from services.messaging.domain.campaigns import Campaign, CampaignStatus, validate_campaign_fields
from services.messaging.domain.channels import new_id
from services.messaging.domain.messages import MessageStatus, OutboundMessage
from services.messaging.domain.templates import BRAND_VARIABLES, MEMBER_VARIABLES, require_variables
from services.messaging.ports import AudienceSource
from services.messaging.usecases.paging import brand_page
from services.messaging.usecases.templates import get_template, unknown_variables


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
    await CampaignsRepository(conn).add_campaign(campaign)
    return campaign


async def get_campaign(conn: Connection, brand_id: str, campaign_id: str, *,
                       lock: bool = False) -> Campaign:
    campaign = await CampaignsRepository(conn).campaign(require(brand_id, "brand_id"),
                                                        require(campaign_id, "campaign_id"),
                                                        lock=lock)
    return found(campaign, f"campaign {campaign_id}", reason="CAMPAIGN_NOT_FOUND",
                 campaign_id=campaign_id)


async def list_campaigns(conn: Connection, brand_id: str, requested_size: int, token: str,
                         status: CampaignStatus | None) -> tuple[list[Campaign], str]:

    async def fetch(brand: str, limit: int,
                    after: tuple[datetime, str] | None) -> list[Campaign]:
        return await CampaignsRepository(conn).campaigns_page(brand, limit, after, status)

    return await brand_page(brand_id, requested_size, token, fetch,
                            lambda c: (c.created_at, c.campaign_id))


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
    await CampaignsRepository(conn).schedule_campaign(campaign_id, at)
    return replace(campaign, status=CampaignStatus.SCHEDULED, schedule_at=at)


async def retry_campaign(conn: Connection, brand_id: str, campaign_id: str,
                         now: datetime) -> int:
    campaign = await get_campaign(conn, brand_id, campaign_id, lock=True)
    if campaign.status is CampaignStatus.DRAFT:
        raise FailedPrecondition("a draft campaign has nothing to retry",
                                 reason="CAMPAIGN_NOT_LAUNCHED",
                                 metadata={"campaign_id": campaign_id})
    return await CampaignsRepository(conn).requeue_failed(campaign_id, now)


async def campaign_recipients(conn: Connection, brand_id: str, campaign_id: str,
                              requested_size: int, token: str
                              ) -> tuple[list[tuple[str, bool, OutboundMessage | None]], str]:
    await get_campaign(conn, brand_id, campaign_id)
    size = page_size(requested_size)
    position = decode_page_token(token, ("a",))
    rows = await CampaignsRepository(conn).recipients_page(
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
    raw = await CampaignsRepository(conn).campaign_report(campaign)
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

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
from libs.idempotency import CommitOnce, Reply
from libs.paging import decode_page_token, decode_time_and_id, keyset_page, page_size, time_and_id
from services.messaging.adapters.campaigns_repository import CampaignsRepository
from services.messaging.domain.campaigns import (
    Campaign,
    CampaignStatus,
    Recipient,
    validate_campaign_fields,
)
from services.messaging.domain.channels import new_id
from services.messaging.domain.messages import MessageStatus
from services.messaging.domain.templates import BRAND_VARIABLES, MEMBER_VARIABLES, require_variables
from services.messaging.ports import AudienceSource
from services.messaging.usecases.context import MessagingContext
from services.messaging.usecases.templates import get_template, unknown_variables


async def create_campaign(app: MessagingContext, commit_once: CommitOnce[Campaign, Reply],
                          draft: Campaign) -> Reply:
    return await commit_once(lambda conn: _create(conn, app.audience, draft, app.clock()))


async def _create(conn: Connection, audience: AudienceSource, draft: Campaign,
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
                       schedule_at=None, launched_at=None, created_at=now)
    await CampaignsRepository(conn).add_campaign(campaign)
    return campaign


async def get_campaign(conn: Connection, brand_id: str, campaign_id: str, *,
                       lock: bool = False) -> Campaign:
    campaign = await CampaignsRepository(conn).campaign(require(brand_id, "brand_id"),
                                                        require(campaign_id, "campaign_id"),
                                                        lock=lock)
    return found(campaign, f"campaign {campaign_id}", reason="CAMPAIGN_NOT_FOUND",
                 campaign_id=campaign_id)


async def read_campaign(app: MessagingContext, brand_id: str, campaign_id: str) -> Campaign:
    async with app.db.connection() as conn:
        return await get_campaign(conn, brand_id, campaign_id)


async def list_campaigns(app: MessagingContext, brand_id: str, requested_size: int,
                         token: str, status: CampaignStatus | None
                         ) -> tuple[list[Campaign], str]:
    """One page of the brand's campaigns (in one status, if given), newest first."""
    filters = {"brand_id": require(brand_id, "brand_id"),
               "status": status.value if status else ""}
    size = page_size(requested_size)
    after = decode_time_and_id(token, filters=filters)
    async with app.db.connection() as conn:
        rows = await CampaignsRepository(conn).campaigns_page(brand_id, size + 1, after, status)
    return keyset_page(rows, size, lambda c: time_and_id(c.created_at, c.campaign_id),
                       filters=filters)


async def launch_campaign(app: MessagingContext, commit_once: CommitOnce[Campaign, Reply],
                          brand_id: str, campaign_id: str,
                          schedule_at: datetime | None) -> Reply:
    """Schedule a draft (now or later); a launched campaign is answered unchanged."""
    async def launch(conn: Connection) -> Campaign:
        now = app.clock()
        campaign = await get_campaign(conn, brand_id, campaign_id, lock=True)
        if campaign.status is not CampaignStatus.DRAFT:
            return campaign
        at = max(schedule_at or now, now)
        if at > now + timedelta(days=365):
            raise InvalidArgument("schedule_time must be within a year", field="schedule_time",
                                  reason="OUT_OF_RANGE")
        await CampaignsRepository(conn).schedule_campaign(campaign_id, at)
        return replace(campaign, status=CampaignStatus.SCHEDULED, schedule_at=at)

    return await commit_once(launch)


async def retry_campaign(app: MessagingContext, commit_once: CommitOnce[int, Reply],
                         brand_id: str, campaign_id: str) -> Reply:
    """Queue the campaign's failed messages again; answers how many."""
    async def retry(conn: Connection) -> int:
        campaign = await get_campaign(conn, brand_id, campaign_id, lock=True)
        if campaign.status is CampaignStatus.DRAFT:
            raise FailedPrecondition("a draft campaign has nothing to retry",
                                     reason="CAMPAIGN_NOT_LAUNCHED",
                                     metadata={"campaign_id": campaign_id})
        return await CampaignsRepository(conn).requeue_failed(campaign_id, app.clock())

    return await commit_once(retry)


async def campaign_recipients(app: MessagingContext, brand_id: str, campaign_id: str,
                              requested_size: int, token: str) -> tuple[list[Recipient], str]:
    """One page of the members the campaign took in, by account id."""
    filters = {"brand_id": require(brand_id, "brand_id"),
               "campaign_id": require(campaign_id, "campaign_id")}
    size = page_size(requested_size)
    position = decode_page_token(token, ("a",), filters=filters)
    async with app.db.connection() as conn:
        await get_campaign(conn, brand_id, campaign_id)
        rows = await CampaignsRepository(conn).recipients_page(
            campaign_id, str(position["a"]) if position else "", size + 1)
    return keyset_page(rows, size, lambda r: {"a": r.account_id}, filters=filters)


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


async def campaign_report(app: MessagingContext, brand_id: str, campaign_id: str
                          ) -> CampaignReport:
    async with app.db.connection() as conn:
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

"""Campaigns: a snapshot, a template and a channel; holdout and throttle rules."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from libs.errors import InvalidArgument, require
from services.messaging.domain.channels import Channel
from services.messaging.domain.messages import OutboundMessage

MAX_HOLDOUT_BASIS_POINTS = 5000
DEFAULT_CONVERSION_WINDOW_DAYS = 7


class CampaignStatus(enum.Enum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    FANNED_OUT = "fanned_out"


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    brand_id: str
    name: str
    snapshot_id: str
    template_id: str
    channel: Channel
    status: CampaignStatus
    variables: dict[str, str]
    throttle_per_second: int
    holdout_basis_points: int
    conversion_window_days: int
    schedule_at: datetime | None
    launched_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Recipient:
    """A member a campaign took in: held out (no message) or sent `message`."""

    account_id: str
    holdout: bool
    message: OutboundMessage | None


def validate_campaign_fields(name: str, snapshot_id: str, throttle_per_second: int,
                             holdout_basis_points: int, conversion_window_days: int) -> int:
    """Check the campaign's own fields; return the conversion window to use."""
    require(name, "campaign.name")
    require(snapshot_id, "campaign.snapshot_id")
    if not 0 <= throttle_per_second <= 100_000:
        raise InvalidArgument("throttle_per_second must be between 0 (unthrottled) and 100000",
                              field="campaign.throttle_per_second", reason="OUT_OF_RANGE")
    if not 0 <= holdout_basis_points <= MAX_HOLDOUT_BASIS_POINTS:
        raise InvalidArgument("holdout_basis_points must be between 0 and 5000 (50%)",
                              field="campaign.holdout_basis_points", reason="OUT_OF_RANGE")
    if not 0 <= conversion_window_days <= 90:
        raise InvalidArgument("conversion_window_days must be between 1 and 90 (0: default 7)",
                              field="campaign.conversion_window_days", reason="OUT_OF_RANGE")
    return conversion_window_days or DEFAULT_CONVERSION_WINDOW_DAYS


def in_holdout(campaign_id: str, account_id: str, basis_points: int) -> bool:
    """A stable, uniform choice: the same member is always in (or out of) a campaign's holdout."""
    if basis_points <= 0:
        return False
    digest = hashlib.sha256(f"{campaign_id}:{account_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < basis_points


def throttled_time(start: datetime, sequence: int, per_second: int) -> datetime:
    """When the `sequence`-th message (from 0) of a throttled campaign may go out."""
    if per_second <= 0:
        return start
    return start + timedelta(seconds=sequence / per_second)

"""What messaging needs from other services, as interfaces the use cases depend on.

The gRPC implementations live in adapters/upstreams.py; tests run the real services in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.messaging.domain.channels import Channel, ChannelConfig


@dataclass(frozen=True)
class BrandInfo:
    brand_id: str
    display_name: str
    time_zone: str


@dataclass(frozen=True)
class AudienceMember:
    account_id: str
    level: int
    points_balance: int
    order_count: int

    def variables(self) -> dict[str, str]:
        return {"member_level": str(self.level), "points_balance": str(self.points_balance),
                "order_count": str(self.order_count)}


@dataclass(frozen=True)
class AudiencePage:
    members: list[AudienceMember]
    next_page_token: str


@dataclass(frozen=True)
class ExpiringAccount:
    account_id: str
    points: int
    earliest_expire_at: datetime


@dataclass(frozen=True)
class ExpiringPage:
    accounts: list[ExpiringAccount]
    next_page_token: str


class BrandDirectory(Protocol):
    async def brand(self, brand_id: str) -> BrandInfo: ...


class AudienceSource(Protocol):
    async def snapshot_member_count(self, brand_id: str, snapshot_id: str) -> int: ...

    async def create_trigger_segment(self, *, request_id: str, brand_id: str, name: str,
                                     trigger: str, days: int) -> str:
        """A segment for a scheduled trigger ("birthday" / "repurchase_due"); its id."""
        ...

    async def member_in_segment(self, brand_id: str, segment_id: str,
                                account_id: str) -> bool: ...

    async def segment_exists(self, brand_id: str, segment_id: str) -> bool:
        """Whether the brand has this segment (another brand's is not the brand's)."""
        ...

    async def snapshot_segment(self, *, request_id: str, brand_id: str,
                               segment_id: str) -> str:
        """Materialise a segment now; the snapshot's id (the same for the same request)."""
        ...

    async def snapshot_page(self, brand_id: str, snapshot_id: str,
                            page_token: str) -> AudiencePage: ...


class RecipientDirectory(Protocol):
    async def address(self, brand_id: str, account_id: str, config: ChannelConfig,
                      message_id: str) -> str | None:
        """The phone (E.164) or WeChat openid to send to, or None when there is none."""
        ...


class BenefitsPort(Protocol):
    async def issue_coupon(self, *, request_id: str, brand_id: str, account_id: str,
                           coupon_template_id: str) -> str: ...

    async def coupon_template_exists(self, brand_id: str, template_id: str) -> bool:
        """Whether the brand has this coupon template (another brand's is not the brand's)."""
        ...

    async def grant_points(self, *, request_id: str, brand_id: str, account_id: str,
                           points: int) -> None: ...

    async def points_expiring_page(self, brand_id: str, within_days: int,
                                   page_token: str) -> ExpiringPage:
        """One page of the brand's accounts with points expiring within the days."""
        ...


__all__ = ["AudienceMember", "AudiencePage", "AudienceSource", "BenefitsPort", "BrandDirectory",
           "BrandInfo", "Channel", "ExpiringAccount", "ExpiringPage", "RecipientDirectory"]

"""What the benefits use cases need from the outside, as ports: the membership service (who
is a member of a brand, at which level) and the engagement service (which activities a brand
has, for earning rules limited to one). The adapters in `adapters/` implement them over
gRPC."""

from __future__ import annotations

from typing import Protocol

from services.benefits.domain.eligibility import Membership


class MembershipPort(Protocol):
    async def membership(self, brand_id: str, account_id: str) -> Membership:
        """The shopper's standing in the brand now (NONE when never a member)."""


class ActivitiesPort(Protocol):
    async def activity_exists(self, brand_id: str, activity_id: str) -> bool:
        """Whether the brand has this activity (another brand's is not the brand's)."""

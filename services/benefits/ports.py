"""What the benefits use cases need from the outside, as ports: the membership service (who
is a member of a brand, at which level). The adapter in `adapters/membership.py` implements it
over gRPC."""

from __future__ import annotations

from typing import Protocol

from services.benefits.domain.eligibility import Membership


class MembershipPort(Protocol):
    async def membership(self, brand_id: str, account_id: str) -> Membership:
        """The shopper's standing in the brand now (NONE when never a member)."""

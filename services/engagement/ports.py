"""What the engagement use cases need from the outside, as ports: the benefits service (points
and coupons) and the membership service (members, brand time zones).

Adapters in `adapters/` implement them over gRPC; tests may put stand-ins behind them.
"""

from __future__ import annotations

from typing import Protocol

from libs.errors import DomainError, Unavailable
from libs.sagas import TRANSIENT_CODES as TRANSIENT_CODES
from libs.sagas import Failure, classify
from services.engagement.domain.audience import MemberInfo


class BenefitsUnavailable(Unavailable):
    """The benefits service did not answer: the call's outcome is unknown (retry it)."""


def is_transient(error: DomainError) -> bool:
    """The one classification every saga uses (libs.sagas)."""
    return isinstance(error, BenefitsUnavailable) or classify(error) is Failure.TRANSIENT


class BenefitsPort(Protocol):
    """Every call takes the idempotency key the benefits service dedupes on."""

    async def grant_points(self, *, request_id: str, brand_id: str, account_id: str,
                           amount: int, reason_code: str) -> str:
        """Grant points; returns the ledger entry id."""

    async def spend_points(self, *, request_id: str, brand_id: str, account_id: str,
                           amount: int, reason_code: str) -> str:
        """Spend points (refused with INSUFFICIENT_POINTS); returns the ledger entry id."""

    async def reverse_points(self, *, request_id: str, brand_id: str, entry_id: str,
                             reason_code: str) -> str:
        """Reverse an earlier entry; returns the reversing entry id."""

    async def issue_coupon(self, *, request_id: str, brand_id: str, account_id: str,
                           coupon_template_id: str, reason_code: str) -> str:
        """Issue one coupon; returns the coupon id."""

    async def coupon_template_exists(self, brand_id: str, template_id: str) -> bool:
        """Whether the brand has this coupon template (another brand's is not the brand's)."""

    async def coupon_refusals(self, *, brand_id: str, account_id: str,
                              coupon_template_ids: list[str]) -> dict[str, str]:
        """Why a coupon of each template could not be issued to the member now ("" when it
        could): checked before a draw, so a member is never told WON for a coupon they cannot
        get. Takes nothing."""


class MembershipPort(Protocol):
    async def time_zone(self, brand_id: str) -> str:
        """The brand's IANA time zone ("daily" means a day there)."""

    async def member(self, brand_id: str, account_id: str) -> MemberInfo | None:
        """The shopper's live membership of the brand, or None."""

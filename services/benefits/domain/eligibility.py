"""Who may act on or read a member's benefits: one rule for every benefits RPC. Pure.

A shopper's standing in a brand is what the membership service says now: ACTIVE while they
are an LV0 follower or a card member, NONE otherwise (never a member, or a member who left:
the card was cancelled or the LV0 follow ended).

- ACTIVE: everything, within the tier gate of each offer (the level is membership's, live).
- NONE: nothing on the member's behalf, and nothing of the member is shown to anyone, the
  brand's apps included. For a member who left this means their benefits are frozen: points
  are kept (not forfeited) but cannot be earned, spent or read, no coupon is claimed or
  issued, no item redeemed; rejoining makes the same account's points usable and visible
  again. Coupons issued before leaving stay valid at checkout until they expire, and a
  redemption already made is still fulfilled by the brand.

Brand bookkeeping that is not done on the member's behalf is not gated: reversing an earlier
entry (a saga's compensation or a refund must land even after the member left), the ledger
check, brand-wide lists and the fulfilment of a redemption already made.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from libs.errors import NotFound


class Standing(enum.Enum):
    NONE = "none"
    ACTIVE = "active"


@dataclass(frozen=True)
class Membership:
    """A shopper's standing in a brand, and the level held (0 for LV0 and for NONE)."""

    standing: Standing
    level: int = 0


NOT_A_MEMBER = Membership(Standing.NONE)


class Action(enum.Enum):
    EARN = "earn"                    # points granted to the member
    SPEND = "spend"                  # points taken on the member's behalf
    CLAIM_COUPON = "claim_coupon"    # the shopper claims an offer
    ISSUE_COUPON = "issue_coupon"    # a coupon given to the member (prize, campaign, ISV)
    REDEEM = "redeem"                # a points-mall redemption
    READ_POINTS = "read_points"      # balance, ledger, expiring points
    READ_OFFERS = "read_offers"      # claimable coupons, the card-opening gift pack state
    READ_HOLDINGS = "read_holdings"  # coupons held, redemptions made


def require_allowed(action: Action, membership: Membership, *, brand_id: str,
                    account_id: str) -> None:
    """Refuse `action` unless the shopper is a member of the brand now:
    NOT_FOUND / MEMBER_NOT_FOUND (the same answer the gateway gave ISVs before)."""
    if membership.standing is Standing.ACTIVE:
        return
    raise NotFound(f"account {account_id} is not a member of brand {brand_id}",
                   reason="MEMBER_NOT_FOUND",
                   metadata={"brand_id": brand_id, "account_id": account_id,
                             "action": action.value})

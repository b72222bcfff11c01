"""The one place benefits decides who may act on or read a member's benefits
(`services.benefits.domain.eligibility` states the rule; membership answers the standing)."""

from __future__ import annotations

from libs.errors import require
from services.benefits.domain.eligibility import Action, Membership, require_allowed
from services.benefits.ports import MembershipPort


async def require_member(membership: MembershipPort, action: Action, brand_id: str,
                         account_id: str) -> Membership:
    """The shopper's membership when `action` is allowed for it; refused otherwise."""
    brand_id = require(brand_id, "brand_id")
    account_id = require(account_id, "account_id")
    found = await membership.membership(brand_id, account_id)
    require_allowed(action, found, brand_id=brand_id, account_id=account_id)
    return found


# Every BenefitsService RPC acts for one member (gated by the eligibility rule, with the
# action it is) or is the brand's own bookkeeping (not gated, with why). A test holds this
# table to the contract, so a new RPC cannot skip the rule unnoticed.
MEMBER_ACTIONS: dict[str, Action] = {
    "GetPointsBalance": Action.READ_POINTS,
    "ListPointsEntries": Action.READ_POINTS,
    "ListExpiringPoints": Action.READ_POINTS,
    "GrantPoints": Action.EARN,
    "SpendPoints": Action.SPEND,
    "IssueCoupon": Action.ISSUE_COUPON,
    "ClaimCoupon": Action.CLAIM_COUPON,
    "ListClaimableCoupons": Action.READ_OFFERS,
    "GetCardOpeningGiftPack": Action.READ_OFFERS,   # when it names a member
    "ListMemberCoupons": Action.READ_HOLDINGS,
    "RedeemMallItem": Action.REDEEM,
    "ListRedemptions": Action.READ_HOLDINGS,        # when it names a member
}
NOT_MEMBER_SCOPED: dict[str, str] = {
    "ReversePointsEntry": "a compensation or refund of an earlier entry lands even after the "
                          "member left",
    "ListPointsExpiringSoon": "brand-wide list for journeys",
    "CheckPointsLedger": "brand bookkeeping",
    "ListMallItems": "the brand's catalogue",
    "GetRedemption": "the brand's fulfilment of a redemption already made",
    "CheckCouponsIssuable": "takes nothing; a member the issue would refuse is answered "
                            "not issuable with the refusal's reason",
}

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

"""Every cap, window and limit of benefits' rules, tested exactly on its boundary.

Part of the boundary sweep (see tests/services/membership/test_membership_boundaries.py):
an earning rule's daily cap, lifetime cap and budget, a coupon template's claim window and
fixed validity, a gift pack's active window, spending exactly the balance, and a refund of
exactly (or more than) the paid amount.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.benefits.domain.benefits import CouponKind, CouponTemplate, GiftPack
from services.benefits.domain.points import Lot, allocate, capped_grant, refund_share

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)
NO_CAPS = {"daily_cap": 0, "daily_used": 0, "lifetime_cap": 0, "lifetime_used": 0,
           "budget": 0, "budget_used": 0}


@pytest.mark.parametrize("cap, used", [("daily_cap", "daily_used"),
                                       ("lifetime_cap", "lifetime_used"),
                                       ("budget", "budget_used")])
def test_each_cap_grants_up_to_exactly_the_cap(cap: str, used: str) -> None:
    """A grant that lands exactly on a cap is whole; at the cap nothing more is granted; one
    point below it, one point is; 0 means no cap."""
    assert capped_grant(10, **{**NO_CAPS, cap: 30, used: 20}) == 10
    assert capped_grant(10, **{**NO_CAPS, cap: 30, used: 29}) == 1
    assert capped_grant(10, **{**NO_CAPS, cap: 30, used: 30}) == 0
    assert capped_grant(10, **{**NO_CAPS, cap: 0, used: 10**9}) == 10


def template(**changes: object) -> CouponTemplate:
    base = CouponTemplate(
        brand_id="brd", template_id="tpl", title="5 off", kind=CouponKind.AMOUNT_OFF,
        amount_off_cents=500, percent_off=0, threshold_cents=0, claim_start=NOW,
        claim_end=NOW + timedelta(days=1), valid_start=None, valid_end=None, valid_days=7,
        total_stock=10, per_member_limit=1)
    return CouponTemplate(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_claim_window_is_start_inclusive_end_exclusive() -> None:
    """Claimable exactly at claim_start, not a microsecond before; not at claim_end, but a
    microsecond before; a template with no end stays claimable."""
    coupon = template()
    assert not coupon.claimable_at(NOW - TICK)
    assert coupon.claimable_at(NOW)
    assert coupon.claimable_at(NOW + timedelta(days=1) - TICK)
    assert not coupon.claimable_at(NOW + timedelta(days=1))
    assert template(claim_end=None).claimable_at(NOW + timedelta(days=3650))


def test_fixed_validity_ends_claims_at_valid_end() -> None:
    """A coupon valid until a fixed instant can be claimed up to, not at, that instant."""
    end = NOW + timedelta(hours=5)
    coupon = template(valid_days=0, valid_start=NOW, valid_end=end, claim_end=None)
    assert coupon.claimable_at(end - TICK)
    assert not coupon.claimable_at(end)


def test_gift_pack_is_active_from_start_until_end() -> None:
    """A gift pack is active exactly at start_time and no longer at end_time."""
    pack = GiftPack("brd", "gp", "Welcome", 100, [], True, NOW, NOW + timedelta(days=1))
    assert not pack.active_at(NOW - TICK)
    assert pack.active_at(NOW)
    assert pack.active_at(NOW + timedelta(days=1) - TICK)
    assert not pack.active_at(NOW + timedelta(days=1))


def test_spending_exactly_the_balance_takes_every_lot() -> None:
    """Spending exactly what the lots hold empties them; one point more takes only what is
    there (the caller refuses the shortfall)."""
    lots = [Lot("l1", 30, NOW + timedelta(days=1), NOW), Lot("l2", 20, None, NOW)]
    assert allocate(lots, 50) == [("l1", 30), ("l2", 20)]
    assert allocate(lots, 51) == [("l1", 30), ("l2", 20)]
    assert allocate(lots, 30) == [("l1", 30)]


def test_refund_of_exactly_the_paid_amount_takes_back_every_point() -> None:
    """A refund of the whole paid amount takes back all the order's points, a larger one no
    more than that, one cent less a little less."""
    assert refund_share(100, 10_000, 10_000, 0) == 100
    assert refund_share(100, 10_000, 12_000, 0) == 100
    assert refund_share(100, 10_000, 9_999, 0) == 99
    assert refund_share(100, 10_000, 10_000, 60) == 40

"""Every threshold, window and limit of membership's rules, tested exactly on its boundary.

A rule compared with `>` where `>=` is meant (or the reverse) passes every test that stays
away from the edge; these sit on it and one step either side. The sweep covers the tier
thresholds (`Program.level_for`), retention (`Program.retention_over`) and dormancy
(`is_dormant`), in the domain and through the gRPC facts that move a member's tier.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.membership.domain.program import Program, Tier, is_dormant
from tests.services.membership.conftest import TIERS, Club

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)
PROGRAM = Program(
    program_id="p", brand_id="b", terms_version="1", terms_url="", consent_purposes=(),
    tiers=(Tier(1, "Silver", 0, (), 100), Tier(2, "Gold", 50_000, (), 150),
           Tier(3, "Diamond", 200_000, (), 200), Tier(4, "Black", 1_000_000, (), 300)),
    growth_window_days=365, retention_days=30, dormant_after_days=90, updated_at=NOW)


@pytest.mark.parametrize("tier", PROGRAM.tiers[1:], ids=lambda t: f"LV{t.level}")
def test_level_is_reached_exactly_on_each_threshold(tier: Tier) -> None:
    """Growth equal to a tier's threshold reaches the tier; one cent less stays below it."""
    assert PROGRAM.level_for(tier.growth_threshold_cents) == tier.level
    assert PROGRAM.level_for(tier.growth_threshold_cents - 1) == tier.level - 1
    assert PROGRAM.level_for(tier.growth_threshold_cents + 1) == tier.level


def test_level_floor_is_lv1() -> None:
    """No growth (or a first tier above zero) still leaves a card member at LV1."""
    assert PROGRAM.level_for(0) == 1
    raised = Program(**{**PROGRAM.__dict__,
                        "tiers": (Tier(1, "S", 100, (), 100), Tier(2, "G", 200, (), 100))})
    assert raised.level_for(99) == 1
    assert raised.level_for(199) == 1
    assert raised.level_for(200) == 2


def test_retention_is_over_exactly_at_retention_days() -> None:
    """A tier held exactly retention_days may be lowered; one microsecond less may not."""
    since = NOW - timedelta(days=PROGRAM.retention_days)
    assert PROGRAM.retention_over(since, NOW)
    assert not PROGRAM.retention_over(since + TICK, NOW)
    assert PROGRAM.retention_over(None, NOW)


def test_dormant_only_after_more_than_dormant_after_days() -> None:
    """Last seen exactly dormant_after_days ago is still valid; one microsecond more is dormant."""
    days = PROGRAM.dormant_after_days
    edge = NOW - timedelta(days=days)
    assert not is_dormant(False, edge, edge, days, NOW)
    assert is_dormant(False, edge - TICK, edge - TICK, days, NOW)
    # Never active: member_since counts instead.
    assert not is_dormant(False, None, edge, days, NOW)
    assert is_dormant(False, None, edge - TICK, days, NOW)
    assert is_dormant(True, NOW, NOW, days, NOW)


async def test_paid_growth_exactly_on_a_threshold_raises_the_tier(club: Club) -> None:
    """Through RecordOrderPaid: paying exactly a tier's threshold reaches it, a cent less does
    not, for every tier of the program."""
    brand_id, shop_id = await club.brand()
    for tier in TIERS[1:]:
        threshold = tier.growth_threshold_cents
        below = await club.account(f"below-{tier.level}")
        exact = await club.account(f"exact-{tier.level}")
        await club.join(brand_id, below)
        await club.join(brand_id, exact)
        short = await club.pay(shop_id, below, f"o-below-{tier.level}", threshold - 1)
        reached = await club.pay(shop_id, exact, f"o-exact-{tier.level}", threshold)
        assert (short.level, reached.level) == (tier.level - 1, tier.level)

"""Pure points rules: expiry per policy, spend order over lots, order earning, caps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from libs.errors import InvalidArgument
from services.benefits.domain.points import (
    ExpiryMode,
    Lot,
    PointsPolicy,
    allocate,
    capped_grant,
    order_points,
    refund_share,
    valid_policy,
)

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_rolling_expiry_ends_at_local_midnight_n_days_later() -> None:
    """Rolling 30 days: points expire at the end of the local day 30 days later."""
    policy = PointsPolicy("b", ExpiryMode.ROLLING_DAYS, 30, time_zone="Asia/Shanghai")
    expires = policy.expiry_for(T0)
    assert expires is not None
    assert expires.astimezone(UTC) == datetime(2026, 4, 9, 16, 0, tzinfo=UTC)


def test_calendar_year_expiry_and_never() -> None:
    """Calendar-year points expire at the local new year; NEVER gives no expiry."""
    year = PointsPolicy("b", ExpiryMode.CALENDAR_YEAR_END, time_zone="Asia/Shanghai")
    assert year.expiry_for(T0) == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert PointsPolicy("b").expiry_for(T0) is None


def test_allocate_takes_soonest_expiring_first_and_never_last() -> None:
    """Spending takes the lot expiring first, then later ones; never-expiring lots last."""
    lots = [Lot("never", 50, None, T0),
            Lot("late", 10, datetime(2027, 1, 1, tzinfo=UTC), T0),
            Lot("soon", 5, datetime(2026, 6, 1, tzinfo=UTC), T0)]
    assert allocate(lots, 20) == [("soon", 5), ("late", 10), ("never", 5)]


def test_order_points_multiplier_and_refund_share() -> None:
    """Points = units x rate x multiplier rounded down; refunds take back proportionally."""
    assert order_points(12_345, 2, 150) == 370  # 123.45 units x 2 x 1.5
    assert refund_share(370, 12_345, 6_000, 0) == 179
    assert refund_share(370, 12_345, 12_345, 179) == 191  # the rest, never more


def test_capped_grant_cuts_to_caps_and_budget() -> None:
    """A grant is cut to what the daily cap, lifetime cap and budget leave."""
    assert capped_grant(10, daily_cap=25, daily_used=20, lifetime_cap=0, lifetime_used=0,
                        budget=0, budget_used=0) == 5
    assert capped_grant(10, daily_cap=0, daily_used=0, lifetime_cap=100, lifetime_used=100,
                        budget=0, budget_used=0) == 0
    assert capped_grant(10, daily_cap=0, daily_used=0, lifetime_cap=0, lifetime_used=0,
                        budget=1000, budget_used=997) == 3


def test_policy_validation_names_the_field() -> None:
    """Rolling expiry without days is refused naming policy.expiry_days."""
    with pytest.raises(InvalidArgument) as caught:
        valid_policy(PointsPolicy("b", ExpiryMode.ROLLING_DAYS, 0))
    assert caught.value.field == "policy.expiry_days"
    with pytest.raises(InvalidArgument) as zone:
        valid_policy(PointsPolicy("b", time_zone="Mars/Base"))
    assert zone.value.field == "policy.time_zone"


def test_a_start_left_to_the_time_of_saving_is_the_clock_s_now() -> None:
    """A template or pack saved without a start begins when saved; a given start is kept."""
    from datetime import UTC, datetime

    from services.benefits.domain.benefits import STARTS_WHEN_SAVED, started

    now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    given = datetime(2027, 1, 1, tzinfo=UTC)
    assert started(STARTS_WHEN_SAVED, now) == now
    assert started(given, now) == given

"""Pure rules of `domain/activity_kinds.py`: rewards, streak cycles, prizes."""

from __future__ import annotations

import pytest

from services.engagement.domain.activity_kinds import (
    LotteryConfig,
    LotteryMode,
    Prize,
    PrizeKind,
    Reward,
    SignInConfig,
    StreakReward,
)


def test_an_empty_reward_gives_nothing() -> None:
    """A reward is empty only with neither points nor a coupon."""
    assert Reward().empty
    assert not Reward(points=1).empty
    assert not Reward(coupon_template_id="tpl_1").empty


def test_streak_rewards_repeat_by_cycle() -> None:
    """With a 7-day cycle day 8 earns day 1's reward; a day without one earns nothing."""
    config = SignInConfig(rewards=(StreakReward(1, Reward(points=1)),
                                   StreakReward(7, Reward(points=70))), cycle_days=7)
    assert config.reward_for(1) == Reward(points=1)
    assert config.reward_for(7) == Reward(points=70)
    assert config.reward_for(8) == Reward(points=1)
    assert config.reward_for(14) == Reward(points=70)
    assert config.reward_for(3) is None


def test_without_a_cycle_each_streak_day_is_itself() -> None:
    """No cycle: day 8 earns only a reward set for day 8."""
    config = SignInConfig(rewards=(StreakReward(1, Reward(points=1)),))
    assert config.reward_for(1) == Reward(points=1)
    assert config.reward_for(8) is None


@pytest.mark.parametrize(("prize", "reward"), [
    (Prize("p", "Points", PrizeKind.POINTS, 1, stock=1, points=5), Reward(points=5)),
    (Prize("c", "Coupon", PrizeKind.COUPON, 1, stock=1, coupon_template_id="tpl"),
     Reward(coupon_template_id="tpl")),
    (Prize("g", "Mug", PrizeKind.PHYSICAL, 1, stock=1, points=5), Reward()),
    (Prize("t", "Thanks", PrizeKind.THANKS, 1), Reward()),
])
def test_a_prize_owes_the_reward_of_its_kind(prize: Prize, reward: Reward) -> None:
    """Points prizes owe points, coupon prizes a coupon, physical and thanks nothing through
    benefits (whatever else their fields hold)."""
    assert prize.reward == reward


def test_a_lottery_finds_its_prizes_and_its_koi_prize() -> None:
    """Prizes are found by id; the koi prize is the one that is not thanks-for-playing."""
    thanks = Prize("t", "Thanks", PrizeKind.THANKS, 9)
    koi = Prize("k", "Koi", PrizeKind.POINTS, 1, stock=3, points=10)
    config = LotteryConfig(LotteryMode.KOI, (thanks, koi))
    assert config.prize("k") is koi
    assert config.prize("missing") is None
    assert config.koi_prize is koi

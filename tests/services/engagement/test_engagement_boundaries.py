"""Every limit, cap and window of engagement's rules, tested exactly on its boundary.

Part of the boundary sweep (tests/services/membership/test_membership_boundaries.py has the
tiers): for each comparison against a limit the last allowed value passes and the first
refused value is refused, so `>` for `>=` (or the reverse) cannot pass unnoticed. Covered:
lottery daily and total draw limits and the weighted pick's edges, votes per day, quiz
attempts and the reveal after the last one, the invite reward cap, the make-up sign-in window,
the sign-in reward cycle, and the activity's start and end instants.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from libs.errors import FailedPrecondition, InvalidArgument
from services.engagement.domain.activities import Activity, ActivityState
from services.engagement.domain.activity_kinds import (
    ActivityKind,
    LotteryConfig,
    LotteryMode,
    QuizConfig,
    Reward,
    SignInConfig,
    StreakReward,
    VoteConfig,
    VoteOption,
)
from services.engagement.domain.participation import (
    QuestionGrade,
    check_draw_limits,
    check_make_up,
    check_quiz_attempt,
    check_vote,
    decide_invite,
    pick,
    revealed,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def reason_of(call: object) -> str:
    try:
        call()  # type: ignore[operator]
    except (FailedPrecondition, InvalidArgument) as error:
        return error.reason
    return ""


@pytest.mark.parametrize("limit", [1, 3])
def test_daily_draw_limit_allows_exactly_the_limit(limit: int) -> None:
    """With daily_limit N, a member with N-1 draws today may draw; with N may not."""
    config = LotteryConfig(LotteryMode.INSTANT, (), daily_limit=limit)
    assert reason_of(lambda: check_draw_limits(config, limit - 1, limit - 1)) == ""
    assert reason_of(lambda: check_draw_limits(config, limit, limit)) == "DAILY_LIMIT_REACHED"


@pytest.mark.parametrize("limit", [1, 5])
def test_total_draw_limit_allows_exactly_the_limit(limit: int) -> None:
    """With total_limit N, N-1 draws so far may draw once more; N may not; 0 is no limit."""
    config = LotteryConfig(LotteryMode.INSTANT, (), total_limit=limit)
    assert reason_of(lambda: check_draw_limits(config, 0, limit - 1)) == ""
    assert reason_of(lambda: check_draw_limits(config, 0, limit)) == "TOTAL_LIMIT_REACHED"
    unlimited = LotteryConfig(LotteryMode.INSTANT, ())
    assert reason_of(lambda: check_draw_limits(unlimited, 10**6, 10**6)) == ""


def test_weighted_pick_edges() -> None:
    """The pick's intervals are half-open: the last value of each weight picks it, the next
    value picks the following prize, and the total weight is out of range."""
    weights = [("a", 3), ("b", 1), ("c", 6)]
    assert [pick(weights, v) for v in (0, 2, 3, 4, 9)] == ["a", "a", "b", "c", "c"]
    with pytest.raises(ValueError):
        pick(weights, 10)
    with pytest.raises(ValueError):
        pick(weights, -1)


@pytest.mark.parametrize("per_day", [1, 2])
def test_votes_per_day_allows_exactly_that_many(per_day: int) -> None:
    """votes_per_day N: with N-1 votes today one more is allowed; with N it is refused."""
    config = VoteConfig((VoteOption("o1", "One"),), votes_per_day=per_day)
    assert reason_of(lambda: check_vote(config, "o1", per_day - 1)) == ""
    assert reason_of(lambda: check_vote(config, "o1", per_day)) == "DAILY_VOTES_USED"


@pytest.mark.parametrize("attempts", [1, 3])
def test_quiz_attempts_and_reveal_on_the_last_one(attempts: int) -> None:
    """max_attempts N: attempt N is allowed and reveals the answers; attempt N+1 is refused;
    attempt N-1 reveals nothing."""
    config = QuizConfig((), max_attempts=attempts)
    assert reason_of(lambda: check_quiz_attempt(config, attempts - 1)) == ""
    assert reason_of(lambda: check_quiz_attempt(config, attempts)) == "QUIZ_ATTEMPTS_USED"
    grades = [QuestionGrade("q1", False, ["a"])]
    assert revealed(config, attempts, grades)[0].correct_option_ids == ["a"]
    if attempts > 1:
        assert revealed(config, attempts - 1, grades)[0].correct_option_ids == []


@pytest.mark.parametrize("cap", [1, 3])
def test_invite_cap_rewards_exactly_cap_invites(cap: int) -> None:
    """max_rewarded_per_inviter N: the N-th invite is rewarded, the N+1-th is not (the
    invitee still is); 0 means no cap."""
    assert decide_invite("a", "b", False, cap - 1, cap).reward_inviter
    over = decide_invite("a", "b", False, cap, cap)
    assert (over.reward_inviter, over.reward_invitee) == (False, True)
    assert decide_invite("a", "b", False, 10**6, 0).reward_inviter


@pytest.mark.parametrize("window", [1, 7])
def test_make_up_window_includes_its_last_day(window: int) -> None:
    """make_up_window_days N: N days back may be made up, N+1 may not; today may not."""
    config = SignInConfig(make_up_allowed=True, make_up_window_days=window)
    today = date(2026, 3, 1)
    assert reason_of(lambda: check_make_up(config, today - timedelta(days=window), today)) == ""
    assert reason_of(lambda: check_make_up(config, today - timedelta(days=1), today)) == ""
    assert reason_of(lambda: check_make_up(
        config, today - timedelta(days=window + 1), today)) == "MAKE_UP_TOO_OLD"
    assert reason_of(lambda: check_make_up(config, today, today)) == "MAKE_UP_NOT_PAST"


def test_sign_in_reward_cycle_wraps_after_its_last_day() -> None:
    """With a 7-day cycle, streak day 7 earns day 7's reward and day 8 starts again at day 1."""
    config = SignInConfig(rewards=(StreakReward(1, Reward(points=1)),
                                   StreakReward(7, Reward(points=7))), cycle_days=7)
    assert [config.reward_for(d) for d in (1, 6, 7, 8, 14, 15)] == [
        Reward(points=1), None, Reward(points=7), Reward(points=1), Reward(points=7),
        Reward(points=1)]


def test_activity_is_live_from_its_start_instant_until_its_end_instant() -> None:
    """Live exactly at starts_at (scheduled a microsecond before) and closed exactly at
    ends_at (live a microsecond before)."""
    starts, ends = NOW, NOW + timedelta(days=1)
    activity = Activity("act", "brd", ActivityKind.VOTE, ActivityState.SCHEDULED, "t",
                        starts, ends, NOW - timedelta(days=1))
    assert activity.state_at(starts - TICK) is ActivityState.SCHEDULED
    assert activity.state_at(starts) is ActivityState.LIVE
    assert activity.state_at(ends - TICK) is ActivityState.LIVE
    assert activity.state_at(ends) is ActivityState.CLOSED

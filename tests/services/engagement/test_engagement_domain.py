"""Pure engagement rules, without I/O."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from libs.errors import InvalidArgument
from services.engagement.domain.activities import (
    QuizConfig,
    QuizOption,
    QuizQuestion,
    Reward,
    SignInConfig,
    StreakReward,
)
from services.engagement.domain.participation import (
    commitment,
    decide_invite,
    grade_quiz,
    koi_winners,
    local_date,
    pick,
    restreak,
    revealed,
    verify_koi,
)


def test_pick_follows_cumulative_weights() -> None:
    """Every random value in [0, total) maps to the prize whose weight band holds it."""
    weights = [("a", 1), ("b", 3), ("c", 6)]
    assert Counter(pick(weights, r) for r in range(10)) == {"a": 1, "b": 3, "c": 6}
    with pytest.raises(ValueError):
        pick(weights, 10)


def test_koi_winners_depend_only_on_seed_and_entrant_set() -> None:
    """The same seed and entrants give the same winners in any order; another seed differs."""
    entrants = [f"acc_{i}" for i in range(50)]
    seed = bytes(range(32))
    first = koi_winners(seed, entrants, 5)
    assert first == koi_winners(seed, list(reversed(entrants)) + entrants[:3], 5)
    assert len(set(first)) == 5 and set(first) <= set(entrants)
    assert koi_winners(bytes(32), entrants, 5) != first
    assert commitment(seed) == hashlib.sha256(seed).hexdigest()
    assert verify_koi(seed.hex(), commitment(seed), entrants, 5, first).valid
    assert verify_koi(seed.hex(), commitment(seed), entrants, 5, first[::-1]).reason == (
        "WINNERS_MISMATCH")
    with pytest.raises(InvalidArgument):
        verify_koi("zz", commitment(seed), entrants, 5, first)


def test_local_day_is_the_brands() -> None:
    """16:00 UTC is already the next day in Shanghai."""
    moment = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    assert local_date(moment, "Asia/Shanghai") == date(2026, 11, 26)
    assert local_date(moment, "") == date(2026, 11, 26)  # the default zone
    assert local_date(moment, "Europe/London") == date(2026, 11, 25)


def test_streak_rewards_cycle_and_make_up_restreaks_following_days() -> None:
    """Reward days repeat by cycle; a make-up re-numbers the consecutive days after it."""
    config = SignInConfig(rewards=(StreakReward(1, Reward(points=1)),
                                   StreakReward(7, Reward(points=70))), cycle_days=7)
    assert config.reward_for(7) == Reward(points=70)
    assert config.reward_for(8) == Reward(points=1)
    assert config.reward_for(3) is None
    days = [date(2026, 11, 3), date(2026, 11, 4), date(2026, 11, 6)]
    assert restreak(days, date(2026, 11, 2), 5) == [(date(2026, 11, 3), 6),
                                                     (date(2026, 11, 4), 7)]


def test_invites_refuse_self_and_repeat_and_cap_the_inviter() -> None:
    """Self-invites and repeat invitees earn nothing; past the cap only the invitee earns."""
    assert decide_invite("a", "a", False, 0, 3).reason == "SELF_INVITE"
    assert decide_invite("a", "b", True, 0, 3).reason == "ALREADY_INVITED"
    capped = decide_invite("a", "b", False, 3, 3)
    assert (capped.reward_inviter, capped.reward_invitee) == (False, True)
    assert decide_invite("a", "b", False, 99, 0).reward_inviter  # 0 = no cap


@pytest.mark.parametrize(("max_attempts", "attempt", "shown"), [
    (1, 1, True), (2, 1, False), (2, 2, True), (3, 1, False), (3, 2, False), (3, 3, True),
])
def test_quiz_answers_revealed_only_when_no_attempt_remains(max_attempts: int, attempt: int,
                                                             shown: bool) -> None:
    """Correct options are shown after the last allowed attempt and never before it; whether
    each answer was right is always shown."""
    question = QuizQuestion("q1", "1+1?", (QuizOption("a", "2"), QuizOption("b", "3")),
                            frozenset({"a"}))
    config = QuizConfig((question,), points_per_correct=1, max_attempts=max_attempts)
    grades = revealed(config, attempt, grade_quiz(config, [("q1", ["b"])]))
    assert [g.correct for g in grades] == [False]
    assert [g.correct_option_ids for g in grades] == ([["a"]] if shown else [[]])

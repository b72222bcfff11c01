"""Pure rules of `domain/participation.py`: local days, streaks, the weighted pick, koi
draws, quizzes and invites, without I/O."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from libs.errors import InvalidArgument
from services.engagement.domain.activity_kinds import (
    LotteryConfig,
    LotteryMode,
    Prize,
    PrizeKind,
    QuizConfig,
    QuizOption,
    QuizQuestion,
)
from services.engagement.domain.participation import (
    commitment,
    decide_invite,
    grade_quiz,
    koi_winners,
    local_date,
    new_invite_code,
    new_random,
    next_streak,
    parse_local_date,
    parse_weights,
    pick,
    quiz_points,
    restreak,
    revealed,
    stable_id,
    verify_koi,
    weights_of,
    weights_text,
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


def test_a_make_up_restreaks_the_consecutive_days_after_it() -> None:
    """A make-up re-numbers the consecutive signed days after it, up to the first gap."""
    days = [date(2026, 11, 3), date(2026, 11, 4), date(2026, 11, 6)]
    assert restreak(days, date(2026, 11, 2), 5) == [(date(2026, 11, 3), 6),
                                                     (date(2026, 11, 4), 7)]
    assert restreak(days, date(2026, 11, 1), 5) == []
    assert next_streak(None) == 1 and next_streak(6) == 7


def test_a_local_date_is_read_as_yyyy_mm_dd_or_refused_naming_the_field() -> None:
    """parse_local_date reads " 2026-11-02 " and refuses anything else, naming the field."""
    assert parse_local_date(" 2026-11-02 ", "local_date") == date(2026, 11, 2)
    with pytest.raises(InvalidArgument) as refused:
        parse_local_date("02/11/2026", "local_date")
    assert refused.value.field == "local_date"


def test_recorded_weights_read_back_and_audit_the_pick() -> None:
    """A draw's weights text reads back as the weights (prize ids may hold ':'), and every
    new random value is inside the total weight."""
    config = LotteryConfig(LotteryMode.INSTANT, (
        Prize("p:1", "A", PrizeKind.POINTS, 2, stock=1, points=1),
        Prize("t", "T", PrizeKind.THANKS, 5)))
    weights = weights_of(config)
    assert parse_weights(weights_text(weights)) == weights == [("p:1", 2), ("t", 5)]
    assert all(0 <= new_random(7) < 7 for _ in range(200))


def test_quiz_grading_needs_exactly_the_correct_options() -> None:
    """Right only with exactly the correct options; unanswered is wrong; unknown or repeated
    questions and unknown options are refused naming the answer."""
    config = QuizConfig((QuizQuestion("q1", "?", (QuizOption("a", "A"), QuizOption("b", "B")),
                                      frozenset({"a", "b"})),
                         QuizQuestion("q2", "?", (QuizOption("a", "A"), QuizOption("b", "B")),
                                      frozenset({"a"}))), points_per_correct=5)
    grades = grade_quiz(config, [("q1", ["b", "a"])])
    assert [(g.question_id, g.correct) for g in grades] == [("q1", True), ("q2", False)]
    assert [g.correct for g in grade_quiz(config, [("q1", ["a"]), ("q2", ["a"])])] == [
        False, True]
    refusals: list[tuple[list[tuple[str, list[str]]], str]] = [
        ([("q9", [])], "answers[0].question_id"),
        ([("q1", []), ("q1", [])], "answers[1].question_id"),
        ([("q2", ["z"])], "answers[0].option_ids[0]")]
    for answers, field in refusals:
        with pytest.raises(InvalidArgument) as refused:
            grade_quiz(config, answers)
        assert refused.value.field == field


def test_quiz_points_only_for_improving_the_best_score() -> None:
    """Points pay only the correct answers beyond the member's best before."""
    config = QuizConfig((), points_per_correct=10)
    assert quiz_points(config, 3, 0) == 30
    assert quiz_points(config, 3, 2) == 10
    assert quiz_points(config, 2, 3) == 0


def test_ids_derived_from_what_they_protect_are_stable_and_distinct() -> None:
    """stable_id is the same for the same parts and differs when the parts split differently;
    invite codes use an alphabet without look-alike characters."""
    assert stable_id("a", "b") == stable_id("a", "b")
    assert stable_id("a", "b") != stable_id("ab") != stable_id("a", "c")
    code = new_invite_code()
    assert len(code) == 10 and not set(code) & set("01IO")


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

"""Pure rules of `domain/spec_parsing.py`: a spec is valid or refused naming its field."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from libs.errors import InvalidArgument
from services.engagement.domain.activity_kinds import (
    ActivityKind,
    LotteryConfig,
    LotteryMode,
    PrizeKind,
    SignInConfig,
)
from services.engagement.domain.spec_parsing import parse_spec

BASE: dict[str, Any] = {"title": " Spring ", "start_time": "2026-05-01T00:00:00Z",
                        "end_time": "2026-05-08T00:00:00Z", "audience": {"levels": [2, 1]}}
LOTTERY = {"lottery": {"prizes": [
    {"prize_id": "p1", "name": "Points", "kind": "PRIZE_KIND_POINTS", "weight": 1,
     "stock": 5, "points": 10},
    {"prize_id": "t", "name": "Thanks", "kind": "PRIZE_KIND_THANKS", "weight": 9}]}}


def spec(**config: Any) -> dict[str, Any]:
    return {**copy.deepcopy(BASE), **copy.deepcopy(config)}


def test_a_valid_spec_is_parsed_trimmed_and_sorted() -> None:
    """Text is trimmed, levels sorted, times read as UTC, the lottery mode defaults to
    instant."""
    parsed = parse_spec(spec(**LOTTERY))
    assert parsed.title == "Spring"
    assert parsed.audience_levels == (1, 2)
    assert parsed.starts_at == datetime(2026, 5, 1, tzinfo=UTC)
    assert parsed.kind is ActivityKind.LOTTERY
    assert isinstance(parsed.config, LotteryConfig)
    assert parsed.config.mode is LotteryMode.INSTANT
    assert [p.kind for p in parsed.config.prizes] == [PrizeKind.POINTS, PrizeKind.THANKS]


def test_a_sign_in_spec_keeps_its_streak_rewards() -> None:
    """Streak rewards, the cycle and the make-up rules are read as given."""
    parsed = parse_spec(spec(sign_in={
        "rewards": [{"day": 1, "reward": {"points": 5}}], "cycle_days": 7,
        "make_up_allowed": True, "make_up_window_days": 3, "make_up_cost_points": 2}))
    assert parsed.config == SignInConfig(parsed.config.rewards, 7, True, 2, 3)  # type: ignore[union-attr]
    assert parsed.config.reward_for(8).points == 5  # type: ignore[union-attr]


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`data` with the dotted/indexed `path` set to `value` (None deletes it)."""
    keys = path.replace("]", "").replace("[", ".").split(".")
    node: Any = data
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last: Any = int(keys[-1]) if keys[-1].isdigit() else keys[-1]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return data


# Each refusal: the spec's change, the field named, the reason.
REFUSALS: list[tuple[dict[str, Any], str, Any, str, str]] = [
    (LOTTERY, "title", "", "spec.title", "FIELD_REQUIRED"),
    (LOTTERY, "title", "x" * 101, "spec.title", "FIELD_TOO_LONG"),
    (LOTTERY, "start_time", None, "spec.start_time", "FIELD_REQUIRED"),
    (LOTTERY, "end_time", "2026-04-01T00:00:00Z", "spec.end_time", "END_BEFORE_START"),
    (LOTTERY, "audience.levels", [1, 1], "spec.audience.levels[1]", "DUPLICATE_ID"),
    (LOTTERY, "audience.levels", [100], "spec.audience.levels[0]", "VALUE_OUT_OF_RANGE"),
    (LOTTERY, "lottery.prizes[0].weight", 0, "spec.lottery.prizes[0].weight",
     "VALUE_OUT_OF_RANGE"),
    (LOTTERY, "lottery.prizes[0].kind", "PRIZE_KIND_GOLD", "spec.lottery.prizes[0].kind",
     "INVALID_ENUM"),
    (LOTTERY, "lottery.prizes[0].points", 0, "spec.lottery.prizes[0].points",
     "VALUE_OUT_OF_RANGE"),
    (LOTTERY, "lottery.prizes[1].stock", 1, "spec.lottery.prizes[1].stock",
     "VALUE_OUT_OF_RANGE"),
    (LOTTERY, "lottery.prizes[1].prize_id", "p1", "spec.lottery.prizes[1]", "DUPLICATE_ID"),
    (LOTTERY, "lottery.prizes", [{"prize_id": "t", "name": "T", "kind": "PRIZE_KIND_THANKS",
                                  "weight": 1}], "spec.lottery.prizes", "NO_PRIZES"),
    (LOTTERY, "lottery.mode", "LOTTERY_MODE_KOI", "spec.lottery.prizes", "KOI_ONE_PRIZE"),
    ({"lottery": {**LOTTERY["lottery"], "total_limit": 2}}, "lottery.daily_limit", 3,
     "spec.lottery.daily_limit", "VALUE_OUT_OF_RANGE"),
    ({"vote": {"options": [{"option_id": "a", "label": "A"}]}}, "title", "T",
     "spec.vote.options", "TOO_FEW_OPTIONS"),
    ({"quiz": {"questions": [{"question_id": "q", "text": "?", "options": [
        {"option_id": "a", "text": "A"}, {"option_id": "b", "text": "B"}],
        "correct_option_ids": ["c"]}]}}, "title", "T",
     "spec.quiz.questions[0].correct_option_ids[0]", "UNKNOWN_OPTION"),
    ({"invite": {"max_rewarded_per_inviter": 3}}, "title", "T", "spec.invite.inviter_reward",
     "NO_REWARD"),
    ({"sign_in": {"rewards": [{"day": 8, "reward": {"points": 1}}], "cycle_days": 7}},
     "title", "T", "spec.sign_in.rewards[0].day", "DAY_BEYOND_CYCLE"),
    ({"sign_in": {"make_up_allowed": True}}, "title", "T", "spec.sign_in.make_up_window_days",
     "VALUE_OUT_OF_RANGE"),
    ({}, "title", "T", "spec.config", "CONFIG_REQUIRED"),
    ({**LOTTERY, "vote": {"options": []}}, "title", "T", "spec.config", "CONFIG_REQUIRED"),
]


@pytest.mark.parametrize(("config", "path", "value", "field", "reason"), REFUSALS)
def test_every_refusal_names_the_field(config: dict[str, Any], path: str, value: Any,
                                       field: str, reason: str) -> None:
    """A spec breaking one rule is refused INVALID_ARGUMENT naming that field and why."""
    with pytest.raises(InvalidArgument) as refused:
        parse_spec(_set(spec(**config), path, value))
    assert (refused.value.field, refused.value.reason) == (field, reason)

"""Pure rules of `domain/spec_form.py`: the stored form reads back as the same spec, answers
are left out where asked, and every coupon template a spec names is found."""

from __future__ import annotations

from typing import Any

import pytest

from services.engagement.domain.spec_form import coupon_references, spec_dict
from services.engagement.domain.spec_parsing import parse_spec

BASE: dict[str, Any] = {"title": "T", "description": "D", "start_time": "2026-05-01T00:00:00Z",
                        "end_time": "2026-05-08T00:00:00Z", "audience": {"levels": [1]}}
QUIZ = {"quiz": {"points_per_correct": 2, "max_attempts": 3, "questions": [
    {"question_id": "q", "text": "?", "options": [{"option_id": "a", "text": "A"},
                                                  {"option_id": "b", "text": "B"}],
     "correct_option_ids": ["b"]}]}}
CONFIGS: list[dict[str, Any]] = [
    {"sign_in": {"rewards": [{"day": 1, "reward": {"coupon_template_id": "tpl_day1"}}],
                 "cycle_days": 7, "make_up_allowed": True, "make_up_window_days": 2,
                 "make_up_cost_points": 5}},
    {"lottery": {"mode": "LOTTERY_MODE_INSTANT", "cost_points": 1, "daily_limit": 2,
                 "total_limit": 4, "prizes": [
                     {"prize_id": "c", "name": "Coupon", "kind": "PRIZE_KIND_COUPON",
                      "weight": 1, "stock": 2, "coupon_template_id": "tpl_prize"},
                     {"prize_id": "t", "name": "Thanks", "kind": "PRIZE_KIND_THANKS",
                      "weight": 3}]}},
    {"vote": {"options": [{"option_id": "a", "label": "A"}, {"option_id": "b", "label": "B"}],
              "votes_per_day": 2, "gift": {"coupon_template_id": "tpl_gift"}}},
    QUIZ,
    {"invite": {"inviter_reward": {"points": 5}, "invitee_reward": {
        "coupon_template_id": "tpl_welcome"}, "max_rewarded_per_inviter": 3}},
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: next(iter(c)))
def test_the_stored_form_reads_back_as_the_same_spec(config: dict[str, Any]) -> None:
    """parse_spec(spec_dict(spec)) is the spec, for every activity kind."""
    parsed = parse_spec({**BASE, **config})
    assert parse_spec(spec_dict(parsed)) == parsed


def test_answers_are_left_out_where_asked() -> None:
    """The member-facing form of a quiz carries no correct options."""
    parsed = parse_spec({**BASE, **QUIZ})
    assert spec_dict(parsed)["quiz"]["questions"][0]["correct_option_ids"] == ["b"]
    assert spec_dict(parsed, with_answers=False)["quiz"]["questions"][0][
        "correct_option_ids"] == []


@pytest.mark.parametrize(("config", "references"), [
    (CONFIGS[0], [("spec.sign_in.rewards[0].reward.coupon_template_id", "tpl_day1")]),
    (CONFIGS[1], [("spec.lottery.prizes[0].coupon_template_id", "tpl_prize")]),
    (CONFIGS[2], [("spec.vote.gift.coupon_template_id", "tpl_gift")]),
    (CONFIGS[3], []),
    (CONFIGS[4], [("spec.invite.invitee_reward.coupon_template_id", "tpl_welcome")]),
], ids=lambda c: next(iter(c)) if isinstance(c, dict) else "")
def test_every_coupon_template_named_is_found_with_its_field(
        config: dict[str, Any], references: list[tuple[str, str]]) -> None:
    """Each kind's coupon references are found, each with the field that names it."""
    assert coupon_references(parse_spec({**BASE, **config})) == references

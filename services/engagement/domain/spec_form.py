"""An activity's spec in its plain-dict form: stored as jsonb, and the contract's JSON field
names (spec_parsing.py reads it back); and the coupon templates a spec names."""

from __future__ import annotations

from typing import Any

from services.engagement.domain.activities import ActivitySpec
from services.engagement.domain.activity_kinds import (
    Config,
    LotteryConfig,
    Prize,
    QuizConfig,
    QuizQuestion,
    Reward,
    SignInConfig,
    VoteConfig,
)


def _reward_dict(reward: Reward) -> dict[str, Any]:
    return {"points": reward.points, "coupon_template_id": reward.coupon_template_id}


def config_dict(config: Config, *, with_answers: bool = True) -> dict[str, Any]:
    if isinstance(config, SignInConfig):
        return {"rewards": [{"day": r.day, "reward": _reward_dict(r.reward)}
                            for r in config.rewards],
                "cycle_days": config.cycle_days, "make_up_allowed": config.make_up_allowed,
                "make_up_cost_points": config.make_up_cost_points,
                "make_up_window_days": config.make_up_window_days}
    if isinstance(config, LotteryConfig):
        return {"mode": f"LOTTERY_MODE_{config.mode.value.upper()}",
                "prizes": [prize_dict(p) for p in config.prizes],
                "cost_points": config.cost_points, "daily_limit": config.daily_limit,
                "total_limit": config.total_limit}
    if isinstance(config, VoteConfig):
        return {"options": [{"option_id": o.option_id, "label": o.label}
                            for o in config.options],
                "votes_per_day": config.votes_per_day, "gift": _reward_dict(config.gift)}
    if isinstance(config, QuizConfig):
        return {"questions": [question_dict(q, with_answers=with_answers)
                              for q in config.questions],
                "points_per_correct": config.points_per_correct,
                "max_attempts": config.max_attempts}
    return {"inviter_reward": _reward_dict(config.inviter_reward),
            "invitee_reward": _reward_dict(config.invitee_reward),
            "max_rewarded_per_inviter": config.max_rewarded_per_inviter}


def prize_dict(prize: Prize) -> dict[str, Any]:
    return {"prize_id": prize.prize_id, "name": prize.name,
            "kind": f"PRIZE_KIND_{prize.kind.value.upper()}", "weight": prize.weight,
            "stock": prize.stock, "points": prize.points,
            "coupon_template_id": prize.coupon_template_id}


def question_dict(question: QuizQuestion, *, with_answers: bool) -> dict[str, Any]:
    return {"question_id": question.question_id, "text": question.text,
            "options": [{"option_id": o.option_id, "text": o.text} for o in question.options],
            "correct_option_ids": sorted(question.correct_option_ids) if with_answers else []}


def spec_dict(spec: ActivitySpec, *, with_answers: bool = True) -> dict[str, Any]:
    """The spec in its plain-dict form (stored as jsonb; the contract's JSON field names)."""
    return {"title": spec.title, "description": spec.description,
            "start_time": spec.starts_at.isoformat(), "end_time": spec.ends_at.isoformat(),
            "audience": {"levels": list(spec.audience_levels)},
            spec.kind.value: config_dict(spec.config, with_answers=with_answers)}


def coupon_references(spec: ActivitySpec, path: str = "spec") -> list[tuple[str, str]]:
    """Every coupon template the spec names, with the field that names it
    (`spec.lottery.prizes[1].coupon_template_id`, `spec.sign_in.rewards[0].reward...`): found
    by walking the whole stored form, so a reward or prize added to any activity kind later is
    covered without being listed here."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, at: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "coupon_template_id" and isinstance(item, str) and item:
                    found.append((f"{at}.{key}", item))
                else:
                    walk(item, f"{at}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{at}[{index}]")

    walk(spec_dict(spec), path)
    return found

"""Parsing an activity's spec from the contract's plain-dict form (its JSON with proto field
names), with every refusal naming the field (`spec.lottery.prizes[1].stock`)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from libs.errors import InvalidArgument
from services.engagement.domain.activities import ActivitySpec
from services.engagement.domain.activity_kinds import (
    Config,
    InviteConfig,
    LotteryConfig,
    LotteryMode,
    Prize,
    PrizeKind,
    QuizConfig,
    QuizOption,
    QuizQuestion,
    Reward,
    SignInConfig,
    StreakReward,
    VoteConfig,
    VoteOption,
)

MAX_TITLE = 100
MAX_DESCRIPTION = 2000
MAX_ID = 64
MAX_ITEMS = 100


def _text(data: Mapping[str, Any], key: str, path: str, *, required: bool = False,
          maximum: int = MAX_TITLE) -> str:
    value = str(data.get(key, "") or "").strip()
    if required and not value:
        raise InvalidArgument(f"{path} is required", field=path, reason="FIELD_REQUIRED")
    if len(value) > maximum:
        raise InvalidArgument(f"{path} must be at most {maximum} characters", field=path,
                              reason="FIELD_TOO_LONG")
    return value


def _int(data: Mapping[str, Any], key: str, path: str, *, minimum: int = 0,
         maximum: int = 10_000_000, default: int = 0) -> int:
    raw = data.get(key, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{path} must be an integer", field=path) from None
    if not minimum <= value <= maximum:
        raise InvalidArgument(f"{path} must be between {minimum} and {maximum}", field=path,
                              reason="VALUE_OUT_OF_RANGE")
    return value


def _items(data: Mapping[str, Any], key: str, path: str) -> list[Mapping[str, Any]]:
    items = list(data.get(key, []) or [])
    if len(items) > MAX_ITEMS:
        raise InvalidArgument(f"{path} may hold at most {MAX_ITEMS} items", field=path,
                              reason="TOO_MANY_ITEMS")
    return items


def _time(data: Mapping[str, Any], key: str, path: str) -> datetime:
    raw = data.get(key)
    if isinstance(raw, datetime):
        return raw
    if not raw:
        raise InvalidArgument(f"{path} is required", field=path, reason="FIELD_REQUIRED")
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"{path} is not a timestamp", field=path) from None


def _enum(data: Mapping[str, Any], key: str, path: str, enum_type: type[enum.Enum],
          prefix: str, default: enum.Enum | None = None) -> Any:
    raw = str(data.get(key, "") or "")
    name = raw.removeprefix(prefix).lower()
    for member in enum_type:
        if member.value == name:
            return member
    if default is not None and name in ("", "unspecified"):
        return default
    raise InvalidArgument(f"{path} must be one of "
                          f"{', '.join(prefix + m.value.upper() for m in enum_type)}",
                          field=path, reason="INVALID_ENUM")


def _unique_ids(ids: Sequence[str], path: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(ids):
        if value in seen:
            raise InvalidArgument(f"{path}[{index}] repeats id {value!r}",
                                  field=f"{path}[{index}]", reason="DUPLICATE_ID")
        seen.add(value)


def _reward(data: Mapping[str, Any] | None, path: str) -> Reward:
    data = data or {}
    return Reward(points=_int(data, "points", f"{path}.points", maximum=1_000_000),
                  coupon_template_id=_text(data, "coupon_template_id",
                                           f"{path}.coupon_template_id", maximum=MAX_ID))


def _sign_in(data: Mapping[str, Any], path: str) -> SignInConfig:
    rewards = []
    for index, item in enumerate(_items(data, "rewards", f"{path}.rewards")):
        item_path = f"{path}.rewards[{index}]"
        rewards.append(StreakReward(_int(item, "day", f"{item_path}.day", minimum=1,
                                         maximum=366),
                                    _reward(item.get("reward"), f"{item_path}.reward")))
    _unique_ids([str(r.day) for r in rewards], f"{path}.rewards")
    cycle = _int(data, "cycle_days", f"{path}.cycle_days", maximum=366)
    if cycle:
        for index, streak_reward in enumerate(rewards):
            if streak_reward.day > cycle:
                raise InvalidArgument(f"{path}.rewards[{index}].day is beyond cycle_days",
                                      field=f"{path}.rewards[{index}].day",
                                      reason="DAY_BEYOND_CYCLE")
    allowed = bool(data.get("make_up_allowed", False))
    window = _int(data, "make_up_window_days", f"{path}.make_up_window_days", maximum=31)
    if allowed and window < 1:
        raise InvalidArgument(f"{path}.make_up_window_days must be at least 1 when make-up "
                              "sign-in is allowed", field=f"{path}.make_up_window_days",
                              reason="VALUE_OUT_OF_RANGE")
    return SignInConfig(tuple(rewards), cycle, allowed,
                        _int(data, "make_up_cost_points", f"{path}.make_up_cost_points",
                             maximum=1_000_000), window)


def _prize(data: Mapping[str, Any], path: str) -> Prize:
    kind = _enum(data, "kind", f"{path}.kind", PrizeKind, "PRIZE_KIND_")
    prize = Prize(
        prize_id=_text(data, "prize_id", f"{path}.prize_id", required=True, maximum=MAX_ID),
        name=_text(data, "name", f"{path}.name", required=True),
        kind=kind,
        weight=_int(data, "weight", f"{path}.weight", minimum=1, maximum=1_000_000_000),
        stock=_int(data, "stock", f"{path}.stock", maximum=100_000_000),
        points=_int(data, "points", f"{path}.points", maximum=1_000_000),
        coupon_template_id=_text(data, "coupon_template_id", f"{path}.coupon_template_id",
                                 maximum=MAX_ID),
    )
    if kind is PrizeKind.POINTS and prize.points < 1:
        raise InvalidArgument(f"{path}.points must be positive for a points prize",
                              field=f"{path}.points", reason="VALUE_OUT_OF_RANGE")
    if kind is PrizeKind.COUPON and not prize.coupon_template_id:
        raise InvalidArgument(f"{path}.coupon_template_id is required for a coupon prize",
                              field=f"{path}.coupon_template_id", reason="FIELD_REQUIRED")
    if kind is PrizeKind.THANKS and prize.stock:
        raise InvalidArgument(f"{path}.stock must be 0 for a thanks-for-playing outcome",
                              field=f"{path}.stock", reason="VALUE_OUT_OF_RANGE")
    if kind is not PrizeKind.THANKS and prize.stock < 1:
        raise InvalidArgument(f"{path}.stock must be positive", field=f"{path}.stock",
                              reason="VALUE_OUT_OF_RANGE")
    return prize


def _lottery(data: Mapping[str, Any], path: str) -> LotteryConfig:
    mode = _enum(data, "mode", f"{path}.mode", LotteryMode, "LOTTERY_MODE_",
                 default=LotteryMode.INSTANT)
    prizes = [_prize(item, f"{path}.prizes[{index}]")
              for index, item in enumerate(_items(data, "prizes", f"{path}.prizes"))]
    _unique_ids([p.prize_id for p in prizes], f"{path}.prizes")
    real = [p for p in prizes if p.kind is not PrizeKind.THANKS]
    if not real:
        raise InvalidArgument(f"{path}.prizes needs at least one prize that can be won",
                              field=f"{path}.prizes", reason="NO_PRIZES")
    config = LotteryConfig(
        mode=mode, prizes=tuple(prizes),
        cost_points=_int(data, "cost_points", f"{path}.cost_points", maximum=1_000_000),
        daily_limit=_int(data, "daily_limit", f"{path}.daily_limit", maximum=10_000),
        total_limit=_int(data, "total_limit", f"{path}.total_limit", maximum=1_000_000),
    )
    if config.daily_limit and config.total_limit and config.daily_limit > config.total_limit:
        raise InvalidArgument(f"{path}.daily_limit must not exceed total_limit",
                              field=f"{path}.daily_limit", reason="VALUE_OUT_OF_RANGE")
    if mode is LotteryMode.KOI:
        if len(prizes) != 1:
            raise InvalidArgument(f"{path}.prizes must hold exactly one prize in a koi draw "
                                  "(its stock is the number of winners)",
                                  field=f"{path}.prizes", reason="KOI_ONE_PRIZE")
        if config.cost_points:
            raise InvalidArgument(f"{path}.cost_points must be 0: entering a koi draw is free",
                                  field=f"{path}.cost_points", reason="KOI_ENTRY_FREE")
    return config


def _vote(data: Mapping[str, Any], path: str) -> VoteConfig:
    options = []
    for index, item in enumerate(_items(data, "options", f"{path}.options")):
        item_path = f"{path}.options[{index}]"
        options.append(VoteOption(
            _text(item, "option_id", f"{item_path}.option_id", required=True, maximum=MAX_ID),
            _text(item, "label", f"{item_path}.label", required=True)))
    if len(options) < 2:
        raise InvalidArgument(f"{path}.options needs at least two options",
                              field=f"{path}.options", reason="TOO_FEW_OPTIONS")
    _unique_ids([o.option_id for o in options], f"{path}.options")
    return VoteConfig(tuple(options),
                      _int(data, "votes_per_day", f"{path}.votes_per_day", minimum=1,
                           maximum=100, default=data.get("votes_per_day") or 1),
                      _reward(data.get("gift"), f"{path}.gift"))


def _quiz(data: Mapping[str, Any], path: str) -> QuizConfig:
    questions = []
    for index, item in enumerate(_items(data, "questions", f"{path}.questions")):
        item_path = f"{path}.questions[{index}]"
        options = []
        for o_index, option in enumerate(_items(item, "options", f"{item_path}.options")):
            o_path = f"{item_path}.options[{o_index}]"
            options.append(QuizOption(
                _text(option, "option_id", f"{o_path}.option_id", required=True,
                      maximum=MAX_ID),
                _text(option, "text", f"{o_path}.text", required=True, maximum=500)))
        if len(options) < 2:
            raise InvalidArgument(f"{item_path}.options needs at least two options",
                                  field=f"{item_path}.options", reason="TOO_FEW_OPTIONS")
        _unique_ids([o.option_id for o in options], f"{item_path}.options")
        correct = [str(c) for c in item.get("correct_option_ids", []) or []]
        known = {o.option_id for o in options}
        if not correct:
            raise InvalidArgument(f"{item_path}.correct_option_ids is required",
                                  field=f"{item_path}.correct_option_ids",
                                  reason="FIELD_REQUIRED")
        for c_index, choice in enumerate(correct):
            if choice not in known:
                raise InvalidArgument(f"{item_path}.correct_option_ids[{c_index}] is not one "
                                      "of the question's options",
                                      field=f"{item_path}.correct_option_ids[{c_index}]",
                                      reason="UNKNOWN_OPTION")
        questions.append(QuizQuestion(
            _text(item, "question_id", f"{item_path}.question_id", required=True,
                  maximum=MAX_ID),
            _text(item, "text", f"{item_path}.text", required=True, maximum=1000),
            tuple(options), frozenset(correct)))
    if not questions:
        raise InvalidArgument(f"{path}.questions needs at least one question",
                              field=f"{path}.questions", reason="NO_QUESTIONS")
    _unique_ids([q.question_id for q in questions], f"{path}.questions")
    return QuizConfig(tuple(questions),
                      _int(data, "points_per_correct", f"{path}.points_per_correct",
                           maximum=100_000),
                      _int(data, "max_attempts", f"{path}.max_attempts", minimum=1,
                           maximum=100, default=data.get("max_attempts") or 1))


def _invite(data: Mapping[str, Any], path: str) -> InviteConfig:
    config = InviteConfig(_reward(data.get("inviter_reward"), f"{path}.inviter_reward"),
                          _reward(data.get("invitee_reward"), f"{path}.invitee_reward"),
                          _int(data, "max_rewarded_per_inviter",
                               f"{path}.max_rewarded_per_inviter", maximum=1_000_000))
    if config.inviter_reward.empty and config.invitee_reward.empty:
        raise InvalidArgument(f"{path} needs a reward for the inviter or the invitee",
                              field=f"{path}.inviter_reward", reason="NO_REWARD")
    return config


_PARSERS: dict[str, Callable[[Mapping[str, Any], str], Config]] = {
    "sign_in": _sign_in, "lottery": _lottery, "vote": _vote, "quiz": _quiz, "invite": _invite}


def parse_spec(data: Mapping[str, Any], path: str = "spec") -> ActivitySpec:
    """A validated spec, or InvalidArgument naming the first offending field."""
    starts_at = _time(data, "start_time", f"{path}.start_time")
    ends_at = _time(data, "end_time", f"{path}.end_time")
    if ends_at <= starts_at:
        raise InvalidArgument(f"{path}.end_time must be after start_time",
                              field=f"{path}.end_time", reason="END_BEFORE_START")
    levels = [_int({"v": v}, "v", f"{path}.audience.levels[{i}]", maximum=99)
              for i, v in enumerate((data.get("audience") or {}).get("levels", []) or [])]
    _unique_ids([str(level) for level in levels], f"{path}.audience.levels")
    present = [key for key in _PARSERS if data.get(key) is not None]
    if len(present) != 1:
        raise InvalidArgument(f"{path} needs exactly one of "
                              f"{', '.join(_PARSERS)} as its configuration",
                              field=f"{path}.config", reason="CONFIG_REQUIRED")
    key = present[0]
    config = _PARSERS[key](data[key], f"{path}.{key}")
    return ActivitySpec(
        title=_text(data, "title", f"{path}.title", required=True),
        description=_text(data, "description", f"{path}.description",
                          maximum=MAX_DESCRIPTION),
        starts_at=starts_at, ends_at=ends_at, audience_levels=tuple(sorted(levels)),
        config=config)

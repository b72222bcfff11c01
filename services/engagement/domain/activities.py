"""Activities: what a brand (or an ISV on its behalf) runs for its members.

An activity's definition (its spec) is parsed here from the contract's plain-dict form, with
every refusal naming the field; the life cycle and what may change while live are decided here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from libs.errors import FailedPrecondition, InvalidArgument, PermissionDenied

MAX_TITLE = 100
MAX_DESCRIPTION = 2000
MAX_ID = 64
MAX_ITEMS = 100


class ActivityKind(enum.Enum):
    SIGN_IN = "sign_in"
    LOTTERY = "lottery"
    VOTE = "vote"
    QUIZ = "quiz"
    INVITE = "invite"


class ActivityState(enum.Enum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    LIVE = "live"
    CLOSED = "closed"


class OwnerKind(enum.Enum):
    BRAND = "brand"
    ISV_APP = "isv_app"


class PrizeKind(enum.Enum):
    POINTS = "points"
    COUPON = "coupon"
    PHYSICAL = "physical"
    THANKS = "thanks"


class LotteryMode(enum.Enum):
    INSTANT = "instant"
    KOI = "koi"


@dataclass(frozen=True)
class Owner:
    kind: OwnerKind
    owner_id: str


@dataclass(frozen=True)
class Reward:
    points: int = 0
    coupon_template_id: str = ""

    @property
    def empty(self) -> bool:
        return self.points == 0 and not self.coupon_template_id


@dataclass(frozen=True)
class StreakReward:
    day: int
    reward: Reward


@dataclass(frozen=True)
class SignInConfig:
    rewards: tuple[StreakReward, ...] = ()
    cycle_days: int = 0
    make_up_allowed: bool = False
    make_up_cost_points: int = 0
    make_up_window_days: int = 0

    def reward_for(self, streak_days: int) -> Reward | None:
        """The reward a sign-in earns on the given streak day (cycles repeat)."""
        day = (streak_days - 1) % self.cycle_days + 1 if self.cycle_days else streak_days
        for item in self.rewards:
            if item.day == day:
                return item.reward
        return None


@dataclass(frozen=True)
class Prize:
    prize_id: str
    name: str
    kind: PrizeKind
    weight: int
    stock: int = 0
    points: int = 0
    coupon_template_id: str = ""

    @property
    def reward(self) -> Reward:
        if self.kind is PrizeKind.POINTS:
            return Reward(points=self.points)
        if self.kind is PrizeKind.COUPON:
            return Reward(coupon_template_id=self.coupon_template_id)
        return Reward()


@dataclass(frozen=True)
class LotteryConfig:
    mode: LotteryMode
    prizes: tuple[Prize, ...]
    cost_points: int = 0
    daily_limit: int = 0
    total_limit: int = 0

    def prize(self, prize_id: str) -> Prize | None:
        return next((p for p in self.prizes if p.prize_id == prize_id), None)

    @property
    def koi_prize(self) -> Prize:
        return next(p for p in self.prizes if p.kind is not PrizeKind.THANKS)


@dataclass(frozen=True)
class VoteOption:
    option_id: str
    label: str


@dataclass(frozen=True)
class VoteConfig:
    options: tuple[VoteOption, ...]
    votes_per_day: int = 1
    gift: Reward = Reward()


@dataclass(frozen=True)
class QuizOption:
    option_id: str
    text: str


@dataclass(frozen=True)
class QuizQuestion:
    question_id: str
    text: str
    options: tuple[QuizOption, ...]
    correct_option_ids: frozenset[str]


@dataclass(frozen=True)
class QuizConfig:
    questions: tuple[QuizQuestion, ...]
    points_per_correct: int = 0
    max_attempts: int = 1


@dataclass(frozen=True)
class InviteConfig:
    inviter_reward: Reward = Reward()
    invitee_reward: Reward = Reward()
    max_rewarded_per_inviter: int = 0


Config = SignInConfig | LotteryConfig | VoteConfig | QuizConfig | InviteConfig

_KIND_OF: dict[type[Any], ActivityKind] = {
    SignInConfig: ActivityKind.SIGN_IN, LotteryConfig: ActivityKind.LOTTERY,
    VoteConfig: ActivityKind.VOTE, QuizConfig: ActivityKind.QUIZ,
    InviteConfig: ActivityKind.INVITE,
}


@dataclass(frozen=True)
class ActivitySpec:
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime
    audience_levels: tuple[int, ...]
    config: Config

    @property
    def kind(self) -> ActivityKind:
        return _KIND_OF[type(self.config)]


@dataclass(frozen=True)
class Activity:
    activity_id: str
    brand_id: str
    kind: ActivityKind
    state: ActivityState  # as stored: draft, scheduled (published) or closed
    title: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    owner: Owner = Owner(OwnerKind.BRAND, "")
    spec: ActivitySpec | None = None
    version: int = 1
    updated_at: datetime | None = None
    closed_at: datetime | None = None

    def state_at(self, now: datetime) -> ActivityState:
        """The life-cycle state at a moment: live and closed follow the time window."""
        if self.state is ActivityState.DRAFT:
            return ActivityState.DRAFT
        if self.state is ActivityState.CLOSED or now >= self.ends_at:
            return ActivityState.CLOSED
        if now >= self.starts_at:
            return ActivityState.LIVE
        return ActivityState.SCHEDULED

    @property
    def definition(self) -> ActivitySpec:
        assert self.spec is not None, "activity loaded without its spec"
        return self.spec

    def require_live(self, now: datetime) -> None:
        state = self.state_at(now)
        if state is not ActivityState.LIVE:
            raise FailedPrecondition(
                f"activity {self.activity_id} is {state.value}, not live",
                reason="ACTIVITY_NOT_LIVE",
                metadata={"activity_id": self.activity_id, "state": state.value})

    def require_kind(self, kind: ActivityKind) -> None:
        if self.kind is not kind:
            raise FailedPrecondition(
                f"activity {self.activity_id} is a {self.kind.value} activity, not {kind.value}",
                reason="WRONG_ACTIVITY_KIND",
                metadata={"activity_id": self.activity_id, "kind": self.kind.value})


@dataclass(frozen=True)
class MemberInfo:
    """What membership tells about a shopper of a brand."""

    level: int  # 0 = LV0, 1..n = card member's tier
    card_member: bool


def check_audience(levels: Sequence[int], member: MemberInfo | None) -> None:
    """Only live members take part; a non-empty audience names the levels allowed."""
    if member is None:
        raise PermissionDenied("the shopper is not a member of the brand",
                               reason="NOT_A_MEMBER")
    if levels and member.level not in levels:
        raise PermissionDenied("the member's level is not in the activity's audience",
                               reason="NOT_IN_AUDIENCE", metadata={"level": str(member.level)})


def check_actor(activity: Activity, actor: Owner | None) -> None:
    """The brand may act on all its activities; an ISV app only on those it owns."""
    if actor is None or actor.kind is OwnerKind.BRAND:
        return
    if activity.owner != actor:
        raise PermissionDenied("an ISV app may change only the activities it created",
                               reason="NOT_ACTIVITY_OWNER",
                               metadata={"activity_id": activity.activity_id})


# ---------------------------------------------------------------------------------------------
# Parsing the spec from its plain-dict form (the contract's JSON with proto field names).


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


# ---------------------------------------------------------------------------------------------
# What may change, and when.


@dataclass(frozen=True)
class ChangeContext:
    now: datetime
    won_by_prize: Mapping[str, int] = field(default_factory=dict)


def _locked(path: str, reason: str, message: str) -> FailedPrecondition:
    return FailedPrecondition(message, reason=reason, metadata={"field": path})


def check_change(activity: Activity, new: ActivitySpec, ctx: ChangeContext) -> None:
    """Refuse a change the activity's state does not allow, naming the field.

    Drafts and scheduled activities may change freely (but never their kind). While live:
    the start time, the lottery's prizes (ids, kinds, weights, values) and cost, the quiz's
    questions and the vote's existing options are fixed, because past participation was
    recorded against them; the end time may move but not into the past; a prize's stock may
    move but never below what was already won. A closed activity does not change.
    """
    old = activity.definition
    state = activity.state_at(ctx.now)
    if state is ActivityState.CLOSED:
        raise FailedPrecondition(f"activity {activity.activity_id} is closed",
                                 reason="ACTIVITY_CLOSED",
                                 metadata={"activity_id": activity.activity_id})
    if new.kind is not old.kind:
        raise InvalidArgument("an activity's kind cannot change", field="spec.config",
                              reason="KIND_IMMUTABLE")
    if isinstance(new.config, LotteryConfig):
        for index, prize in enumerate(new.config.prizes):
            won = ctx.won_by_prize.get(prize.prize_id, 0)
            if prize.kind is not PrizeKind.THANKS and prize.stock < won:
                raise InvalidArgument(
                    f"spec.lottery.prizes[{index}].stock {prize.stock} is below the {won} "
                    "already won", field=f"spec.lottery.prizes[{index}].stock",
                    reason="STOCK_BELOW_WON", metadata={"won": str(won)})
    if state is not ActivityState.LIVE:
        return
    if new.starts_at != old.starts_at:
        raise _locked("spec.start_time", "LIVE_FIELD_LOCKED",
                      "the start time of a live activity cannot change")
    if new.ends_at != old.ends_at and new.ends_at <= ctx.now:
        raise InvalidArgument("spec.end_time of a live activity cannot move into the past "
                              "(close it instead)", field="spec.end_time",
                              reason="END_TIME_IN_PAST")
    if isinstance(new.config, LotteryConfig):
        assert isinstance(old.config, LotteryConfig)
        if new.config.mode is not old.config.mode:
            raise _locked("spec.lottery.mode", "LIVE_FIELD_LOCKED",
                          "a live lottery's mode cannot change")
        if new.config.cost_points != old.config.cost_points:
            raise _locked("spec.lottery.cost_points", "LIVE_FIELD_LOCKED",
                          "a live lottery's cost cannot change")
        if [p.prize_id for p in new.config.prizes] != [p.prize_id for p in old.config.prizes]:
            raise _locked("spec.lottery.prizes", "LIVE_FIELD_LOCKED",
                          "a live lottery's prizes cannot be added, removed or reordered")
        for index, (before, after) in enumerate(zip(old.config.prizes, new.config.prizes,
                                                    strict=True)):
            if (before.kind, before.weight, before.points, before.coupon_template_id) != (
                    after.kind, after.weight, after.points, after.coupon_template_id):
                raise _locked(f"spec.lottery.prizes[{index}]", "LIVE_FIELD_LOCKED",
                              "a live lottery's prize kinds, weights and values are fixed: "
                              "past draws were recorded against them")
    if isinstance(new.config, QuizConfig) and new.config.questions != _questions(old.config):
        raise _locked("spec.quiz.questions", "LIVE_FIELD_LOCKED",
                      "a live quiz's questions cannot change")
    if isinstance(new.config, VoteConfig):
        assert isinstance(old.config, VoteConfig)
        kept = {o.option_id for o in new.config.options}
        for index, option in enumerate(old.config.options):
            if option.option_id not in kept:
                raise _locked(f"spec.vote.options[{index}]", "LIVE_FIELD_LOCKED",
                              "a live vote's options can be added or relabelled, not removed")


def _questions(config: Config) -> tuple[QuizQuestion, ...]:
    return config.questions if isinstance(config, QuizConfig) else ()

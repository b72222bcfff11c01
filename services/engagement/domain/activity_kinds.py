"""Activity kinds and what each kind is configured with: sign-in streak rewards, lottery
prizes, vote options, quiz questions, invite rewards (the `Config` of an activity's spec)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class ActivityKind(enum.Enum):
    SIGN_IN = "sign_in"
    LOTTERY = "lottery"
    VOTE = "vote"
    QUIZ = "quiz"
    INVITE = "invite"


class PrizeKind(enum.Enum):
    POINTS = "points"
    COUPON = "coupon"
    PHYSICAL = "physical"
    THANKS = "thanks"


class LotteryMode(enum.Enum):
    INSTANT = "instant"
    KOI = "koi"


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

KIND_OF: dict[type[Any], ActivityKind] = {
    SignInConfig: ActivityKind.SIGN_IN, LotteryConfig: ActivityKind.LOTTERY,
    VoteConfig: ActivityKind.VOTE, QuizConfig: ActivityKind.QUIZ,
    InviteConfig: ActivityKind.INVITE,
}

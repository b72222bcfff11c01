"""What may change in an activity's definition, and when (past participation was recorded
against what is live)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from libs.errors import FailedPrecondition, InvalidArgument
from services.engagement.domain.activities import Activity, ActivitySpec, ActivityState
from services.engagement.domain.activity_kinds import (
    Config,
    LotteryConfig,
    PrizeKind,
    QuizConfig,
    QuizQuestion,
    VoteConfig,
)


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

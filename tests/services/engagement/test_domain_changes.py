"""Pure rules of `domain/changes.py`: what may change in a definition, and when."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from libs.errors import DomainError, FailedPrecondition, InvalidArgument
from services.engagement.domain.activities import Activity, ActivitySpec, ActivityState
from services.engagement.domain.changes import ChangeContext, check_change
from services.engagement.domain.spec_parsing import parse_spec

START = datetime(2026, 5, 1, tzinfo=UTC)
END = START + timedelta(days=7)
BEFORE, LIVE, AFTER = START - timedelta(hours=1), START + timedelta(hours=1), END
BASE: dict[str, Any] = {"title": "T", "start_time": START.isoformat(),
                        "end_time": END.isoformat()}
LOTTERY = {"lottery": {"cost_points": 1, "prizes": [
    {"prize_id": "p1", "name": "Points", "kind": "PRIZE_KIND_POINTS", "weight": 1, "stock": 5,
     "points": 10},
    {"prize_id": "t", "name": "Thanks", "kind": "PRIZE_KIND_THANKS", "weight": 9}]}}
VOTE = {"vote": {"options": [{"option_id": "a", "label": "A"},
                             {"option_id": "b", "label": "B"}]}}
QUIZ = {"quiz": {"questions": [{"question_id": "q", "text": "?", "options": [
    {"option_id": "a", "text": "A"}, {"option_id": "b", "text": "B"}],
    "correct_option_ids": ["a"]}]}}


def spec(config: dict[str, Any], **changes: Any) -> ActivitySpec:
    data = {**copy.deepcopy(BASE), **copy.deepcopy(config)}
    for path, value in changes.items():
        node: Any = data
        keys = path.split("__")
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return parse_spec(data)


def published(config: dict[str, Any], state: ActivityState = ActivityState.SCHEDULED
              ) -> Activity:
    old = spec(config)
    return Activity("act_1", "brd_1", old.kind, state, old.title, old.starts_at, old.ends_at,
                    START - timedelta(days=1), spec=old)


def refusal(activity: Activity, new: ActivitySpec, now: datetime,
            won: dict[str, int] | None = None) -> tuple[str, str]:
    try:
        check_change(activity, new, ChangeContext(now, won or {}))
    except DomainError as error:
        return error.reason, error.metadata.get("field", "")
    return "", ""


# (config, change, reason when live, field): refused while live, allowed before.
LIVE_LOCKS = [
    (LOTTERY, {"start_time": (START + timedelta(minutes=5)).isoformat()}, "LIVE_FIELD_LOCKED",
     "spec.start_time"),
    (LOTTERY, {"lottery__cost_points": 2}, "LIVE_FIELD_LOCKED", "spec.lottery.cost_points"),
    (LOTTERY, {"lottery__prizes__0__weight": 2}, "LIVE_FIELD_LOCKED", "spec.lottery.prizes[0]"),
    (LOTTERY, {"lottery__prizes__1__prize_id": "t2"}, "LIVE_FIELD_LOCKED",
     "spec.lottery.prizes"),
    (QUIZ, {"quiz__questions__0__text": "Again?"}, "LIVE_FIELD_LOCKED", "spec.quiz.questions"),
    (VOTE, {"vote__options": [{"option_id": "a", "label": "A"},
                              {"option_id": "c", "label": "C"}]}, "LIVE_FIELD_LOCKED",
     "spec.vote.options[1]"),
]


@pytest.mark.parametrize(("config", "change", "reason", "field"), LIVE_LOCKS)
def test_what_past_participation_used_is_fixed_while_live(
        config: dict[str, Any], change: dict[str, Any], reason: str, field: str) -> None:
    """Each locked field may change before the start and is refused, named, while live."""
    new = spec(config, **change)
    assert refusal(published(config), new, BEFORE) == ("", "")
    assert refusal(published(config), new, LIVE) == (reason, field)


def test_what_may_move_while_live_moves() -> None:
    """While live: a vote option may be added or relabelled, stock and the end time may
    move (the end not into the past)."""
    grown = spec(VOTE, vote__options=[{"option_id": "a", "label": "Ay"},
                                      {"option_id": "b", "label": "B"},
                                      {"option_id": "c", "label": "C"}])
    assert refusal(published(VOTE), grown, LIVE) == ("", "")
    assert refusal(published(LOTTERY), spec(LOTTERY, lottery__prizes__0__stock=9), LIVE) == (
        "", "")
    later = spec(LOTTERY, end_time=(END + timedelta(days=1)).isoformat())
    assert refusal(published(LOTTERY), later, LIVE) == ("", "")
    past = spec(LOTTERY, end_time=(LIVE - timedelta(minutes=1)).isoformat())
    assert refusal(published(LOTTERY), past, LIVE) == ("END_TIME_IN_PAST", "spec.end_time")


def test_stock_never_drops_below_what_was_won() -> None:
    """A prize's stock may go down to what was won, not one below, in any state."""
    activity = published(LOTTERY)
    assert refusal(activity, spec(LOTTERY, lottery__prizes__0__stock=3), BEFORE,
                   {"p1": 3}) == ("", "")
    assert refusal(activity, spec(LOTTERY, lottery__prizes__0__stock=2), BEFORE,
                   {"p1": 3}) == ("STOCK_BELOW_WON", "spec.lottery.prizes[0].stock")


def test_the_kind_never_changes_and_a_closed_activity_not_at_all() -> None:
    """Another kind is refused KIND_IMMUTABLE; a closed activity refuses every change."""
    with pytest.raises(InvalidArgument) as refused:
        check_change(published(LOTTERY), spec(VOTE), ChangeContext(BEFORE))
    assert refused.value.reason == "KIND_IMMUTABLE"
    with pytest.raises(FailedPrecondition) as closed:
        check_change(published(LOTTERY), spec(LOTTERY), ChangeContext(AFTER))
    assert closed.value.reason == "ACTIVITY_CLOSED"
    with pytest.raises(FailedPrecondition):
        check_change(published(LOTTERY, ActivityState.CLOSED), spec(LOTTERY),
                     ChangeContext(BEFORE))

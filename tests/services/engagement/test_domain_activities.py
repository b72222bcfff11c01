"""Pure rules of `domain/activities.py`: the life cycle and who may act on an activity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from libs.errors import FailedPrecondition, PermissionDenied
from services.engagement.domain.activities import (
    Activity,
    ActivitySpec,
    ActivityState,
    Owner,
    OwnerKind,
    check_actor,
)
from services.engagement.domain.activity_kinds import (
    KIND_OF,
    ActivityKind,
    InviteConfig,
    LotteryConfig,
    LotteryMode,
    QuizConfig,
    Reward,
    SignInConfig,
    VoteConfig,
)

START = datetime(2026, 5, 1, tzinfo=UTC)
END = START + timedelta(days=7)
TICK = timedelta(microseconds=1)


BRAND = Owner(OwnerKind.BRAND, "brd_1")


def activity(state: ActivityState, *, owner: Owner = BRAND,
             kind: ActivityKind = ActivityKind.SIGN_IN) -> Activity:
    return Activity("act_1", "brd_1", kind, state, "Title", START, END, START - timedelta(days=1),
                    owner=owner)


@pytest.mark.parametrize(("stored", "at", "seen"), [
    (ActivityState.DRAFT, START + TICK, ActivityState.DRAFT),
    (ActivityState.DRAFT, END + TICK, ActivityState.DRAFT),
    (ActivityState.SCHEDULED, START - TICK, ActivityState.SCHEDULED),
    (ActivityState.SCHEDULED, START, ActivityState.LIVE),
    (ActivityState.SCHEDULED, END - TICK, ActivityState.LIVE),
    (ActivityState.SCHEDULED, END, ActivityState.CLOSED),
    (ActivityState.CLOSED, START + TICK, ActivityState.CLOSED),
])
def test_state_follows_the_time_window_once_published(stored: ActivityState, at: datetime,
                                                       seen: ActivityState) -> None:
    """A draft stays a draft; a published activity is live inside [start, end) and closed
    from its end; closed early stays closed."""
    assert activity(stored).state_at(at) is seen


def test_only_a_live_activity_takes_part() -> None:
    """require_live refuses every state but live, naming the state it is in."""
    activity(ActivityState.SCHEDULED).require_live(START)
    with pytest.raises(FailedPrecondition) as refused:
        activity(ActivityState.SCHEDULED).require_live(END)
    assert refused.value.reason == "ACTIVITY_NOT_LIVE"
    assert refused.value.metadata["state"] == "closed"


def test_an_rpc_of_one_kind_refuses_another_kind() -> None:
    """A vote RPC on a sign-in activity is refused WRONG_ACTIVITY_KIND."""
    activity(ActivityState.SCHEDULED).require_kind(ActivityKind.SIGN_IN)
    with pytest.raises(FailedPrecondition) as refused:
        activity(ActivityState.SCHEDULED).require_kind(ActivityKind.VOTE)
    assert refused.value.reason == "WRONG_ACTIVITY_KIND"
    assert refused.value.metadata["kind"] == "sign_in"


def test_an_isv_app_acts_only_on_what_it_owns() -> None:
    """The brand (or no actor named) may act on any activity; an ISV app only on its own."""
    app = Owner(OwnerKind.ISV_APP, "app_1")
    owned = activity(ActivityState.DRAFT, owner=app)
    check_actor(owned, app)
    check_actor(owned, None)
    check_actor(owned, Owner(OwnerKind.BRAND, "brd_1"))
    with pytest.raises(PermissionDenied) as refused:
        check_actor(activity(ActivityState.DRAFT), app)
    assert refused.value.reason == "NOT_ACTIVITY_OWNER"
    with pytest.raises(PermissionDenied):
        check_actor(owned, Owner(OwnerKind.ISV_APP, "app_2"))


@pytest.mark.parametrize(("config", "kind"), [
    (SignInConfig(), ActivityKind.SIGN_IN),
    (LotteryConfig(LotteryMode.INSTANT, ()), ActivityKind.LOTTERY),
    (VoteConfig(()), ActivityKind.VOTE),
    (QuizConfig(()), ActivityKind.QUIZ),
    (InviteConfig(Reward(points=1)), ActivityKind.INVITE),
])
def test_a_spec_is_of_its_configurations_kind(config: object, kind: ActivityKind) -> None:
    """The kind of a spec is the kind of the one configuration it holds."""
    spec = ActivitySpec("T", "", START, END, (), config)  # type: ignore[arg-type]
    assert spec.kind is kind


def test_every_kind_has_one_configuration() -> None:
    """Each activity kind is configured by exactly one configuration class."""
    assert sorted(KIND_OF.values(), key=lambda k: k.value) == sorted(ActivityKind,
                                                                     key=lambda k: k.value)


def test_the_definition_is_the_spec_it_was_loaded_with() -> None:
    """An activity read without its spec says so instead of answering None."""
    with pytest.raises(AssertionError):
        _ = activity(ActivityState.DRAFT).definition

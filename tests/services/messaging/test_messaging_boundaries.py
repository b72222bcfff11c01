"""Every cap, window and threshold of messaging's rules, tested exactly on its boundary.

Part of the boundary sweep (see tests/services/membership/test_membership_boundaries.py):
the daily and weekly frequency caps, the quiet-hours window's first and last minute (also
across midnight), the journey branches "level at least" and "order at least", and the
holdout's 0 % and 100 % ends.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.messaging.domain.campaigns import in_holdout
from services.messaging.domain.channels import Channel, Purpose
from services.messaging.domain.governance import (
    Candidate,
    CapUsage,
    Policy,
    Reason,
    Verdict,
    decide,
    quiet_until,
)
from services.messaging.domain.journeys import Condition, Step, StepKind, TriggerFacts, branch_taken

ZONE = ZoneInfo("Asia/Shanghai")
MARKETING = Candidate("acc", Channel.INBOX, Purpose.MARKETING, cancelled=False, consent=True,
                      channel_ready=True)


def local(hour: int, minute: int) -> datetime:
    return datetime(2026, 3, 2, hour, minute, tzinfo=ZONE).astimezone(UTC)


@pytest.mark.parametrize("cap", [1, 3])
def test_daily_cap_sends_exactly_cap_messages(cap: int) -> None:
    """daily_cap N: with N-1 sent today one more goes; with N it is suppressed."""
    policy = Policy("brd", daily_cap=cap)
    now = local(12, 0)
    assert decide(MARKETING, policy, CapUsage(day=cap - 1, week=cap - 1), now,
                  ZONE).verdict is Verdict.SEND
    capped = decide(MARKETING, policy, CapUsage(day=cap, week=cap), now, ZONE)
    assert (capped.verdict, capped.reason) == (Verdict.SUPPRESS, Reason.FREQUENCY_CAP_DAILY)


@pytest.mark.parametrize("cap", [1, 5])
def test_weekly_cap_sends_exactly_cap_messages(cap: int) -> None:
    """weekly_cap N: with N-1 sent this week one more goes; with N it is suppressed."""
    policy = Policy("brd", weekly_cap=cap)
    now = local(12, 0)
    assert decide(MARKETING, policy, CapUsage(week=cap - 1), now, ZONE).verdict is Verdict.SEND
    capped = decide(MARKETING, policy, CapUsage(week=cap), now, ZONE)
    assert (capped.verdict, capped.reason) == (Verdict.SUPPRESS, Reason.FREQUENCY_CAP_WEEKLY)


@pytest.mark.parametrize("start, end", [(22 * 60, 8 * 60), (13 * 60, 14 * 60)],
                         ids=["across midnight", "same day"])
def test_quiet_hours_start_inclusive_end_exclusive(start: int, end: int) -> None:
    """The quiet window holds from its first minute up to, not including, its end minute."""
    policy = Policy("brd", quiet_start_minute=start, quiet_end_minute=end)
    first, last = divmod(start, 60), divmod(end - 1, 60)
    before, after = divmod(start - 1, 60), divmod(end, 60)
    assert quiet_until(policy, local(*first), ZONE) is not None
    assert quiet_until(policy, local(*last), ZONE) is not None
    assert quiet_until(policy, local(*before), ZONE) is None
    assert quiet_until(policy, local(*after), ZONE) is None


@pytest.mark.parametrize("condition, fact", [(Condition.LEVEL_AT_LEAST, "level"),
                                             (Condition.ORDER_CENTS_AT_LEAST, "order_cents")])
def test_at_least_branches_hold_exactly_at_their_number(condition: Condition,
                                                        fact: str) -> None:
    """"At least N" is taken with exactly N and not with N-1."""
    step = Step("s", StepKind.BRANCH, condition=condition, number=3)

    def facts(value: int) -> TriggerFacts:
        return TriggerFacts(level=value) if fact == "level" else TriggerFacts(order_cents=value)

    assert branch_taken(step, facts(3), False)
    assert not branch_taken(step, facts(2), False)


def test_holdout_ends() -> None:
    """0 basis points holds nobody out; 10,000 (100 %) holds everybody out."""
    members = [f"acc_{i}" for i in range(200)]
    assert not any(in_holdout("cmp", m, 0) for m in members)
    assert all(in_holdout("cmp", m, 10_000) for m in members)
    assert 0 < sum(in_holdout("cmp", m, 5_000) for m in members) < 200


def test_quiet_window_ends_at_its_end_minute() -> None:
    """A message deferred by quiet hours may go at the end minute itself."""
    policy = Policy("brd", quiet_start_minute=22 * 60, quiet_end_minute=8 * 60)
    wait = quiet_until(policy, local(23, 30), ZONE)
    assert wait == local(8, 0) + timedelta(days=1)

"""Pure messaging rules without I/O: quiet hours, caps, consent defaults, holdout, templates,
journey graphs."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from libs.errors import InvalidArgument
from services.messaging.domain.campaigns import in_holdout, throttled_time
from services.messaging.domain.channels import Channel, Purpose
from services.messaging.domain.governance import (
    Candidate,
    CapUsage,
    Policy,
    Reason,
    Verdict,
    consents_from_join,
    decide,
    quiet_until,
)
from services.messaging.domain.journeys import Step, StepKind, validate_steps
from services.messaging.domain.templates import placeholders, template_variables

SHANGHAI = ZoneInfo("Asia/Shanghai")
QUIET = Policy("brd", quiet_start_minute=22 * 60, quiet_end_minute=8 * 60)


def at_local(hour: int, minute: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.mark.parametrize(("hour", "minute", "until"), [
    (21, 59, None), (22, 0, at_local(8, 0, day=3)), (23, 30, at_local(8, 0, day=3)),
    (0, 15, at_local(8, 0)), (7, 59, at_local(8, 0)), (8, 0, None)])
def test_quiet_hours_wrap_midnight(hour: int, minute: int, until: datetime | None) -> None:
    """A 22:00-08:00 window holds messages until 08:00 local, the next day when needed."""
    assert quiet_until(QUIET, at_local(hour, minute), SHANGHAI) == until


def test_decision_order_and_cap_counting() -> None:
    """Cancelled beats opt-out beats caps; caps count only what is sent."""
    policy = Policy("brd", daily_cap=1, weekly_cap=5)
    now = at_local(10)
    usage = CapUsage()

    def candidate(**kw: object) -> Candidate:
        base: dict[str, object] = dict(account_id="a", channel=Channel.SMS,
                                       purpose=Purpose.MARKETING, cancelled=False,
                                       consent=True, channel_ready=True)
        base.update(kw)
        return Candidate(**base)  # type: ignore[arg-type]

    assert decide(candidate(cancelled=True, consent=False), policy, usage, now,
                  SHANGHAI).reason is Reason.MEMBER_CANCELLED
    assert decide(candidate(consent=False), policy, usage, now,
                  SHANGHAI).reason is Reason.OPTED_OUT
    assert decide(candidate(consent=None), policy, usage, now,
                  SHANGHAI).reason is Reason.NO_CONSENT
    assert decide(candidate(), policy, usage, now, SHANGHAI).verdict is Verdict.SEND
    assert decide(candidate(), policy, usage, now, SHANGHAI).reason is \
        Reason.FREQUENCY_CAP_DAILY
    assert (usage.day, usage.week) == (1, 1)
    service = decide(candidate(purpose=Purpose.SERVICE, consent=None), policy, usage, now,
                     SHANGHAI)
    assert service.verdict is Verdict.SEND


def test_holdout_is_stable_and_close_to_its_share() -> None:
    """The same member is always in or out; about 10% of members fall in a 10% holdout."""
    picked = [in_holdout("cmp_1", f"acc_{i}", 1000) for i in range(20_000)]
    assert picked == [in_holdout("cmp_1", f"acc_{i}", 1000) for i in range(20_000)]
    assert 1800 < sum(picked) < 2200
    assert not any(in_holdout("cmp_1", f"acc_{i}", 0) for i in range(100))


def test_throttle_spaces_messages() -> None:
    """At 100 per second the 250th message goes out 2.5 s after the start."""
    start = at_local(10)
    assert (throttled_time(start, 250, 100) - start).total_seconds() == 2.5


def test_template_syntax_and_variables() -> None:
    """Placeholders are found once each; unbalanced braces and unknown names are refused."""
    assert placeholders("{{a}} and {{ b }} and {{a}}", "body") == ["a", "b"]
    with pytest.raises(InvalidArgument) as caught:
        placeholders("Hello {{name", "body")
    assert caught.value.reason == "TEMPLATE_SYNTAX"
    assert template_variables("{{brand_name}}", "{{code}}", {}, ["code"]) == ["brand_name",
                                                                             "code"]
    with pytest.raises(InvalidArgument) as caught:
        template_variables("", "{{brand_name}}", {}, ["brand_name"])
    assert caught.value.reason == "VARIABLE_RESERVED"


def test_journey_steps_refuse_unknown_targets() -> None:
    """A step pointing at a step that does not exist is refused naming the step."""
    with pytest.raises(InvalidArgument) as caught:
        validate_steps([Step("a", StepKind.WAIT, next_step_id="nowhere", wait_minutes=5)])
    assert (caught.value.reason, caught.value.field) == ("UNKNOWN_STEP", "journey.steps[0]")


@pytest.mark.parametrize(("chosen", "offered", "expected"), [
    (["profile", "marketing_sms"], ["profile", "marketing_sms"],
     {(Channel.SMS, Purpose.MARKETING, True)}),
    (["profile"], ["profile", "marketing_sms", "marketing_wechat"],
     {(Channel.SMS, Purpose.MARKETING, False), (Channel.WECHAT, Purpose.MARKETING, False)}),
    (["marketing_inbox", "service_sms"], ["marketing_inbox", "service_sms"],
     {(Channel.INBOX, Purpose.MARKETING, True), (Channel.SMS, Purpose.SERVICE, True)}),
    (["profile", "marketing_fax", "sms"], ["profile", "marketing_fax", "sms"], set()),
    ([], [], set()),
])
def test_card_opening_purposes_become_channel_consents(
        chosen: list[str], offered: list[str],
        expected: set[tuple[Channel, Purpose, bool]]) -> None:
    """Each offered "<purpose>_<channel>" purpose is granted if chosen and declined if not;
    purposes that name no channel (profile, unknown channels) decide nothing."""
    assert set(consents_from_join(chosen, offered)) == expected

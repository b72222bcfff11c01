"""Consent, frequency caps and quiet hours: whether, and when, a message may go out.

Decisions are pure functions of what the dispatcher loaded for a batch, so every rule is tested
without I/O. Every decision not to send carries an UPPER_SNAKE reason that is stored.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from libs.errors import InvalidArgument
from services.messaging.domain.channels import Channel, Purpose

MINUTES_PER_DAY = 24 * 60


class Reason(enum.Enum):
    MEMBER_CANCELLED = "MEMBER_CANCELLED"
    OPTED_OUT = "OPTED_OUT"
    NO_CONSENT = "NO_CONSENT"
    FREQUENCY_CAP_DAILY = "FREQUENCY_CAP_DAILY"
    FREQUENCY_CAP_WEEKLY = "FREQUENCY_CAP_WEEKLY"
    CHANNEL_NOT_CONFIGURED = "CHANNEL_NOT_CONFIGURED"
    NO_ADDRESS = "NO_ADDRESS"
    TEMPLATE_VARIABLE_MISSING = "TEMPLATE_VARIABLE_MISSING"


@dataclass(frozen=True)
class Policy:
    brand_id: str
    daily_cap: int = 0
    weekly_cap: int = 0
    quiet_start_minute: int = 0
    quiet_end_minute: int = 0

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_start_minute != self.quiet_end_minute


def validate_policy(policy: Policy) -> Policy:
    for name in ("daily_cap", "weekly_cap"):
        value = getattr(policy, name)
        if not 0 <= value <= 1000:
            raise InvalidArgument(f"{name} must be between 0 (no cap) and 1000",
                                  field=f"policy.{name}", reason="CAP_OUT_OF_RANGE")
    if policy.daily_cap and policy.weekly_cap and policy.weekly_cap < policy.daily_cap:
        raise InvalidArgument("weekly_cap must not be below daily_cap", field="policy.weekly_cap",
                              reason="CAP_OUT_OF_RANGE")
    for name in ("quiet_start_minute", "quiet_end_minute"):
        value = getattr(policy, name)
        if not 0 <= value < MINUTES_PER_DAY:
            raise InvalidArgument(f"{name} must be between 0 and 1439", field=f"policy.{name}",
                                  reason="MINUTE_OUT_OF_RANGE")
    return policy


# Without an explicit decision: service messages go everywhere, marketing only to the message
# box (the marketplace's own channel); SMS and WeChat marketing need an explicit opt-in.
def default_consent(channel: Channel, purpose: Purpose) -> bool:
    return purpose is Purpose.SERVICE or channel is Channel.INBOX


def channel_consent(purpose_token: str) -> tuple[Channel, Purpose] | None:
    """The channel consent a membership consent purpose stands for: "<purpose>_<channel>"
    (e.g. "marketing_sms" -> SMS marketing); None for purposes that are not about messages
    (e.g. "profile")."""
    purpose, _, channel = purpose_token.partition("_")
    try:
        return Channel(channel), Purpose(purpose)
    except ValueError:
        return None


def consents_from_join(chosen: Sequence[str], offered: Sequence[str]
                       ) -> list[tuple[Channel, Purpose, bool]]:
    """The channel consents a card opening decided: every message purpose the program offered
    is granted when the member chose it and declined when not (consent given when joining is
    consent here too; a purpose left unticked is no consent)."""
    decided: dict[tuple[Channel, Purpose], bool] = {}
    for token in [*offered, *chosen]:
        pair = channel_consent(token)
        if pair is not None:
            decided[pair] = token in chosen
    return [(channel, purpose, granted) for (channel, purpose), granted in decided.items()]


def quiet_until(policy: Policy, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The end of the quiet window `now` falls in (UTC), or None outside quiet hours."""
    if not policy.has_quiet_hours:
        return None
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    start, end = policy.quiet_start_minute, policy.quiet_end_minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    end_day = local.date()
    if start > end and minute >= start:  # window wraps midnight; it ends tomorrow
        end_day += timedelta(days=1)
    end_local = datetime.combine(end_day, time(end // 60, end % 60), zone)
    return end_local.astimezone(now.tzinfo)


def cap_periods(now: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """The local day and the Monday of the local week that `now` counts against."""
    day = now.astimezone(zone).date()
    return day, day - timedelta(days=day.weekday())


class Verdict(enum.Enum):
    SEND = "send"
    DEFER = "defer"
    SUPPRESS = "suppress"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: Reason | None = None
    not_before: datetime | None = None


@dataclass(frozen=True)
class Candidate:
    """What the dispatcher knows about one due message."""

    account_id: str
    channel: Channel
    purpose: Purpose
    cancelled: bool
    consent: bool | None  # None: no explicit decision recorded
    channel_ready: bool


@dataclass
class CapUsage:
    """Messages already counted for one (member, channel) in the current day and week."""

    day: int = 0
    week: int = 0


def decide(candidate: Candidate, policy: Policy, usage: CapUsage, now: datetime,
           zone: ZoneInfo) -> Decision:
    """Send, wait (quiet hours) or suppress with a reason. Counts usage when it says SEND."""
    if candidate.cancelled:
        return Decision(Verdict.SUPPRESS, Reason.MEMBER_CANCELLED)
    if candidate.consent is False:
        return Decision(Verdict.SUPPRESS, Reason.OPTED_OUT)
    if candidate.consent is None and not default_consent(candidate.channel, candidate.purpose):
        return Decision(Verdict.SUPPRESS, Reason.NO_CONSENT)
    if not candidate.channel_ready:
        return Decision(Verdict.SUPPRESS, Reason.CHANNEL_NOT_CONFIGURED)
    if candidate.purpose is Purpose.MARKETING:
        wait = quiet_until(policy, now, zone)
        if wait is not None:
            return Decision(Verdict.DEFER, not_before=wait)
        if policy.daily_cap and usage.day >= policy.daily_cap:
            return Decision(Verdict.SUPPRESS, Reason.FREQUENCY_CAP_DAILY)
        if policy.weekly_cap and usage.week >= policy.weekly_cap:
            return Decision(Verdict.SUPPRESS, Reason.FREQUENCY_CAP_WEEKLY)
        usage.day += 1
        usage.week += 1
    return Decision(Verdict.SEND)

"""Programs: terms, tiers LV1..LVn on growth value, windows; and the rules that move tiers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from libs.errors import FailedPrecondition, InvalidArgument, require

MAX_TIERS = 20
MAX_PRIVILEGES = 20
MAX_PURPOSES = 20
DEFAULT_DORMANT_AFTER_DAYS = 180
_TERMS_VERSION = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
_TOKEN = re.compile(r"^[a-z0-9_.\-]{1,40}$")


class TierReason:
    GROWTH_REACHED = "GROWTH_REACHED"
    RETENTION_EXPIRED = "RETENTION_EXPIRED"
    OPERATOR = "OPERATOR"


@dataclass(frozen=True)
class Tier:
    level: int
    name: str
    growth_threshold_cents: int
    privileges: tuple[str, ...]
    points_multiplier_percent: int


@dataclass(frozen=True)
class Program:
    program_id: str
    brand_id: str
    terms_version: str
    terms_url: str
    consent_purposes: tuple[str, ...]
    tiers: tuple[Tier, ...]
    growth_window_days: int
    retention_days: int
    dormant_after_days: int
    updated_at: datetime

    def level_for(self, growth_cents: int) -> int:
        """The highest tier whose threshold the growth reaches; a card member is at least LV1."""
        level = 1
        for tier in self.tiers:
            if growth_cents >= tier.growth_threshold_cents:
                level = max(level, tier.level)
        return level

    def tier(self, level: int) -> Tier | None:
        return next((t for t in self.tiers if t.level == level), None)

    def next_level_growth(self, level: int) -> int:
        following = self.tier(level + 1)
        return following.growth_threshold_cents if following else 0

    def growth_since(self, now: datetime) -> datetime:
        return now - timedelta(days=self.growth_window_days)

    def retention_over(self, level_since: datetime | None, now: datetime) -> bool:
        return level_since is None or level_since <= now - timedelta(days=self.retention_days)


def _days(value: int, field: str, minimum: int) -> int:
    if not minimum <= value <= 3650:
        raise InvalidArgument(f"{field} must be between {minimum} and 3650", field=field)
    return value


def _tokens(values: Sequence[str], field: str, limit: int, pattern: re.Pattern[str],
            max_length: int = 40) -> tuple[str, ...]:
    if len(values) > limit:
        raise InvalidArgument(f"{field} holds at most {limit} entries", field=field)
    cleaned: list[str] = []
    for value in values:
        value = value.strip()
        if not value or len(value) > max_length or not pattern.match(value):
            raise InvalidArgument(f"{field} entry {value!r} is not valid", field=field)
        if value in cleaned:
            raise InvalidArgument(f"{field} lists {value!r} twice", field=field)
        cleaned.append(value)
    return tuple(cleaned)


_PRIVILEGE = re.compile(r"^.{1,80}$")


def valid_tiers(tiers: Sequence[Tier]) -> tuple[Tier, ...]:
    if not tiers:
        raise InvalidArgument("a program needs at least the tier LV1", field="tiers",
                              reason="TIERS_REQUIRED")
    if len(tiers) > MAX_TIERS:
        raise InvalidArgument(f"a program has at most {MAX_TIERS} tiers", field="tiers")
    ordered = sorted(tiers, key=lambda t: t.level)
    result: list[Tier] = []
    for expected, tier in enumerate(ordered, start=1):
        where = f"tiers[{expected - 1}]"
        if tier.level != expected:
            raise InvalidArgument("tier levels must be 1..n without gaps or repeats",
                                  field=f"{where}.level", reason="TIER_LEVELS_NOT_CONSECUTIVE")
        name = require(tier.name, f"{where}.name")
        if len(name) > 40:
            raise InvalidArgument("a tier name is at most 40 characters", field=f"{where}.name")
        if tier.growth_threshold_cents < 0:
            raise InvalidArgument("a growth threshold must not be negative",
                                  field=f"{where}.growth_threshold_cents")
        if result and tier.growth_threshold_cents <= result[-1].growth_threshold_cents:
            raise InvalidArgument("growth thresholds must increase with the level",
                                  field=f"{where}.growth_threshold_cents",
                                  reason="TIER_THRESHOLDS_NOT_INCREASING")
        if not 100 <= tier.points_multiplier_percent <= 1000:
            raise InvalidArgument("points_multiplier_percent must be between 100 and 1000",
                                  field=f"{where}.points_multiplier_percent")
        privileges = _tokens(tier.privileges, f"{where}.privileges", MAX_PRIVILEGES, _PRIVILEGE,
                             80)
        result.append(Tier(tier.level, name, tier.growth_threshold_cents, privileges,
                           tier.points_multiplier_percent))
    return tuple(result)


def valid_program(program: Program) -> Program:
    terms = require(program.terms_version, "terms_version")
    if not _TERMS_VERSION.match(terms):
        raise InvalidArgument("terms_version must be 1-32 letters, digits or _.-",
                              field="terms_version")
    if len(program.terms_url) > 500:
        raise InvalidArgument("terms_url is at most 500 characters", field="terms_url")
    return Program(
        program.program_id, program.brand_id, terms, program.terms_url.strip(),
        _tokens(program.consent_purposes, "consent_purposes", MAX_PURPOSES, _TOKEN),
        valid_tiers(program.tiers),
        _days(program.growth_window_days, "growth_window_days", 1),
        _days(program.retention_days, "retention_days", 0),
        _days(program.dormant_after_days, "dormant_after_days", 1),
        program.updated_at,
    )


def check_consent(program: Program, terms_version: str,
                  purposes: Sequence[str]) -> tuple[str, ...]:
    """The shopper must accept the program's current terms; purposes are the program's."""
    if require(terms_version, "terms_version") != program.terms_version:
        raise FailedPrecondition(
            f"the program's terms are now version {program.terms_version}",
            reason="TERMS_VERSION_MISMATCH",
            metadata={"terms_version": program.terms_version})
    chosen = _tokens(purposes, "purposes", MAX_PURPOSES, _TOKEN)
    unknown = [p for p in chosen if p not in program.consent_purposes]
    if unknown:
        raise InvalidArgument(f"purposes {unknown} are not purposes of this program",
                              field="purposes", reason="PURPOSE_UNKNOWN")
    return chosen


def parse_date(value: str, field: str, today: date) -> date | None:
    """An optional "YYYY-MM-DD" in the past (or today)."""
    value = value.strip()
    if not value:
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"{field} must be a date like 1990-05-17", field=field) from None
    if parsed > today or parsed.year < 1900:
        raise InvalidArgument(f"{field} must be a past date after 1900", field=field)
    return parsed


def is_dormant(abnormal: bool, last_active: datetime | None, member_since: datetime,
               dormant_after_days: int, now: datetime) -> bool:
    """Abnormal accounts, and accounts not active for dormant_after_days, are dormant."""
    if abnormal:
        return True
    seen = last_active or member_since
    return seen < now - timedelta(days=dormant_after_days)

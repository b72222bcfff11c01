"""Dashboard figures and the rules of date ranges (days in the brand's time zone)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from libs.errors import InvalidArgument

MAX_RANGE_DAYS = 366


@dataclass(frozen=True)
class Overview:
    lv0_valid: int
    lv0_dormant: int
    card_valid: int
    card_dormant: int
    card_valid_by_level: dict[int, int]

    @property
    def card_total(self) -> int:
        return self.card_valid + self.card_dormant


@dataclass
class DayMetrics:
    day: date
    new_members: int = 0
    new_members_by_source: dict[str, int] = field(default_factory=dict)
    new_card_members: int = 0
    lv0_members: int = 0
    card_members: int = 0
    buyers: int = 0
    new_buyers: int = 0
    member_orders: int = 0
    member_order_cents: int = 0
    non_member_orders: int = 0
    non_member_order_cents: int = 0
    # Of lv0_members / card_members, those dormant at the end of the day.
    lv0_dormant: int = 0
    card_dormant: int = 0

    @property
    def returning_buyers(self) -> int:
        return self.buyers - self.new_buyers

    @property
    def lv0_valid(self) -> int:
        return self.lv0_members - self.lv0_dormant

    @property
    def card_valid(self) -> int:
        return self.card_members - self.card_dormant


@dataclass(frozen=True)
class RangeSummary:
    member_buyers: int
    member_repeat_buyers: int
    non_member_buyers: int
    non_member_repeat_buyers: int
    member_orders: int
    member_order_cents: int
    non_member_orders: int
    non_member_order_cents: int


def basis_points(part: int, whole: int) -> int:
    return round(part * 10_000 / whole) if whole else 0


def average(total: int, count: int) -> int:
    return round(total / count) if count else 0


def parse_day(value: str, field_name: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidArgument(f"{field_name} must be a date YYYY-MM-DD", field=field_name,
                              reason="INVALID_DATE") from None


def date_range(start: str, end: str) -> tuple[date, date]:
    first, last = parse_day(start, "start_date"), parse_day(end, "end_date")
    if last < first:
        raise InvalidArgument("end_date must not be before start_date", field="end_date",
                              reason="DATE_RANGE_EMPTY")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise InvalidArgument(f"a range has at most {MAX_RANGE_DAYS} days", field="end_date",
                              reason="DATE_RANGE_TOO_LONG")
    return first, last


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Local midnight of `day` as an aware datetime."""
    return datetime.combine(day, time(0), zone)


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]

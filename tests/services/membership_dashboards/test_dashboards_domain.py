"""Dashboard figures and date ranges without a database (`dashboards/domain/metrics.py`)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from libs.errors import InvalidArgument
from services.membership.dashboards.domain.metrics import (
    MAX_RANGE_DAYS,
    DayMetrics,
    Overview,
    average,
    basis_points,
    date_range,
    day_start,
    days_between,
    parse_day,
)


def test_rates_and_averages_round_and_are_zero_on_an_empty_base() -> None:
    assert basis_points(1, 3) == 3333
    assert basis_points(2, 3) == 6667
    assert basis_points(5, 0) == 0
    assert average(1000, 3) == 333
    assert average(1000, 0) == 0


def test_derived_figures() -> None:
    day = DayMetrics(date(2026, 3, 1), lv0_members=10, lv0_dormant=3, card_members=7,
                     card_dormant=2, buyers=9, new_buyers=4)
    assert (day.lv0_valid, day.card_valid, day.returning_buyers) == (7, 5, 5)
    assert Overview(1, 2, 3, 4, {1: 3}).card_total == 7


def test_a_day_is_yyyy_mm_dd_naming_the_field() -> None:
    assert parse_day(" 2026-03-01 ", "start_date") == date(2026, 3, 1)
    with pytest.raises(InvalidArgument) as error:
        parse_day("03/01/2026", "end_date")
    assert (error.value.field, error.value.reason) == ("end_date", "INVALID_DATE")


def test_a_range_is_ordered_and_at_most_a_leap_year_long() -> None:
    first = date(2025, 1, 1)
    last = date.fromordinal(first.toordinal() + MAX_RANGE_DAYS - 1)
    assert date_range(first.isoformat(), last.isoformat()) == (first, last)
    assert date_range("2026-03-01", "2026-03-01") == (date(2026, 3, 1), date(2026, 3, 1))
    with pytest.raises(InvalidArgument) as too_long:
        date_range(first.isoformat(), date.fromordinal(last.toordinal() + 1).isoformat())
    assert too_long.value.reason == "DATE_RANGE_TOO_LONG"
    with pytest.raises(InvalidArgument) as empty:
        date_range("2026-03-02", "2026-03-01")
    assert (empty.value.field, empty.value.reason) == ("end_date", "DATE_RANGE_EMPTY")


def test_a_day_starts_at_local_midnight() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    start = day_start(date(2026, 3, 1), shanghai)
    assert start == datetime(2026, 2, 28, 16, 0, tzinfo=ZoneInfo("UTC"))
    paris, utc = ZoneInfo("Europe/Paris"), ZoneInfo("UTC")
    # The day the clocks go forward is 23 hours long (compared as instants, in UTC).
    assert (day_start(date(2026, 3, 30), paris).astimezone(utc)
            - day_start(date(2026, 3, 29), paris).astimezone(utc)).total_seconds() == 23 * 3600


def test_days_between_includes_both_ends() -> None:
    assert days_between(date(2026, 2, 27), date(2026, 3, 1)) == [
        date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1)]
    assert days_between(date(2026, 3, 1), date(2026, 3, 1)) == [date(2026, 3, 1)]

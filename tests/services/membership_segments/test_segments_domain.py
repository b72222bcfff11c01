"""Segment rules without a database (`segments/domain/rules.py`): validation names the place
in the tree, the storage form round-trips, and the calendar helpers hold on their edges."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from libs.errors import InvalidArgument
from services.membership.segments.domain.rules import (
    FIELDS,
    MAX_CONDITIONS,
    MAX_DEPTH,
    Condition,
    Group,
    Rule,
    age_on,
    from_dict,
    operators_of,
    to_dict,
    upcoming_month_days,
    validate,
    years_before,
)

GOLD = Condition("tier", "gte", number=2)


def refused(rule: Rule | None) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as error:
        validate(rule)
    return error.value.field, error.value.reason


def test_a_valid_tree_comes_back_unchanged() -> None:
    rule = Group("and", (GOLD, Group("or", (Condition("gender", "eq", values=("female",)),
                                            Condition("follows_shop", "in",
                                                      values=("shp_1",))))))
    assert validate(rule) is rule


def test_a_rule_is_required() -> None:
    assert refused(None) == ("rule", "RULE_REQUIRED")


@pytest.mark.parametrize(("rule", "field", "reason"), [
    (Group("xor", (GOLD,)), "rule.group.operator", "GROUP_OPERATOR_REQUIRED"),
    (Group("and", ()), "rule.group.rules", "EMPTY_GROUP"),
    (Group("and", (GOLD, Condition("shoe_size", "eq"))), "rule.group.rules[1].condition.field",
     "UNKNOWN_FIELD"),
    (Condition("gender", "gte", number=1), "rule.condition.operator",
     "OPERATOR_NOT_APPLICABLE"),
    (Condition("behaviour_purchased", "within_days", days=0), "rule.condition.days",
     "DAYS_OUT_OF_RANGE"),
    (Condition("birthday", "within_days", days=367), "rule.condition.days",
     "DAYS_OUT_OF_RANGE"),
    (Condition("order_amount", "gte", number=-1), "rule.condition.number",
     "NUMBER_OUT_OF_RANGE"),
    (Condition("order_count", "between", number=5, number_to=4), "rule.condition.number_to",
     "NUMBER_OUT_OF_RANGE"),
    (Condition("gender", "in"), "rule.condition.values", "VALUES_REQUIRED"),
    (Condition("gender", "eq", values=("female", "male")), "rule.condition.values",
     "VALUES_COUNT"),
    (Condition("gender", "in", values=("female", "other")), "rule.condition.values[1]",
     "UNKNOWN_VALUE"),
    (Condition("tier", "in", values=("2", "gold")), "rule.condition.values[1]",
     "UNKNOWN_VALUE"),
    (Condition("follows_shop", "in", values=(" ",)), "rule.condition.values[0]",
     "UNKNOWN_VALUE"),
    (Condition("join_time", "after"), "rule.condition.time_from", "TIME_REQUIRED"),
    (Condition("join_time", "before"), "rule.condition.time_to", "TIME_REQUIRED"),
    (Condition("join_time", "between", time_from=datetime(2026, 1, 2, tzinfo=UTC),
               time_to=datetime(2026, 1, 1, tzinfo=UTC)), "rule.condition.time_to",
     "TIME_RANGE_EMPTY"),
])
def test_each_refusal_names_its_place_in_the_tree(rule: Rule, field: str, reason: str) -> None:
    assert refused(rule) == (field, reason)


def test_depth_and_size_are_bounded() -> None:
    deep: Rule = GOLD
    for _ in range(MAX_DEPTH):
        deep = Group("and", (deep,))
    assert validate(deep) is deep
    assert refused(Group("and", (deep,)))[1] == "RULE_TOO_DEEP"
    assert validate(Group("or", (GOLD,) * MAX_CONDITIONS))
    assert refused(Group("or", (GOLD,) * (MAX_CONDITIONS + 1))) == ("rule", "RULE_TOO_LARGE")


def test_every_field_has_operators_and_extras_apply_to_their_field_only() -> None:
    assert all(operators_of(name) for name in FIELDS)
    assert "in" in operators_of("tier") and "in" not in operators_of("order_count")
    assert "not_within_days" in operators_of("last_order_time")
    assert "not_within_days" not in operators_of("join_time")


def test_the_storage_form_round_trips() -> None:
    rule = Group("or", (GOLD, Condition("join_time", "between",
                                        time_from=datetime(2026, 1, 1, tzinfo=UTC),
                                        time_to=datetime(2026, 2, 1, tzinfo=UTC)),
                        Group("and", (Condition("tier", "in", values=("0", "3")),))))
    assert from_dict(to_dict(rule)) == rule


def test_years_before_keeps_the_calendar_day_and_folds_29_february() -> None:
    assert years_before(date(2026, 3, 1), 18) == date(2008, 3, 1)
    assert years_before(date(2024, 2, 29), 1) == date(2023, 2, 28)


def test_age_turns_on_the_birthday_itself() -> None:
    born = date(1990, 5, 17)
    assert age_on(born, date(2026, 5, 16)) == 35
    assert age_on(born, date(2026, 5, 17)) == 36


def test_upcoming_birthdays_wrap_the_year_end() -> None:
    assert upcoming_month_days(date(2025, 12, 30), 3) == [101, 102, 1230, 1231]
    assert upcoming_month_days(date(2026, 5, 17), 0) == [517]

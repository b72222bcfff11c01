"""Segment rule trees: AND / OR groups of conditions over member data, and their validation.

Every refusal names the place in the tree, e.g. `rule.group.rules[1].condition.operator`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from libs.errors import InvalidArgument

MAX_DEPTH = 6
MAX_CONDITIONS = 50
MAX_VALUES = 500
MAX_DAYS = 3660
GENDERS = ("male", "female", "unknown")


class Kind(enum.Enum):
    NUMBER = "number"
    BIRTHDAY = "birthday"
    GENDER = "gender"
    SHOP = "shop"
    TIME = "time"
    BEHAVIOUR = "behaviour"


FIELDS: dict[str, Kind] = {
    "age": Kind.NUMBER,
    "birthday": Kind.BIRTHDAY,
    "gender": Kind.GENDER,
    "follows_shop": Kind.SHOP,
    "join_time": Kind.TIME,
    "tier": Kind.NUMBER,
    "order_amount": Kind.NUMBER,
    "order_count": Kind.NUMBER,
    "points_balance": Kind.NUMBER,
    "last_order_time": Kind.TIME,
    "behaviour_followed": Kind.BEHAVIOUR,
    "behaviour_cart_added": Kind.BEHAVIOUR,
    "behaviour_purchased": Kind.BEHAVIOUR,
}
OPERATORS: dict[Kind, tuple[str, ...]] = {
    Kind.NUMBER: ("eq", "gte", "lte", "between"),
    Kind.BIRTHDAY: ("this_month", "within_days"),
    Kind.GENDER: ("eq", "in"),
    Kind.SHOP: ("in",),
    Kind.TIME: ("within_days", "before", "after", "between"),
    Kind.BEHAVIOUR: ("within_days", "not_within_days"),
}
# Field-specific extras on top of their kind's operators.
EXTRA_OPERATORS: dict[str, tuple[str, ...]] = {
    "tier": ("in",),
    "last_order_time": ("not_within_days",),
}


def operators_of(field_name: str) -> tuple[str, ...]:
    return OPERATORS[FIELDS[field_name]] + EXTRA_OPERATORS.get(field_name, ())


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    number: int = 0
    number_to: int = 0
    days: int = 0
    values: tuple[str, ...] = ()
    time_from: datetime | None = None
    time_to: datetime | None = None


@dataclass(frozen=True)
class Group:
    operator: str  # "and" | "or"
    rules: tuple[Rule, ...] = field(default_factory=tuple)


Rule = Condition | Group


def _bad(place: str, message: str, reason: str) -> InvalidArgument:
    return InvalidArgument(f"{place}: {message}", field=place, reason=reason)


def validate(rule: Rule | None, place: str = "rule") -> Rule:
    """Check the whole tree; return it unchanged when valid."""
    if rule is None:
        raise _bad(place, "a rule is required", "RULE_REQUIRED")
    count = _validate(rule, place, 1)
    if count > MAX_CONDITIONS:
        raise _bad(place, f"at most {MAX_CONDITIONS} conditions", "RULE_TOO_LARGE")
    return rule


def _validate(rule: Rule, place: str, depth: int) -> int:
    if isinstance(rule, Group):
        here = f"{place}.group"
        if depth > MAX_DEPTH:
            raise _bad(here, f"groups nest at most {MAX_DEPTH} deep", "RULE_TOO_DEEP")
        if rule.operator not in ("and", "or"):
            raise _bad(f"{here}.operator", "must be AND or OR", "GROUP_OPERATOR_REQUIRED")
        if not rule.rules:
            raise _bad(f"{here}.rules", "a group needs at least one rule", "EMPTY_GROUP")
        return sum(_validate(child, f"{here}.rules[{i}]", depth + 1)
                   for i, child in enumerate(rule.rules))
    _validate_condition(rule, f"{place}.condition")
    return 1


def _validate_condition(c: Condition, here: str) -> None:
    if c.field not in FIELDS:
        raise InvalidArgument(f"{here}.field: unknown field {c.field!r}; known: "
                              f"{', '.join(sorted(FIELDS))}", field=f"{here}.field",
                              reason="UNKNOWN_FIELD", metadata={"value": c.field})
    kind = FIELDS[c.field]
    allowed = operators_of(c.field)
    if c.operator not in allowed:
        raise InvalidArgument(f"{here}.operator: {c.operator!r} does not apply to {c.field} "
                              f"({kind.value}); use one of {', '.join(allowed)}",
                              field=f"{here}.operator", reason="OPERATOR_NOT_APPLICABLE",
                              metadata={"value": c.operator, "field_name": c.field})
    op = c.operator
    if op in ("within_days", "not_within_days") and not 0 < c.days <= MAX_DAYS:
        raise _bad(f"{here}.days", f"must be between 1 and {MAX_DAYS}", "DAYS_OUT_OF_RANGE")
    if kind is Kind.BIRTHDAY and op == "within_days" and c.days > 366:
        raise _bad(f"{here}.days", "must be between 1 and 366", "DAYS_OUT_OF_RANGE")
    if kind is Kind.NUMBER and op != "in" and (
            c.number < 0 or (op == "between" and c.number_to < c.number)):
        raise _bad(f"{here}.number_to" if op == "between" else f"{here}.number",
                       "must not be negative, and number_to not below number",
                       "NUMBER_OUT_OF_RANGE")
    if op == "in" or (kind is Kind.GENDER and op == "eq"):
        if not c.values:
            raise _bad(f"{here}.values", "at least one value is required", "VALUES_REQUIRED")
        if len(c.values) > MAX_VALUES or (op == "eq" and len(c.values) != 1):
            raise _bad(f"{here}.values", "eq takes exactly one value; in at most "
                       f"{MAX_VALUES}", "VALUES_COUNT")
        for index, value in enumerate(c.values):
            if kind is Kind.GENDER and value not in GENDERS:
                raise _bad(f"{here}.values[{index}]", f"gender is one of {', '.join(GENDERS)}",
                           "UNKNOWN_VALUE")
            if c.field == "tier" and not (value.isascii() and value.isdigit()
                                          and int(value) <= 1000):
                raise _bad(f"{here}.values[{index}]", "a tier is a level number (0 for LV0)",
                           "UNKNOWN_VALUE")
            if kind is Kind.SHOP and not value.strip():
                raise _bad(f"{here}.values[{index}]", "a shop id is required", "UNKNOWN_VALUE")
    if kind is Kind.TIME and op == "between" and c.time_to is None:
        raise _bad(f"{here}.time_to", "between needs time_to", "TIME_REQUIRED")
    if kind is Kind.TIME and op in ("after", "between") and c.time_from is None:
        raise _bad(f"{here}.time_from", f"{op} needs time_from", "TIME_REQUIRED")
    if kind is Kind.TIME and op == "before" and c.time_to is None:
        raise _bad(f"{here}.time_to", "before needs time_to", "TIME_REQUIRED")
    if op == "between" and kind is Kind.TIME and c.time_from and c.time_to \
            and c.time_to <= c.time_from:
        raise _bad(f"{here}.time_to", "must be after time_from", "TIME_RANGE_EMPTY")


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def age_on(birthday: date, today: date) -> int:
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month,
                                                                       birthday.day))


def upcoming_month_days(today: date, days: int) -> list[int]:
    """month * 100 + day for today .. today + days, the days a 'birthday within N days' hits."""
    return sorted({(d.month * 100 + d.day) for d in (today + timedelta(days=i)
                                                     for i in range(days + 1))})


# --- storage form -----------------------------------------------------------------------


def to_dict(rule: Rule) -> dict[str, Any]:
    if isinstance(rule, Group):
        return {"group": {"operator": rule.operator, "rules": [to_dict(r) for r in rule.rules]}}
    return {"condition": {
        "field": rule.field, "operator": rule.operator, "number": rule.number,
        "number_to": rule.number_to, "days": rule.days, "values": list(rule.values),
        "time_from": rule.time_from.isoformat() if rule.time_from else None,
        "time_to": rule.time_to.isoformat() if rule.time_to else None}}


def from_dict(data: dict[str, Any]) -> Rule:
    if "group" in data:
        group = data["group"]
        return Group(group["operator"], tuple(from_dict(r) for r in group["rules"]))
    c = data["condition"]
    return Condition(c["field"], c["operator"], c["number"], c["number_to"], c["days"],
                     tuple(c["values"]),
                     datetime.fromisoformat(c["time_from"]) if c["time_from"] else None,
                     datetime.fromisoformat(c["time_to"]) if c["time_to"] else None)

"""Compiles a validated rule tree into parameterised SQL over membership's tables.

Input values only ever travel as bind parameters ($n); the SQL text is assembled from fixed
fragments chosen by field and operator names that validation has checked against a closed list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from services.membership.segments.domain.rules import (
    Condition,
    Group,
    Rule,
    upcoming_month_days,
    years_before,
)

# field -> (table alias, column); members without a stats / points row read as 0.
_NUMBER_COLUMNS = {
    "tier": ("m", "level"),
    "order_amount": ("s", "paid_cents"),
    "order_count": ("s", "order_count"),
    "points_balance": ("p", "available"),
}
_TIME_COLUMNS = {"join_time": "m.joined_at", "last_order_time": "s.last_order_at"}
_BEHAVIOURS = {"behaviour_followed": "followed", "behaviour_cart_added": "cart_added",
               "behaviour_purchased": "purchased"}


@dataclass
class CompiledQuery:
    """`FROM ... WHERE ...` of a segment, with its parameters; $1 is the brand id."""

    from_where: str
    params: list[Any] = field(default_factory=list)

    def count_sql(self) -> str:
        return f"SELECT count(*) {self.from_where}"

    def for_account(self, account_id: str) -> CompiledQuery:
        """The same query narrowed to one account."""
        return CompiledQuery(f"{self.from_where} AND m.account_id = ${len(self.params) + 1}",
                             [*self.params, account_id])


class _Compiler:
    def __init__(self, brand_id: str, now: datetime, today: date, *, inner_stats: bool,
                 inner_points: bool) -> None:
        self.params: list[Any] = [brand_id]
        self.now = now
        self.today = today
        self.uses_stats = False
        self.uses_points = False
        # With an inner join every joined row exists: compare the bare column, which keeps
        # its index and statistics usable.
        self.inner = {"s": inner_stats, "p": inner_points}

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def rule(self, rule: Rule) -> str:
        if isinstance(rule, Group):
            joiner = " AND " if rule.operator == "and" else " OR "
            return "(" + joiner.join(self.rule(child) for child in rule.rules) + ")"
        return self.condition(rule)

    def condition(self, c: Condition) -> str:
        f, op = c.field, c.operator
        if f in _NUMBER_COLUMNS:
            alias, name = _NUMBER_COLUMNS[f]
            self.uses_stats |= alias == "s"
            self.uses_points |= alias == "p"
            column = (f"{alias}.{name}" if alias == "m" or self.inner[alias]
                      else f"coalesce({alias}.{name}, 0)")
            return self.number(column, c)
        if f == "age":
            return self.age(c)
        if f == "birthday":
            if op == "this_month":
                return f"extract(month FROM m.birthday) = {self.bind(self.today.month)}"
            codes = upcoming_month_days(self.today, c.days)
            return ("(extract(month FROM m.birthday) * 100 + extract(day FROM m.birthday))::int"
                    f" = ANY({self.bind(codes)}::int[])")
        if f == "gender":
            if len(c.values) == 1:
                return f"m.gender = {self.bind(c.values[0])}"
            return f"m.gender = ANY({self.bind(list(c.values))}::text[])"
        if f == "follows_shop":
            return ("EXISTS (SELECT 1 FROM follows f WHERE f.brand_id = m.brand_id "
                    "AND f.account_id = m.account_id "
                    f"AND f.shop_id = ANY({self.bind(list(c.values))}::text[]))")
        if f in _TIME_COLUMNS:
            column = _TIME_COLUMNS[f]
            self.uses_stats |= column.startswith("s.")
            return self.time(column, c)
        kind = _BEHAVIOURS[f]
        exists = ("EXISTS (SELECT 1 FROM member_behaviours b WHERE b.brand_id = m.brand_id "
                  f"AND b.account_id = m.account_id AND b.kind = {self.bind(kind)} "
                  f"AND b.occurred_at >= {self.bind(self.now - timedelta(days=c.days))})")
        return exists if op == "within_days" else f"NOT {exists}"

    def number(self, column: str, c: Condition) -> str:
        if c.operator == "eq":
            return f"{column} = {self.bind(c.number)}"
        if c.operator == "gte":
            return f"{column} >= {self.bind(c.number)}"
        if c.operator == "lte":
            return f"{column} <= {self.bind(c.number)}"
        if c.operator == "in":
            return f"{column} = ANY({self.bind([int(v) for v in c.values])}::int[])"
        return f"{column} BETWEEN {self.bind(c.number)} AND {self.bind(c.number_to)}"

    def age(self, c: Condition) -> str:
        # age >= n  <=>  born on or before today - n years; age <= n  <=>  born after
        # today - (n + 1) years. Dates as parameters keep the condition index-friendly.
        low = {"eq": c.number, "gte": c.number, "between": c.number}.get(c.operator)
        high = {"eq": c.number, "lte": c.number, "between": c.number_to}.get(c.operator)
        parts = []
        if low is not None:
            parts.append(f"m.birthday <= {self.bind(years_before(self.today, low))}")
        if high is not None:
            parts.append(f"m.birthday > {self.bind(years_before(self.today, high + 1))}")
        return "(" + " AND ".join(parts) + ")"

    def time(self, column: str, c: Condition) -> str:
        op = c.operator
        if op == "within_days":
            return f"{column} >= {self.bind(self.now - timedelta(days=c.days))}"
        if op == "not_within_days":
            cutoff = self.bind(self.now - timedelta(days=c.days))
            return f"({column} IS NULL OR {column} < {cutoff})"
        if op == "before":
            return f"{column} < {self.bind(c.time_to)}"
        if op == "after":
            return f"{column} >= {self.bind(c.time_from)}"
        return f"({column} >= {self.bind(c.time_from)} AND {column} < {self.bind(c.time_to)})"


_STATS_FIELDS = ("order_amount", "order_count", "last_order_time")


def requires_row(rule: Rule, fields: tuple[str, ...]) -> bool:
    """True when the rule cannot match a member who has no row behind `fields` (every such
    field then reads as 0 or NULL); the join may then be an inner join, which lets the planner
    start from the joined table's index."""
    if isinstance(rule, Group):
        results = [requires_row(child, fields) for child in rule.rules]
        return any(results) if rule.operator == "and" else all(results)
    if rule.field not in fields:
        return False
    op = rule.operator
    if rule.field in _TIME_COLUMNS:
        return op != "not_within_days"
    if op in ("eq", "gte", "between"):
        return rule.number > 0
    if op == "in":
        return "0" not in rule.values
    return False  # lte: 0 always qualifies


def compile_segment(rule: Rule, brand_id: str, now: datetime, today: date, *,
                    with_profile: bool = False) -> CompiledQuery:
    """Valid members (live, not dormant) of the brand that the rule matches."""
    inner_stats = requires_row(rule, _STATS_FIELDS)
    inner_points = requires_row(rule, ("points_balance",))
    compiler = _Compiler(brand_id, now, today, inner_stats=inner_stats,
                         inner_points=inner_points)
    where = compiler.rule(rule)
    joins = ""
    if compiler.uses_stats or with_profile:
        kind = "JOIN" if inner_stats else "LEFT JOIN"
        joins += (f" {kind} member_stats s ON s.brand_id = m.brand_id "
                  "AND s.account_id = m.account_id")
    if compiler.uses_points or with_profile:
        kind = "JOIN" if inner_points else "LEFT JOIN"
        joins += (f" {kind} member_points p ON p.brand_id = m.brand_id "
                  "AND p.account_id = m.account_id")
    return CompiledQuery(
        f"FROM members m{joins} WHERE m.brand_id = $1 AND m.status <> 'ended' "
        f"AND NOT m.dormant AND {where}", compiler.params)

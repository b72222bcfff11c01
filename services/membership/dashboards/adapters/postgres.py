"""Dashboard queries over membership's tables, and the daily pre-aggregation."""

from __future__ import annotations

import json
from datetime import date, datetime

from libs.db import Connection
from services.membership.dashboards.domain.metrics import (
    DayMetrics,
    Overview,
    RangeSummary,
    days_between,
)

# Orders placed while the account held a card of the brand (by the order's paid time).
_ORDERS_IN_RANGE = """
    SELECT o.account_id, o.paid_cents, (o.paid_at AT TIME ZONE $2)::date AS day,
           EXISTS (SELECT 1 FROM members m WHERE m.brand_id = o.brand_id
                   AND m.account_id = o.account_id AND m.joined_at <= o.paid_at
                   AND (m.ended_at IS NULL OR m.ended_at > o.paid_at)) AS member
    FROM orders o WHERE o.brand_id = $1 AND o.paid_at >= $3 AND o.paid_at < $4
"""


# Dormancy at the end of each day. A member's state at time t: 0 (not a member, or valid),
# 1 (dormant LV0) or 2 (dormant card member), from the membership's dates and its latest
# dormancy change at or before t. The baseline is the state just before the range; within it,
# every candidate member (a dormancy change, card opening or end in the range) contributes
# the difference of its state across each of its events, on the event's local day.
_STATE_AT = """
    CASE WHEN coalesce((SELECT h.dormant FROM member_dormancy_changes h
                        WHERE h.member_id = m.member_id AND h.changed_at <= {t}
                        ORDER BY h.changed_at DESC, h.seq DESC LIMIT 1), false)
         THEN CASE WHEN m.ended_at <= {t} THEN 0 WHEN m.joined_at <= {t} THEN 2
                   WHEN m.member_since <= {t} THEN 1 ELSE 0 END
         ELSE 0 END
"""
# The baseline in one pass over the brand's history: each member's latest change before the
# range (DISTINCT ON over an ordered scan), joined to the member once. (Looking the latest
# change up per member, twice, took 0.5 s at 20,000 members and grew with every dormant one.)
_DORMANT_BASELINE = """
    SELECT state, count(*) AS n FROM (
        SELECT CASE WHEN l.dormant
                    THEN CASE WHEN m.ended_at < $2 THEN 0 WHEN m.joined_at < $2 THEN 2
                              WHEN m.member_since < $2 THEN 1 ELSE 0 END
                    ELSE 0 END AS state
        FROM (SELECT DISTINCT ON (member_id) member_id, dormant FROM member_dormancy_changes
              WHERE brand_id = $1 AND changed_at < $2
              ORDER BY member_id, changed_at DESC, seq DESC) l
        JOIN members m ON m.brand_id = $1 AND m.member_id = l.member_id
    ) s WHERE state > 0 GROUP BY state
"""
_DORMANT_CHANGES = f"""
    WITH candidate AS (
        SELECT member_id, changed_at AS t FROM member_dormancy_changes
        WHERE brand_id = $1 AND changed_at >= $3 AND changed_at < $4
        UNION SELECT member_id, joined_at FROM members
        WHERE brand_id = $1 AND joined_at >= $3 AND joined_at < $4
        UNION SELECT member_id, ended_at FROM members
        WHERE brand_id = $1 AND ended_at >= $3 AND ended_at < $4),
    event AS (
        SELECT member_id, t FROM candidate
        UNION SELECT member_id, $3::timestamptz - interval '1 microsecond' FROM candidate),
    state AS (
        SELECT e.member_id, e.t, {_STATE_AT.format(t="e.t")} AS state
        FROM event e JOIN members m ON m.member_id = e.member_id),
    step AS (
        SELECT t, state, lag(state) OVER (PARTITION BY member_id ORDER BY t) AS prev
        FROM state)
    SELECT (t AT TIME ZONE $2)::date AS day,
           sum((state = 1)::int - (prev = 1)::int) AS lv0,
           sum((state = 2)::int - (prev = 2)::int) AS card
    FROM step WHERE prev IS NOT NULL GROUP BY 1
"""


class DashboardRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def time_zone(self, brand_id: str) -> str | None:
        zone = await self._conn.fetchval("SELECT time_zone FROM brands WHERE brand_id = $1",
                                         brand_id)
        return str(zone) if zone is not None else None

    async def overview(self, brand_id: str) -> Overview:
        # The counters migration 0105's triggers keep (a brand scan costs ~1 s per 10M).
        rows = await self._conn.fetch(
            "SELECT status, level, dormant, sum(n)::bigint AS n FROM member_counts "
            "WHERE brand_id = $1 GROUP BY status, level, dormant HAVING sum(n) <> 0",
            brand_id)
        lv0 = {True: 0, False: 0}
        card = {True: 0, False: 0}
        by_level: dict[int, int] = {}
        for r in rows:
            target = lv0 if r["status"] == "lv0" else card
            target[r["dormant"]] += r["n"]
            if r["status"] == "card_member" and not r["dormant"]:
                by_level[r["level"]] = by_level.get(r["level"], 0) + r["n"]
        return Overview(lv0[False], lv0[True], card[False], card[True], by_level)

    async def _totals_before(self, brand_id: str, start: datetime) -> tuple[int, int, int, int]:
        """LV0 and card members, and the dormant ones of each, just before `start`: two passes
        over the brand's members and dormancy history."""
        base = await self._conn.fetchrow(
            "SELECT count(*) FILTER (WHERE member_since < $2) AS started, "
            "count(*) FILTER (WHERE joined_at < $2) AS carded, "
            "count(*) FILTER (WHERE ended_at < $2 AND joined_at IS NULL) AS lv0_ended, "
            "count(*) FILTER (WHERE ended_at < $2 AND joined_at IS NOT NULL) AS card_ended "
            "FROM members WHERE brand_id = $1", brand_id, start)
        assert base is not None
        dormant = {r["state"]: r["n"]
                   for r in await self._conn.fetch(_DORMANT_BASELINE, brand_id, start)}
        return (base["started"] - base["carded"] - base["lv0_ended"],
                base["carded"] - base["card_ended"], dormant.get(1, 0), dormant.get(2, 0))

    async def compute_days(self, brand_id: str, zone: str, first: date, last: date,
                           start: datetime, end: datetime,
                           previous: DayMetrics | None = None) -> list[DayMetrics]:
        """Every metric of each local day in [first, last]; [start, end) are its bounds.
        `previous`, the stored day before `first`, gives the totals the range starts from
        (otherwise counted from the brand's whole history)."""
        days = {d: DayMetrics(d) for d in days_between(first, last)}
        for r in await self._conn.fetch(
                "SELECT (member_since AT TIME ZONE $2)::date AS day, source_channel, "
                "count(*) AS n FROM members WHERE brand_id = $1 AND member_since >= $3 "
                "AND member_since < $4 GROUP BY 1, 2", brand_id, zone, start, end):
            metrics = days[r["day"]]
            metrics.new_members += r["n"]
            metrics.new_members_by_source[r["source_channel"]] = r["n"]
        changes: dict[date, dict[str, int]] = {}
        for column, kind, extra in (("joined_at", "carded", ""),
                                    ("ended_at", "lv0_ended", "AND joined_at IS NULL"),
                                    ("ended_at", "card_ended", "AND joined_at IS NOT NULL")):
            for r in await self._conn.fetch(
                    f"SELECT ({column} AT TIME ZONE $2)::date AS day, count(*) AS n "
                    f"FROM members WHERE brand_id = $1 AND {column} >= $3 AND {column} < $4 "
                    f"{extra} GROUP BY 1", brand_id, zone, start, end):
                changes.setdefault(r["day"], {})[kind] = r["n"]
        # Totals at each day's end: those at the end of the day before the range plus what
        # each day added and removed (LV0: started - carded - ended without a card).
        lv0, card, lv0_dormant, card_dormant = (
            (previous.lv0_members, previous.card_members, previous.lv0_dormant,
             previous.card_dormant) if previous is not None
            else await self._totals_before(brand_id, start))
        moves = {r["day"]: (r["lv0"], r["card"])
                 for r in await self._conn.fetch(_DORMANT_CHANGES, brand_id, zone, start, end)}
        for day in sorted(days):
            metrics = days[day]
            change = changes.get(day, {})
            metrics.new_card_members = change.get("carded", 0)
            lv0 += (metrics.new_members - change.get("carded", 0)
                    - change.get("lv0_ended", 0))
            card += change.get("carded", 0) - change.get("card_ended", 0)
            lv0_move, card_move = moves.get(day, (0, 0))
            lv0_dormant += lv0_move
            card_dormant += card_move
            metrics.lv0_members, metrics.card_members = lv0, card
            metrics.lv0_dormant, metrics.card_dormant = lv0_dormant, card_dormant
        for r in await self._conn.fetch(
                f"""
                WITH o AS ({_ORDERS_IN_RANGE}),
                first_order AS (
                    SELECT account_id, min(paid_at) AS first_at FROM orders
                    WHERE brand_id = $1 AND account_id IN (SELECT account_id FROM o)
                    GROUP BY account_id)
                SELECT o.day, count(DISTINCT o.account_id) AS buyers,
                       count(DISTINCT o.account_id) FILTER (
                           WHERE (f.first_at AT TIME ZONE $2)::date = o.day) AS new_buyers,
                       count(*) FILTER (WHERE o.member) AS member_orders,
                       coalesce(sum(o.paid_cents) FILTER (WHERE o.member), 0)::bigint
                           AS member_cents,
                       count(*) FILTER (WHERE NOT o.member) AS other_orders,
                       coalesce(sum(o.paid_cents) FILTER (WHERE NOT o.member), 0)::bigint
                           AS other_cents
                FROM o JOIN first_order f USING (account_id) GROUP BY o.day
                """, brand_id, zone, start, end):
            metrics = days[r["day"]]
            metrics.buyers, metrics.new_buyers = r["buyers"], r["new_buyers"]
            metrics.member_orders, metrics.member_order_cents = (r["member_orders"],
                                                                 r["member_cents"])
            metrics.non_member_orders, metrics.non_member_order_cents = (r["other_orders"],
                                                                         r["other_cents"])
        return [days[d] for d in sorted(days)]

    async def summary(self, brand_id: str, zone: str, start: datetime,
                      end: datetime) -> RangeSummary:
        r = await self._conn.fetchrow(
            f"""
            WITH o AS ({_ORDERS_IN_RANGE}),
            per_buyer AS (
                SELECT account_id, member, count(*) AS orders, sum(paid_cents)::bigint AS cents
                FROM o GROUP BY account_id, member)
            SELECT count(*) FILTER (WHERE member) AS member_buyers,
                   count(*) FILTER (WHERE member AND orders >= 2) AS member_repeat,
                   count(*) FILTER (WHERE NOT member) AS other_buyers,
                   count(*) FILTER (WHERE NOT member AND orders >= 2) AS other_repeat,
                   coalesce(sum(orders) FILTER (WHERE member), 0)::bigint AS member_orders,
                   coalesce(sum(cents) FILTER (WHERE member), 0)::bigint AS member_cents,
                   coalesce(sum(orders) FILTER (WHERE NOT member), 0)::bigint AS other_orders,
                   coalesce(sum(cents) FILTER (WHERE NOT member), 0)::bigint AS other_cents
            FROM per_buyer
            """, brand_id, zone, start, end)
        assert r is not None
        return RangeSummary(r["member_buyers"], r["member_repeat"], r["other_buyers"],
                            r["other_repeat"], int(r["member_orders"]), int(r["member_cents"]),
                            int(r["other_orders"]), int(r["other_cents"]))

    async def stored_days(self, brand_id: str, first: date, last: date) -> list[DayMetrics]:
        rows = await self._conn.fetch(
            "SELECT * FROM dashboard_daily WHERE brand_id = $1 AND day BETWEEN $2 AND $3 "
            "AND lv0_dormant IS NOT NULL AND card_dormant IS NOT NULL", brand_id, first, last)
        return [DayMetrics(r["day"], r["new_members"], json.loads(r["new_members_by_source"]),
                           r["new_card_members"], r["lv0_members"], r["card_members"],
                           r["buyers"], r["new_buyers"], r["member_orders"],
                           r["member_order_cents"], r["non_member_orders"],
                           r["non_member_order_cents"], r["lv0_dormant"], r["card_dormant"])
                for r in rows]

    async def store_days(self, brand_id: str, days: list[DayMetrics], now: datetime) -> None:
        await self._conn.executemany(
            "INSERT INTO dashboard_daily (brand_id, day, new_members, new_members_by_source, "
            "new_card_members, lv0_members, card_members, buyers, new_buyers, member_orders, "
            "member_order_cents, non_member_orders, non_member_order_cents, computed_at, "
            "lv0_dormant, card_dormant) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) "
            "ON CONFLICT (brand_id, day) DO UPDATE SET new_members = EXCLUDED.new_members, "
            "new_members_by_source = EXCLUDED.new_members_by_source, "
            "new_card_members = EXCLUDED.new_card_members, lv0_members = EXCLUDED.lv0_members,"
            " card_members = EXCLUDED.card_members, buyers = EXCLUDED.buyers, "
            "new_buyers = EXCLUDED.new_buyers, member_orders = EXCLUDED.member_orders, "
            "member_order_cents = EXCLUDED.member_order_cents, "
            "non_member_orders = EXCLUDED.non_member_orders, "
            "non_member_order_cents = EXCLUDED.non_member_order_cents, "
            "computed_at = EXCLUDED.computed_at, lv0_dormant = EXCLUDED.lv0_dormant, "
            "card_dormant = EXCLUDED.card_dormant",
            [(brand_id, d.day, d.new_members, json.dumps(d.new_members_by_source),
              d.new_card_members, d.lv0_members, d.card_members, d.buyers, d.new_buyers,
              d.member_orders, d.member_order_cents, d.non_member_orders,
              d.non_member_order_cents, now, d.lv0_dormant, d.card_dormant) for d in days])

    async def record_dormancy_change(self, brand_id: str, member_id: str, account_id: str,
                                     dormant: bool, reason: str, at: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO member_dormancy_changes (brand_id, member_id, account_id, dormant, "
            "reason, changed_at) VALUES ($1, $2, $3, $4, $5, $6)",
            brand_id, member_id, account_id, dormant, reason, at)

    async def brand_ids(self) -> list[str]:
        return [r["brand_id"] for r in await self._conn.fetch("SELECT brand_id FROM brands")]

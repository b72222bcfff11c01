"""Dashboard use cases: overview now, per-day metrics read from the daily pre-aggregation for
closed days and computed for today, and the refresh of closed days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from libs.db import Connection
from libs.errors import InvalidArgument, found, require
from libs.idempotency import CommitOnce, Reply
from libs.jobs import Loop, background_loop
from services.membership.dashboards.adapters.postgres import DashboardRepository
from services.membership.dashboards.domain.metrics import (
    DayMetrics,
    Overview,
    RangeSummary,
    date_range,
    day_start,
)
from services.membership.usecases.context import Context


@dataclass(frozen=True)
class Daily:
    time_zone: str
    days: list[DayMetrics]
    summary: RangeSummary


async def _zone(conn: Connection, brand_id: str) -> ZoneInfo:
    """The brand's time zone (its days are counted in it), or NotFound BRAND_NOT_FOUND."""
    name = await DashboardRepository(conn).time_zone(require(brand_id, "brand_id"))
    return ZoneInfo(found(name, f"brand {brand_id}", reason="BRAND_NOT_FOUND",
                          brand_id=brand_id))


async def overview(context: Context, brand_id: str) -> Overview:
    """The brand's members now: LV0 and card members, valid and dormant, per level."""
    async with context.db.connection() as conn:
        await _zone(conn, brand_id)
        return await DashboardRepository(conn).overview(brand_id)


async def record_dormancy_change(conn: Connection, *, brand_id: str, member_id: str,
                                 account_id: str, dormant: bool, reason: str,
                                 at: datetime) -> None:
    """Keep the history of a member's dormancy; called in the transaction that flips it."""
    await DashboardRepository(conn).record_dormancy_change(brand_id, member_id, account_id,
                                                           dormant, reason, at)


async def _compute(repo: DashboardRepository, brand_id: str, zone: ZoneInfo, first: date,
                   last: date, previous: DayMetrics | None = None) -> list[DayMetrics]:
    return await repo.compute_days(brand_id, zone.key, first, last, day_start(first, zone),
                                   day_start(last + timedelta(days=1), zone), previous)


async def daily(context: Context, brand_id: str, start: str, end: str) -> Daily:
    """GetDailyDashboard: closed days missing from the pre-aggregation are computed and stored
    in the same transaction as the read."""
    async with context.db.transaction() as conn:
        return await _daily(conn, brand_id, start, end, context.clock())


async def _daily(conn: Connection, brand_id: str, start: str, end: str,
                 now: datetime) -> Daily:
    zone = await _zone(conn, brand_id)
    first, last = date_range(start, end)
    today = now.astimezone(zone).date()
    if last > today:
        raise InvalidArgument(f"end_date is after today ({today.isoformat()}) in the brand's "
                              "time zone", field="end_date", reason="DATE_IN_FUTURE")
    repo = DashboardRepository(conn)
    stored = {d.day: d for d in await repo.stored_days(brand_id, first, last)}
    closed_missing = [first + timedelta(days=i) for i in range((last - first).days + 1)
                      if first + timedelta(days=i) < today
                      and first + timedelta(days=i) not in stored]
    if closed_missing:
        computed = await _compute(repo, brand_id, zone, closed_missing[0], closed_missing[-1])
        fresh = [d for d in computed if d.day in set(closed_missing)]
        await repo.store_days(brand_id, fresh, now)
        stored.update({d.day: d for d in fresh})
    if last == today:  # today is still moving: always computed, never stored
        # It starts from yesterday's stored totals when there are some (no brand-wide count).
        yesterday = today - timedelta(days=1)
        previous = stored.get(yesterday) or next(
            iter(await repo.stored_days(brand_id, yesterday, yesterday)), None)
        stored[today] = (await _compute(repo, brand_id, zone, today, today, previous))[0]
    summary = await repo.summary(brand_id, zone.key, day_start(first, zone),
                                 day_start(last + timedelta(days=1), zone))
    return Daily(zone.key, [stored[d] for d in sorted(stored)], summary)


async def refresh(context: Context, brand_id: str, start: str, end: str,
                  commit_once: CommitOnce[int, Reply]) -> Reply:
    """RefreshDashboard: the closed days of the range recomputed once per request id."""
    return await commit_once(lambda conn: _refresh(conn, brand_id, start, end,
                                                   context.clock()))


async def _refresh(conn: Connection, brand_id: str, start: str, end: str,
                   now: datetime) -> int:
    """Recompute closed days of the range into the pre-aggregation; returns how many."""
    zone = await _zone(conn, brand_id)
    first, last = date_range(start, end)
    yesterday = now.astimezone(zone).date() - timedelta(days=1)
    last = min(last, yesterday)
    if last < first:
        return 0
    repo = DashboardRepository(conn)
    days = await _compute(repo, brand_id, zone, first, last)
    await repo.store_days(brand_id, days, now)
    return len(days)


def refresh_loop(context: Context, interval_seconds: float) -> Loop:
    """Recompute the last two closed days of every brand now and then (late facts)."""
    return background_loop("dashboard-refresh", lambda: refresh_recent_days(context),
                           interval_seconds=interval_seconds, wait_first=True)


async def refresh_recent_days(context: Context) -> None:
    """The refresh loop's round: yesterday and the day before, of every brand, each brand in
    its own transaction."""
    async with context.db.connection() as conn:
        brands = await DashboardRepository(conn).brand_ids()
    for brand_id in brands:
        async with context.db.transaction() as conn:
            zone = await _zone(conn, brand_id)
            today = context.clock().astimezone(zone).date()
            await _refresh(conn, brand_id, (today - timedelta(days=2)).isoformat(),
                           (today - timedelta(days=1)).isoformat(), context.clock())

"""Dashboards per day in the brand's time zone, checked against counts computed here from
the same generated rows, and the daily pre-aggregation with its refresh."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import grpc
import pytest

from brandclub.membership.v1 import dashboard_service_pb2 as pb
from brandclub.membership.v1 import dashboard_service_pb2_grpc as pb_grpc
from brandclub.membership.v1 import membership_service_pb2 as mpb
from brandclub.membership.v1 import membership_service_pb2_grpc as mgrpc
from libs.grpc_client import remote_error
from libs.testing import contract_channel, running_service, service_settings
from services.membership.main import compose

ZONE = ZoneInfo("Asia/Shanghai")


def rid() -> str:
    return uuid.uuid4().hex


@dataclass
class M:
    account_id: str
    source: str
    since: datetime
    joined: datetime | None
    ended: datetime | None
    level: int
    dormant: bool

    @property
    def status(self) -> str:
        return "ended" if self.ended else "card_member" if self.joined else "lv0"


@dataclass
class Order:
    order_id: str
    account_id: str
    cents: int
    paid_at: datetime


@pytest.fixture
async def stubs(db_url: str, redis_url: str
                ) -> AsyncIterator[tuple[pb_grpc.DashboardServiceStub,
                                         mgrpc.MembershipServiceStub]]:
    async with running_service(service_settings("membership", db_url, redis_url),
                               compose) as svc:
        channel = contract_channel(svc)
        yield pb_grpc.DashboardServiceStub(channel), mgrpc.MembershipServiceStub(channel)
        await channel.close()


def local_day(at: datetime) -> date:
    return at.astimezone(ZONE).date()


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), ZONE)


def generate(now: datetime, seed: int = 11) -> tuple[list[M], list[Order]]:
    rng = random.Random(seed)

    def when(max_hours: int) -> datetime:
        return now - timedelta(minutes=rng.randint(5, max_hours * 60))

    members = []
    for i in range(300):
        since = when(24 * 12)
        joined = since + timedelta(hours=rng.randint(0, 60)) if rng.random() < 0.6 else None
        if joined and joined > now - timedelta(minutes=1):
            joined = None
        ended = None
        if rng.random() < 0.15:
            ended = (joined or since) + timedelta(hours=rng.randint(1, 48))
            if ended > now - timedelta(minutes=1):
                ended = None
        members.append(M(f"acc_{i:04d}", rng.choice(["storefront", "wechat", "store"]),
                         since, joined, ended, rng.randint(1, 3) if joined else 0,
                         rng.random() < 0.2))
    accounts = [m.account_id for m in members] + [f"guest_{i}" for i in range(80)]
    orders = [Order(f"o{i}", rng.choice(accounts[:120] + accounts[300:]),
                    rng.randint(500, 90_000), when(24 * 12)) for i in range(700)]
    return members, orders


async def insert(db_url: str, brand: str, members: list[M], orders: list[Order]) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.executemany(
            "INSERT INTO membership.members (member_id, brand_id, account_id, status, level, "
            "source_channel, member_since, joined_at, ended_at, dormant) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            [(f"mbr_{m.account_id}", brand, m.account_id, m.status, m.level, m.source, m.since,
              m.joined, m.ended, m.dormant) for m in members])
        await conn.executemany(
            "INSERT INTO membership.orders (brand_id, order_id, shop_id, account_id, "
            "paid_cents, paid_at) VALUES ($1, $2, 'shp_1', $3, $4, $5)",
            [(brand, o.order_id, o.account_id, o.cents, o.paid_at) for o in orders])
    finally:
        await conn.close()


async def test_daily_dashboard_matches_independent_counts(
        stubs: tuple[pb_grpc.DashboardServiceStub, mgrpc.MembershipServiceStub],
        db_url: str) -> None:
    """Every per-day figure, the overview and the member/non-member comparison match."""
    dashboards, membership = stubs
    brand = (await membership.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="Asia/Shanghai"))).brand.brand_id
    now = datetime.now(UTC)
    members, orders = generate(now)
    await insert(db_url, brand, members, orders)
    today = local_day(now)
    first = today - timedelta(days=7)
    reply = await dashboards.GetDailyDashboard(pb.GetDailyDashboardRequest(
        brand_id=brand, start_date=first.isoformat(), end_date=today.isoformat()))
    assert reply.time_zone == "Asia/Shanghai"
    assert [d.date for d in reply.days] == [(first + timedelta(days=i)).isoformat()
                                            for i in range(8)]
    first_order: dict[str, datetime] = {}
    for o in sorted(orders, key=lambda o: o.paid_at):
        first_order.setdefault(o.account_id, o.paid_at)

    def is_member_order(o: Order) -> bool:
        return any(m.account_id == o.account_id and m.joined is not None
                   and m.joined <= o.paid_at and (m.ended is None or m.ended > o.paid_at)
                   for m in members)

    for d in reply.days:
        day = date.fromisoformat(d.date)
        end = end_of(day)
        born = [m for m in members if local_day(m.since) == day]
        assert d.new_members == len(born)
        assert dict(d.new_members_by_source) == dict(Counter(m.source for m in born))
        assert d.new_card_members == sum(1 for m in members
                                         if m.joined and local_day(m.joined) == day)
        assert d.lv0_members == sum(1 for m in members if m.since < end
                                    and (m.joined is None or m.joined >= end)
                                    and (m.ended is None or m.ended >= end))
        assert d.card_members == sum(1 for m in members if m.joined and m.joined < end
                                     and (m.ended is None or m.ended >= end))
        todays = [o for o in orders if local_day(o.paid_at) == day]
        buyers = {o.account_id for o in todays}
        new = {a for a in buyers if local_day(first_order[a]) == day}
        assert (d.buyers, d.new_buyers, d.returning_buyers) == (
            len(buyers), len(new), len(buyers) - len(new))
        member_orders = [o for o in todays if is_member_order(o)]
        other = [o for o in todays if not is_member_order(o)]
        assert (d.member_orders, d.member_order_cents) == (
            len(member_orders), sum(o.cents for o in member_orders))
        assert (d.non_member_orders, d.non_member_order_cents) == (
            len(other), sum(o.cents for o in other))
    in_range = [o for o in orders if local_day(o.paid_at) >= first]
    per_member: Counter[str] = Counter(o.account_id for o in in_range if is_member_order(o))
    per_other: Counter[str] = Counter(o.account_id for o in in_range if not is_member_order(o))
    s = reply.summary
    assert (s.member_buyers, s.member_repeat_buyers) == (
        len(per_member), sum(1 for n in per_member.values() if n >= 2))
    assert (s.non_member_buyers, s.non_member_repeat_buyers) == (
        len(per_other), sum(1 for n in per_other.values() if n >= 2))
    assert s.member_repurchase_rate_basis_points == round(
        s.member_repeat_buyers * 10_000 / s.member_buyers)
    member_cents = [o.cents for o in in_range if is_member_order(o)]
    assert s.member_average_order_cents == round(sum(member_cents) / len(member_cents))

    overview = (await dashboards.GetMemberOverview(pb.GetMemberOverviewRequest(
        brand_id=brand))).overview
    live = [m for m in members if m.status != "ended"]
    assert (overview.lv0_valid, overview.lv0_dormant) == (
        sum(1 for m in live if m.status == "lv0" and not m.dormant),
        sum(1 for m in live if m.status == "lv0" and m.dormant))
    assert (overview.card_valid, overview.card_dormant) == (
        sum(1 for m in live if m.status == "card_member" and not m.dormant),
        sum(1 for m in live if m.status == "card_member" and m.dormant))
    assert overview.card_total == overview.card_valid + overview.card_dormant
    assert dict(overview.card_valid_by_level) == dict(Counter(
        m.level for m in live if m.status == "card_member" and not m.dormant))


async def test_closed_days_are_pre_aggregated_and_refreshed(
        stubs: tuple[pb_grpc.DashboardServiceStub, mgrpc.MembershipServiceStub],
        db_url: str) -> None:
    """A closed day is stored once; a late order shows after RefreshDashboard, not before."""
    dashboards, membership = stubs
    brand = (await membership.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="America/New_York"))).brand.brand_id
    zone = ZoneInfo("America/New_York")
    yesterday = datetime.now(UTC).astimezone(zone).date() - timedelta(days=1)
    noon = datetime.combine(yesterday, time(12), zone)
    await insert(db_url, brand, [], [Order("o1", "guest", 1000, noon)])
    request = pb.GetDailyDashboardRequest(brand_id=brand, start_date=yesterday.isoformat(),
                                          end_date=yesterday.isoformat())
    assert (await dashboards.GetDailyDashboard(request)).days[0].non_member_orders == 1
    await insert(db_url, brand, [], [Order("o2", "guest", 2000, noon + timedelta(hours=1))])
    assert (await dashboards.GetDailyDashboard(request)).days[0].non_member_orders == 1
    refreshed = await dashboards.RefreshDashboard(pb.RefreshDashboardRequest(
        request_id=rid(), brand_id=brand, start_date=yesterday.isoformat(),
        end_date=yesterday.isoformat()))
    assert refreshed.refreshed_days == 1
    day = (await dashboards.GetDailyDashboard(request)).days[0]
    assert (day.non_member_orders, day.non_member_order_cents, day.buyers) == (2, 3000, 1)


async def test_date_range_errors_name_the_field(
        stubs: tuple[pb_grpc.DashboardServiceStub, mgrpc.MembershipServiceStub]) -> None:
    """An end before the start, or a malformed date, is refused naming the field."""
    dashboards, membership = stubs
    brand = (await membership.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED))
    ).brand.brand_id
    for start, end, field in (("2026-03-05", "2026-03-01", "end_date"),
                              ("2026-3-x", "2026-03-01", "start_date")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await dashboards.GetDailyDashboard(pb.GetDailyDashboardRequest(
                brand_id=brand, start_date=start, end_date=end))
        assert remote_error(caught.value).metadata["field"] == field

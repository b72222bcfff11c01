"""Valid and dormant LV0 / card members per day, from the dormancy history, checked against
counts computed here from the same generated rows; and a real dormancy change recorded."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from brandclub.membership.v1 import dashboard_service_pb2 as pb
from brandclub.membership.v1 import dashboard_service_pb2_grpc as pb_grpc
from brandclub.membership.v1 import membership_service_pb2 as mpb
from brandclub.membership.v1 import membership_service_pb2_grpc as mgrpc
from libs.testing import contract_channel, running_service, service_settings
from services.membership.main import compose

ZONE = ZoneInfo("Asia/Shanghai")


def rid() -> str:
    return uuid.uuid4().hex


@dataclass
class M:
    account_id: str
    since: datetime
    joined: datetime | None
    ended: datetime | None
    changes: list[tuple[datetime, bool]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "ended" if self.ended else "card_member" if self.joined else "lv0"

    def dormant_before(self, moment: datetime) -> bool:
        state = False
        for at, dormant in sorted(self.changes, key=lambda c: c[0]):
            if at < moment:
                state = dormant
        return state


@pytest.fixture
async def stubs(db_url: str, redis_url: str
                ) -> AsyncIterator[tuple[pb_grpc.DashboardServiceStub,
                                         mgrpc.MembershipServiceStub]]:
    async with running_service(service_settings("membership", db_url, redis_url),
                               compose) as svc:
        channel = contract_channel(svc)
        yield pb_grpc.DashboardServiceStub(channel), mgrpc.MembershipServiceStub(channel)
        await channel.close()


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), ZONE)


def generate(now: datetime, seed: int = 5) -> list[M]:
    rng = random.Random(seed)
    today = now.astimezone(ZONE).date()
    members = []
    for i in range(240):
        since = now - timedelta(minutes=rng.randint(60, 60 * 24 * 14))
        joined = since + timedelta(hours=rng.randint(0, 72)) if rng.random() < 0.6 else None
        if joined and joined > now - timedelta(minutes=5):
            joined = None
        ended = None
        if rng.random() < 0.15:
            ended = (joined or since) + timedelta(hours=rng.randint(1, 96))
            if ended > now - timedelta(minutes=5):
                ended = None
        m = M(f"acc_{i:04d}", since, joined, ended)
        last = ended or now - timedelta(minutes=1)
        dormant = False
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            roll = rng.random()
            if roll < 0.1 and joined:
                at = joined  # the same instant as the card opening
            elif roll < 0.2:  # exactly a local midnight: belongs to the next day
                midnight = end_of(today - timedelta(days=rng.randint(1, 12)))
                at = midnight if since <= midnight <= last else since
            else:
                at = since + (last - since) * rng.random()
            at = max(at, m.changes[-1][0] if m.changes else since)
            dormant = not dormant
            m.changes.append((at, dormant))
        members.append(m)
    return members


async def insert(db_url: str, brand: str, members: list[M]) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.executemany(
            "INSERT INTO membership.members (member_id, brand_id, account_id, status, level, "
            "source_channel, member_since, joined_at, ended_at, dormant) "
            "VALUES ($1, $2, $3, $4, $5, 'storefront', $6, $7, $8, $9)",
            [(f"mbr_{m.account_id}", brand, m.account_id, m.status, 1 if m.joined else 0,
              m.since, m.joined, m.ended, bool(m.changes and m.changes[-1][1]))
             for m in members])
        await conn.executemany(
            "INSERT INTO membership.member_dormancy_changes (brand_id, member_id, account_id, "
            "dormant, reason, changed_at) VALUES ($1, $2, $3, $4, 'TEST', $5)",
            [(brand, f"mbr_{m.account_id}", m.account_id, dormant, at)
             for m in members for at, dormant in m.changes])
    finally:
        await conn.close()


def expected(members: list[M], day: date) -> tuple[int, int, int, int]:
    """(lv0 valid, lv0 dormant, card valid, card dormant) at the end of the local day."""
    end = end_of(day)
    lv0 = [m for m in members if m.since < end and (m.joined is None or m.joined >= end)
           and (m.ended is None or m.ended >= end)]
    card = [m for m in members if m.joined is not None and m.joined < end
            and (m.ended is None or m.ended >= end)]
    lv0_dormant = sum(1 for m in lv0 if m.dormant_before(end))
    card_dormant = sum(1 for m in card if m.dormant_before(end))
    return len(lv0) - lv0_dormant, lv0_dormant, len(card) - card_dormant, card_dormant


async def test_valid_and_dormant_per_day_match_independent_counts(
        stubs: tuple[pb_grpc.DashboardServiceStub, mgrpc.MembershipServiceStub],
        db_url: str) -> None:
    """Per day, LV0 and card members split into valid and dormant as of the day's end match a
    brute-force count over the history (valid + dormant = total), computed and then stored."""
    dashboards, membership = stubs
    brand = (await membership.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="Asia/Shanghai"))).brand.brand_id
    now = datetime.now(UTC)
    members = generate(now)
    await insert(db_url, brand, members)
    today = now.astimezone(ZONE).date()
    first = today - timedelta(days=9)
    request = pb.GetDailyDashboardRequest(brand_id=brand, start_date=first.isoformat(),
                                          end_date=today.isoformat())
    computed = await dashboards.GetDailyDashboard(request)
    stored = await dashboards.GetDailyDashboard(request)  # closed days now from the table
    # A range starting later: its baseline comes from the history before it.
    later = await dashboards.GetDailyDashboard(pb.GetDailyDashboardRequest(
        brand_id=brand, start_date=(today - timedelta(days=3)).isoformat(),
        end_date=today.isoformat()))
    assert len(computed.days) == 10
    assert any(d.card_dormant for d in computed.days) and any(d.lv0_dormant
                                                             for d in computed.days)
    for reply in (computed, stored, later):
        for d in reply.days:
            day = date.fromisoformat(d.date)
            assert (d.lv0_valid, d.lv0_dormant, d.card_valid, d.card_dormant) == \
                expected(members, day), d.date
            assert d.card_valid + d.card_dormant == d.card_members
            assert d.lv0_valid + d.lv0_dormant == d.lv0_members


async def test_a_dormancy_change_is_recorded_with_its_time(
        stubs: tuple[pb_grpc.DashboardServiceStub, mgrpc.MembershipServiceStub],
        db_url: str) -> None:
    """An account reported abnormal makes its card member dormant: the change is kept in the
    history and today's card members move from valid to dormant; back to normal, back."""
    dashboards, membership = stubs
    brand = (await membership.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="Asia/Shanghai"))).brand.brand_id
    account = f"acc_{rid()[:10]}"
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO membership.members (member_id, brand_id, account_id, status, level, "
            "source_channel, member_since, joined_at) VALUES ($1, $2, $3, 'card_member', 1, "
            "'storefront', now() - interval '2 days', now() - interval '2 days')",
            f"mbr_{account}", brand, account)
    finally:
        await conn.close()
    today = datetime.now(UTC).astimezone(ZONE).date().isoformat()
    request = pb.GetDailyDashboardRequest(brand_id=brand, start_date=today, end_date=today)

    async def split() -> tuple[int, int]:
        day = (await dashboards.GetDailyDashboard(request)).days[0]
        return day.card_valid, day.card_dormant

    assert await split() == (1, 0)
    await membership.RecordAccountStatus(mpb.RecordAccountStatusRequest(
        event_id=rid(), account_id=account, abnormal=True))
    assert await split() == (0, 1)
    await membership.RecordAccountStatus(mpb.RecordAccountStatusRequest(
        event_id=rid(), account_id=account, abnormal=False))
    assert await split() == (1, 0)
    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch(
            "SELECT dormant, reason, changed_at FROM membership.member_dormancy_changes "
            "WHERE member_id = $1 ORDER BY seq", f"mbr_{account}")
    finally:
        await conn.close()
    assert [(r["dormant"], r["reason"]) for r in rows] == [(True, "ACCOUNT_ABNORMAL"),
                                                           (False, "ACCOUNT_NORMAL")]
    assert rows[0]["changed_at"] <= rows[1]["changed_at"]

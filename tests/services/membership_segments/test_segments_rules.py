"""Segments: validation that names the place in the tree, counts and snapshots checked
against a brute-force filter over generated members, and the points projection."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import grpc
import pytest

from brandclub.events.v1 import benefits_events_pb2
from brandclub.membership.v1 import membership_service_pb2 as mpb
from brandclub.membership.v1 import membership_service_pb2_grpc as mgrpc
from brandclub.membership.v1 import segment_service_pb2 as pb
from brandclub.membership.v1 import segment_service_pb2_grpc as pb_grpc
from libs.grpc_client import remote_error
from libs.outbox import new_envelope, stream_name
from libs.redis import connect_redis
from libs.testing import contract_channel, running_service, service_settings
from services.membership.main import compose

ZONE = ZoneInfo("Asia/Shanghai")


def rid() -> str:
    return uuid.uuid4().hex


@dataclass
class Member:
    account_id: str
    status: str
    level: int
    gender: str
    birthday: date | None
    joined_at: datetime | None
    dormant: bool
    shops: set[str]
    paid_cents: int
    order_count: int
    last_order_at: datetime | None
    points: int
    behaviours: dict[str, list[datetime]]


@dataclass
class Ctx:
    segments: pb_grpc.SegmentServiceStub
    membership: mgrpc.MembershipServiceStub
    db_url: str
    redis_url: str


@pytest.fixture
async def ctx(db_url: str, redis_url: str) -> AsyncIterator[Ctx]:
    async with running_service(service_settings("membership", db_url, redis_url),
                               compose) as svc:
        channel = contract_channel(svc)
        yield Ctx(pb_grpc.SegmentServiceStub(channel), mgrpc.MembershipServiceStub(channel),
                  db_url, redis_url)
        await channel.close()


async def brand_with_shops(ctx: Ctx) -> tuple[str, list[str]]:
    brand = (await ctx.membership.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="Asia/Shanghai"))).brand.brand_id
    shops = [(await ctx.membership.CreateShop(mpb.CreateShopRequest(
        request_id=rid(), brand_id=brand, display_name=f"Shop {i}"))).shop.shop_id
        for i in range(2)]
    return brand, shops


def generate(count: int, shops: list[str], now: datetime, seed: int = 7) -> list[Member]:
    rng = random.Random(seed)

    def past(max_days: int) -> datetime:
        # Whole days plus 12 hours: never near a "within N days" cutoff while the test runs.
        return now - timedelta(days=rng.randint(0, max_days), hours=12)

    members = []
    for i in range(count):
        ordered = rng.random() < 0.6
        members.append(Member(
            account_id=f"acc_{i:05d}",
            status=rng.choice(["lv0", "card_member", "card_member", "ended"]),
            level=rng.randint(0, 4), gender=rng.choice(["male", "female", "unknown"]),
            birthday=(date(1960, 1, 1) + timedelta(days=rng.randint(0, 20000))
                      if rng.random() < 0.8 else None),
            joined_at=past(700) if rng.random() < 0.7 else None,
            dormant=rng.random() < 0.1,
            shops={s for s in shops if rng.random() < 0.5},
            paid_cents=rng.randint(100, 200_000) if ordered else 0,
            order_count=rng.randint(1, 12) if ordered else 0,
            last_order_at=past(400) if ordered else None,
            points=rng.choice([0, 0, rng.randint(1, 5000)]),
            behaviours={kind: [past(90) for _ in range(rng.randint(0, 2))]
                        for kind in ("followed", "cart_added", "purchased")}))
    return members


async def insert(db_url: str, brand: str, members: list[Member]) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.executemany(
            "INSERT INTO membership.members (member_id, brand_id, account_id, status, level, "
            "source_channel, member_since, joined_at, birthday, gender, dormant) "
            "VALUES ($1, $2, $3, $4, $5, 'storefront', now(), $6, $7, $8, $9)",
            [(f"mbr_{m.account_id}", brand, m.account_id, m.status, m.level, m.joined_at,
              m.birthday, m.gender, m.dormant) for m in members])
        await conn.executemany(
            "INSERT INTO membership.follows (brand_id, shop_id, account_id) VALUES ($1, $2, $3)",
            [(brand, s, m.account_id) for m in members for s in sorted(m.shops)])
        await conn.executemany(
            "INSERT INTO membership.member_stats (brand_id, account_id, order_count, "
            "paid_cents, first_order_at, last_order_at) VALUES ($1, $2, $3, $4, $5, $5)",
            [(brand, m.account_id, m.order_count, m.paid_cents, m.last_order_at)
             for m in members if m.order_count])
        await conn.executemany(
            "INSERT INTO membership.member_points (brand_id, account_id, available) "
            "VALUES ($1, $2, $3)", [(brand, m.account_id, m.points) for m in members if m.points])
        await conn.executemany(
            "INSERT INTO membership.member_behaviours (brand_id, account_id, kind, occurred_at) "
            "VALUES ($1, $2, $3, $4)",
            [(brand, m.account_id, kind, at) for m in members
             for kind, times in m.behaviours.items() for at in times])
    finally:
        await conn.close()


def age(birthday: date, today: date) -> int:
    return today.year - birthday.year - ((today.month, today.day) < (birthday.month,
                                                                       birthday.day))


def cond(field: str, operator: str, **kw: object) -> pb.SegmentRule:
    return pb.SegmentRule(condition=pb.RuleCondition(field=field, operator=operator,
                                                     **kw))  # type: ignore[arg-type]


def group(operator: pb.RuleGroupOperator.ValueType, *rules: pb.SegmentRule
          ) -> pb.SegmentRule:
    return pb.SegmentRule(group=pb.RuleGroup(operator=operator, rules=list(rules)))


AND, OR = pb.RULE_GROUP_OPERATOR_AND, pb.RULE_GROUP_OPERATOR_OR


async def matched(ctx: Ctx, brand: str, rule: pb.SegmentRule) -> tuple[int, set[str]]:
    count = (await ctx.segments.PreviewSegment(pb.PreviewSegmentRequest(
        brand_id=brand, rule=rule))).member_count
    segment = (await ctx.segments.CreateSegment(pb.CreateSegmentRequest(
        request_id=rid(), brand_id=brand, name="s", rule=rule))).segment
    snapshot = (await ctx.segments.CreateSegmentSnapshot(pb.CreateSegmentSnapshotRequest(
        request_id=rid(), brand_id=brand, segment_id=segment.segment_id))).snapshot
    accounts: set[str] = set()
    token = ""
    while True:
        page = await ctx.segments.ListSnapshotMembers(pb.ListSnapshotMembersRequest(
            brand_id=brand, snapshot_id=snapshot.snapshot_id, page_size=150, page_token=token))
        accounts |= {m.account_id for m in page.members}
        token = page.next_page_token
        if not token:
            break
    assert snapshot.member_count == len(accounts)
    return count, accounts


async def test_nested_segments_match_a_brute_force_filter(ctx: Ctx) -> None:
    """Nested AND/OR segments count and snapshot exactly the members a Python filter picks."""
    brand, shops = await brand_with_shops(ctx)
    now = datetime.now(UTC)
    today = now.astimezone(ZONE).date()
    members = generate(800, shops, now)
    await insert(ctx.db_url, brand, members)

    def within(times: list[datetime], days: int) -> bool:
        return any(t >= now - timedelta(days=days) for t in times)

    upcoming = {(d.month, d.day) for d in (today + timedelta(days=i) for i in range(31))}
    cases: list[tuple[pb.SegmentRule, Callable[[Member], bool]]] = [
        (group(AND,
               cond("tier", "gte", number=1),
               group(OR,
                     cond("gender", "eq", values=["female"]),
                     group(AND, cond("order_amount", "gte", number=50_000),
                           cond("order_count", "between", number=2, number_to=8))),
               group(OR,
                     cond("follows_shop", "in", values=[shops[0]]),
                     cond("behaviour_cart_added", "within_days", days=30))),
         lambda m: m.level >= 1 and (
             m.gender == "female" or (m.paid_cents >= 50_000 and 2 <= m.order_count <= 8))
         and (shops[0] in m.shops or within(m.behaviours["cart_added"], 30))),
        (group(OR,
               group(AND, cond("age", "between", number=25, number_to=40),
                     cond("points_balance", "gte", number=1000)),
               group(AND, cond("birthday", "within_days", days=30),
                     cond("behaviour_purchased", "not_within_days", days=45)),
               group(AND, cond("tier", "in", values=["0"]),
                     cond("last_order_time", "not_within_days", days=180),
                     cond("join_time", "within_days", days=365))),
         lambda m: (m.birthday is not None and 25 <= age(m.birthday, today) <= 40
                    and m.points >= 1000)
         or (m.birthday is not None and (m.birthday.month, m.birthday.day) in upcoming
             and not within(m.behaviours["purchased"], 45))
         or (m.level == 0 and (m.last_order_at is None
                               or m.last_order_at < now - timedelta(days=180))
             and m.joined_at is not None and m.joined_at >= now - timedelta(days=365))),
        (group(AND, cond("order_amount", "gte", number=1000),
               cond("points_balance", "between", number=100, number_to=4000),
               group(OR, cond("last_order_time", "within_days", days=200),
                     cond("order_count", "lte", number=3))),
         lambda m: m.paid_cents >= 1000 and 100 <= m.points <= 4000 and (
             (m.last_order_at is not None and m.last_order_at >= now - timedelta(days=200))
             or m.order_count <= 3)),
        (group(OR, cond("points_balance", "lte", number=0),
               cond("order_count", "eq", number=0)),
         lambda m: m.points <= 0 or m.order_count == 0),
        (group(AND, cond("birthday", "this_month"), cond("age", "lte", number=50),
               cond("gender", "in", values=["male", "unknown"])),
         lambda m: m.birthday is not None and m.birthday.month == today.month
         and age(m.birthday, today) <= 50 and m.gender in ("male", "unknown")),
    ]
    for rule, wanted in cases:
        expected = {m.account_id for m in members
                    if m.status != "ended" and not m.dormant and wanted(m)}
        count, snapshot = await matched(ctx, brand, rule)
        assert count == len(expected)
        assert snapshot == expected
        assert 0 < len(expected) < 800


async def test_invalid_rules_name_the_place_in_the_tree(ctx: Ctx) -> None:
    """A bad rule sent over gRPC is refused with INVALID_ARGUMENT naming where in the tree it
    is wrong (every kind of refusal is swept in test_segments_domain.py)."""
    brand, _ = await brand_with_shops(ctx)
    rule = group(AND, cond("tier", "gte", number=1), group(OR, cond("height", "gte", number=1)))
    field, reason = "rule.group.rules[1].group.rules[0].condition.field", "UNKNOWN_FIELD"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ctx.segments.PreviewSegment(pb.PreviewSegmentRequest(brand_id=brand, rule=rule))
    error = remote_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.metadata["field"], error.reason) == (field, reason)


async def test_values_travel_as_parameters_not_sql(ctx: Ctx) -> None:
    """A shop id full of SQL is just a value that matches nothing; the members stay intact."""
    brand, _ = await brand_with_shops(ctx)
    await insert(ctx.db_url, brand, generate(20, [], datetime.now(UTC)))
    hostile = "x'); DELETE FROM members; --"
    count, _ = await matched(ctx, brand, cond("follows_shop", "in", values=[hostile]))
    assert count == 0
    conn = await asyncpg.connect(ctx.db_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM membership.members") == 20
    finally:
        await conn.close()


async def test_points_balance_projection_follows_benefits_events(ctx: Ctx) -> None:
    """PointsBalanceChanged on the benefits topic updates the balance segments filter on; a
    late event with an older version does not overwrite a newer balance."""
    brand, _ = await brand_with_shops(ctx)
    await insert(ctx.db_url, brand, [m for m in generate(5, [], datetime.now(UTC))
                                     if m.status != "ended"][:1])
    conn = await asyncpg.connect(ctx.db_url)
    account = await conn.fetchval("SELECT account_id FROM membership.members LIMIT 1")
    await conn.execute("UPDATE membership.members SET dormant = false")
    await conn.close()
    redis = connect_redis(ctx.redis_url)
    try:
        for balance, version in ((300, 1), (1200, 3), (50, 2)):
            envelope = new_envelope(brand_id=brand, producer="benefits",
                                    payload=benefits_events_pb2.PointsBalanceChanged(
                                        brand_id=brand, account_id=account,
                                        available_points=balance, entry_id=rid(),
                                        balance_version=version))
            await redis.xadd(stream_name("benefits"), {"envelope": envelope.SerializeToString()})
    finally:
        await redis.aclose()
    conn = await asyncpg.connect(ctx.db_url)
    try:
        for _ in range(200):
            version = await conn.fetchval(
                "SELECT count(*) FROM membership.processed_events "
                "WHERE consumer_group = 'membership-points'")
            if version == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    rule = cond("points_balance", "gte", number=1000)
    count = (await ctx.segments.PreviewSegment(pb.PreviewSegmentRequest(
        brand_id=brand, rule=rule))).member_count
    assert count == 1

"""Segment counts over one million members of a brand: a three-condition segment previewed
through SegmentService beside the same count written by hand in SQL, and a nested rule (an AND
of three ORs, six conditions) as brands build them in the console."""

from __future__ import annotations

import asyncpg

from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from brandclub.membership.v1 import segment_service_pb2 as segment_pb
from brandclub.membership.v1 import segment_service_pb2_grpc as segment_grpc
from tools.bench_core import BenchContext, Result

MEMBERS = 1_000_000
HAND_WRITTEN = """
    SELECT count(*) FROM membership.members m
    JOIN membership.member_stats s ON s.brand_id = m.brand_id AND s.account_id = m.account_id
    WHERE m.brand_id = $1 AND m.status <> 'ended' AND NOT m.dormant
      AND m.level >= 2 AND m.gender = 'female' AND s.paid_cents >= 100000
"""


async def seed_members(database_url: str, brand_id: str, count: int = MEMBERS,
                       prefix: str = "seg") -> None:
    """`count` members (and order figures for half of them) in two INSERT ... SELECTs; member
    and account ids are `mbr_<prefix>_<n>` and `acc_<prefix>_<n>`."""
    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT count(*) FROM membership.members WHERE brand_id = $1",
                               brand_id) >= count:
            return
        await conn.execute(
            """
            INSERT INTO membership.members (member_id, brand_id, account_id, status, level,
                source_channel, member_since, joined_at, birthday, gender, dormant)
            SELECT 'mbr_' || $3 || '_' || g, $1, 'acc_' || $3 || '_' || g,
                   CASE WHEN g % 10 = 0 THEN 'lv0' ELSE 'card_member' END,
                   CASE WHEN g % 10 = 0 THEN 0 ELSE g % 5 END, 'bench',
                   now() - (g % 900) * interval '1 day',
                   CASE WHEN g % 10 = 0 THEN NULL ELSE now() - (g % 800) * interval '1 day' END,
                   date '1960-01-01' + (g * 37 % 18000),
                   (ARRAY['male', 'female', 'unknown'])[g % 3 + 1], g % 20 = 0
            FROM generate_series(1, $2) g
            """, brand_id, count, prefix)
        await conn.execute(
            """
            INSERT INTO membership.member_stats (brand_id, account_id, order_count, paid_cents,
                first_order_at, last_order_at)
            SELECT $1, 'acc_' || $3 || '_' || g, 1 + g % 9, (g::bigint * 7919) % 300000,
                   now() - (g % 700) * interval '1 day', now() - (g % 300) * interval '1 day'
            FROM generate_series(2, $2, 2) g
            """, brand_id, count, prefix)
        # What autovacuum does after a bulk load: statistics and the visibility map (which
        # index-only scans need).
        await conn.execute("VACUUM ANALYZE membership.members")
        await conn.execute("VACUUM ANALYZE membership.member_stats")
    finally:
        await conn.close()


async def scenarios(ctx: BenchContext) -> list[Result]:
    database_url = ctx.stack.database_url
    assert database_url is not None
    async with ctx.stack.channel("membership") as channel:
        membership = membership_grpc.MembershipServiceStub(channel)
        segments = segment_grpc.SegmentServiceStub(channel)
        brand = (await membership.CreateBrand(membership_pb.CreateBrandRequest(
            request_id="bench:segments:brand", display_name="Segment bench",
            mode=membership_pb.PROGRAM_MODE_NON_CONNECTED, time_zone="Asia/Shanghai"),
            timeout=10)).brand
        await seed_members(database_url, brand.brand_id)
        rule = segment_pb.SegmentRule(group=segment_pb.RuleGroup(
            operator=segment_pb.RULE_GROUP_OPERATOR_AND, rules=[
                segment_pb.SegmentRule(condition=segment_pb.RuleCondition(
                    field="tier", operator="gte", number=2)),
                segment_pb.SegmentRule(condition=segment_pb.RuleCondition(
                    field="gender", operator="eq", values=["female"])),
                segment_pb.SegmentRule(condition=segment_pb.RuleCondition(
                    field="order_amount", operator="gte", number=100_000)),
            ]))
        preview = segment_pb.PreviewSegmentRequest(brand_id=brand.brand_id, rule=rule)
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        try:
            by_hand = await pool.fetchval(HAND_WRITTEN, brand.brand_id)
            compiled = (await segments.PreviewSegment(preview, timeout=60)).member_count
            if compiled != by_hand:
                raise RuntimeError(f"segment count {compiled} != hand-written {by_hand}")

            async def count_segment(_: int) -> None:
                await segments.PreviewSegment(preview, timeout=60)

            async def count_by_hand(_: int) -> None:
                await pool.fetchval(HAND_WRITTEN, brand.brand_id)

            return [*await ctx.measure("segments/count-3-conditions-1M", count_segment, 2),
                    *await ctx.measure("segments/hand-written-sql-1M", count_by_hand, 2),
                    *await nested_preview(ctx, segments, brand.brand_id)]
        finally:
            await pool.close()


def _condition(field: str, operator: str, *, number: int = 0, number_to: int = 0,
               values: tuple[str, ...] = ()) -> segment_pb.SegmentRule:
    return segment_pb.SegmentRule(condition=segment_pb.RuleCondition(
        field=field, operator=operator, number=number, number_to=number_to, values=values))


def _any_of(*rules: segment_pb.SegmentRule) -> segment_pb.SegmentRule:
    return segment_pb.SegmentRule(group=segment_pb.RuleGroup(
        operator=segment_pb.RULE_GROUP_OPERATOR_OR, rules=rules))


NESTED_RULE = segment_pb.SegmentRule(group=segment_pb.RuleGroup(
    operator=segment_pb.RULE_GROUP_OPERATOR_AND, rules=[
        _any_of(_condition("tier", "gte", number=3),
                _condition("order_amount", "gte", number=200_000)),
        _any_of(_condition("gender", "eq", values=("female",)),
                _condition("age", "between", number=25, number_to=40)),
        _any_of(_condition("order_count", "gte", number=5),
                _condition("tier", "eq", number=1)),
    ]))


async def nested_preview(ctx: BenchContext, segments: segment_grpc.SegmentServiceStub,
                         brand_id: str) -> list[Result]:
    """PreviewSegment of the nested rule over the same million members."""
    preview = segment_pb.PreviewSegmentRequest(brand_id=brand_id, rule=NESTED_RULE)

    async def count_nested(_: int) -> None:
        await segments.PreviewSegment(preview, timeout=60)

    return await ctx.measure("segments/preview-nested-6-conditions-1M", count_nested, 2)

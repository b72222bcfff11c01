"""Segment counts over one million members of a brand: a three-condition segment previewed
through SegmentService beside the same count written by hand in SQL."""

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


async def seed_members(database_url: str, brand_id: str) -> None:
    """One million members (and order figures for half of them) in two INSERT ... SELECTs."""
    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT count(*) FROM membership.members WHERE brand_id = $1",
                               brand_id) >= MEMBERS:
            return
        await conn.execute(
            """
            INSERT INTO membership.members (member_id, brand_id, account_id, status, level,
                source_channel, member_since, joined_at, birthday, gender, dormant)
            SELECT 'mbr_seg_' || g, $1, 'acc_seg_' || g,
                   CASE WHEN g % 10 = 0 THEN 'lv0' ELSE 'card_member' END,
                   CASE WHEN g % 10 = 0 THEN 0 ELSE g % 5 END, 'bench',
                   now() - (g % 900) * interval '1 day',
                   CASE WHEN g % 10 = 0 THEN NULL ELSE now() - (g % 800) * interval '1 day' END,
                   date '1960-01-01' + (g * 37 % 18000),
                   (ARRAY['male', 'female', 'unknown'])[g % 3 + 1], g % 20 = 0
            FROM generate_series(1, $2) g
            """, brand_id, MEMBERS)
        await conn.execute(
            """
            INSERT INTO membership.member_stats (brand_id, account_id, order_count, paid_cents,
                first_order_at, last_order_at)
            SELECT $1, 'acc_seg_' || g, 1 + g % 9, (g::bigint * 7919) % 300000,
                   now() - (g % 700) * interval '1 day', now() - (g % 300) * interval '1 day'
            FROM generate_series(2, $2, 2) g
            """, brand_id, MEMBERS)
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

            return [await ctx.measure("segments/count-3-conditions-1M", count_segment, 2),
                    await ctx.measure("segments/hand-written-sql-1M", count_by_hand, 2)]
        finally:
            await pool.close()

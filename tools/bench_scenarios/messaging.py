"""Campaign fan-out: a campaign to a 20,000-member segment snapshot through the running
messaging process (fan-out, governance, message box), measured end to end."""

from __future__ import annotations

import asyncio
import statistics
import time

import asyncpg

from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from brandclub.membership.v1 import segment_service_pb2 as segment_pb
from brandclub.membership.v1 import segment_service_pb2_grpc as segment_grpc
from brandclub.messaging.v1 import messaging_service_pb2 as pb
from brandclub.messaging.v1 import messaging_service_pb2_grpc as pb_grpc
from tools.bench_core import BenchContext, Result

RECIPIENTS = 20_000


async def scenarios(ctx: BenchContext) -> list[Result]:
    database_url = ctx.stack.database_url
    assert database_url is not None
    async with ctx.stack.channel("membership") as mchannel, \
            ctx.stack.channel("messaging") as channel:
        membership = membership_grpc.MembershipServiceStub(mchannel)
        segments = segment_grpc.SegmentServiceStub(mchannel)
        messaging = pb_grpc.MessagingServiceStub(channel)
        brand = (await membership.CreateBrand(membership_pb.CreateBrandRequest(
            request_id="bench:campaign:brand", display_name="Campaign bench",
            mode=membership_pb.PROGRAM_MODE_NON_CONNECTED, time_zone="UTC"),
            timeout=10)).brand
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(
                "INSERT INTO membership.members (member_id, brand_id, account_id, status, "
                "level, source_channel, member_since, joined_at) "
                "SELECT 'mbr_cmp_' || g, $1, 'acc_cmp_' || g, 'card_member', 1, 'bench', "
                "now(), now() FROM generate_series(1, $2) g ON CONFLICT DO NOTHING",
                brand.brand_id, RECIPIENTS)
        finally:
            await conn.close()
        segment = (await segments.CreateSegment(segment_pb.CreateSegmentRequest(
            request_id="bench:campaign:segment", brand_id=brand.brand_id, name="all",
            rule=segment_pb.SegmentRule(condition=segment_pb.RuleCondition(
                field="tier", operator="gte", number=1))), timeout=30)).segment
        snapshot = (await segments.CreateSegmentSnapshot(segment_pb.CreateSegmentSnapshotRequest(
            request_id=f"bench:campaign:snapshot:{time.time_ns()}", brand_id=brand.brand_id,
            segment_id=segment.segment_id), timeout=60)).snapshot
        template = (await messaging.CreateTemplate(pb.CreateTemplateRequest(
            request_id="bench:campaign:template", template=pb.Template(
                brand_id=brand.brand_id, channel=pb.CHANNEL_INBOX,
                purpose=pb.PURPOSE_MARKETING, name="bench", title="{{brand_name}}",
                body="LV{{member_level}}: spring sale")), timeout=10)).template
        campaign = (await messaging.CreateCampaign(pb.CreateCampaignRequest(
            request_id=f"bench:campaign:{time.time_ns()}", campaign=pb.Campaign(
                brand_id=brand.brand_id, name="bench", snapshot_id=snapshot.snapshot_id,
                template_id=template.template_id, channel=pb.CHANNEL_INBOX)),
            timeout=30)).campaign
        async with ctx.cpu_window() as cpu:
            elapsed, errors = await _launch_and_settle(
                messaging, brand.brand_id, campaign.campaign_id, snapshot.member_count)
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch(
                "SELECT extract(epoch FROM o.delivered_at - c.schedule_at) * 1000 AS ms "
                "FROM messaging.outbound_messages o JOIN messaging.campaigns c USING "
                "(campaign_id) WHERE o.campaign_id = $1 AND o.delivered_at IS NOT NULL",
                campaign.campaign_id)
        finally:
            await conn.close()
        latencies = sorted(float(r["ms"]) for r in rows)
        count = len(latencies)
        return [Result(
            name="messaging/campaign-fanout-20k", concurrency=1, operations=count,
            errors=errors, seconds=round(elapsed, 3),
            throughput=round(count / elapsed, 1) if elapsed else 0.0,
            p50_ms=round(statistics.median(latencies), 3) if count else 0.0,
            p99_ms=round(latencies[min(count - 1, int(count * 0.99))], 3) if count else 0.0,
            log_level=ctx.log_levels[0], cpu_ms_per_op=cpu.per_operation(count))]


async def _launch_and_settle(messaging: pb_grpc.MessagingServiceStub, brand_id: str,
                             campaign_id: str, targeted: int) -> tuple[float, int]:
    """Launch and wait until every targeted message is delivered, read or suppressed (at most
    300 s): the seconds it took and the messages still unsettled then."""
    started = time.monotonic()
    await messaging.LaunchCampaign(pb.LaunchCampaignRequest(
        request_id=f"bench:launch:{campaign_id}", brand_id=brand_id, campaign_id=campaign_id),
        timeout=10)
    report_request = pb.GetCampaignReportRequest(brand_id=brand_id, campaign_id=campaign_id)
    while True:
        report = (await messaging.GetCampaignReport(report_request, timeout=30)).report
        settled = report.delivered + report.read + sum(report.suppressed.values())
        if report.targeted == targeted and settled == report.targeted:
            return time.monotonic() - started, 0
        if time.monotonic() - started > 300:
            return time.monotonic() - started, report.targeted - settled
        await asyncio.sleep(0.2)

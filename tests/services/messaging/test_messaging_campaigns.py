"""Campaigns: snapshot fan-out, holdout, throttle, quiet hours, caps, opt-outs, cancelled
members, retries that never message anyone twice, and the report with conversions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.message import Message

from brandclub.events.v1 import membership_events_pb2
from brandclub.messaging.v1 import messaging_service_pb2 as pb
from libs.grpc_client import remote_error
from libs.outbox import new_envelope, stream_name
from libs.protoconv import timestamp
from libs.redis import connect_redis
from tests.services.messaging.conftest import Env, rid


async def publish(env: Env, brand_id: str, payloads: Sequence[Message]) -> None:
    """Put membership events on the bus as membership's relay would, then consume them."""
    redis = connect_redis(env.redis_url)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for payload in payloads:
                envelope = new_envelope(brand_id=brand_id, producer="membership",
                                        payload=payload)
                pipe.xadd(stream_name("membership"), {"envelope": envelope.SerializeToString()})
            await pipe.execute()
    finally:
        await redis.aclose()
    consumer = env.options.loops["consumer"]
    await consumer.ensure_groups()
    while await consumer.poll_once(block_ms=10):
        pass


async def campaign(env: Env, brand_id: str, snapshot_id: str, template_id: str, *,
                   holdout_basis_points: int = 0, throttle_per_second: int = 0,
                   conversion_window_days: int = 0) -> pb.Campaign:
    return (await env.messaging.CreateCampaign(pb.CreateCampaignRequest(
        request_id=rid(), campaign=pb.Campaign(
            brand_id=brand_id, name="spring", snapshot_id=snapshot_id, template_id=template_id,
            channel=pb.CHANNEL_INBOX, variables={"offer": "20% off"},
            holdout_basis_points=holdout_basis_points, throttle_per_second=throttle_per_second,
            conversion_window_days=conversion_window_days)))).campaign


async def all_recipients(env: Env, brand_id: str, campaign_id: str
                         ) -> list[pb.CampaignRecipient]:
    out: list[pb.CampaignRecipient] = []
    token = ""
    while True:
        page = await env.messaging.ListCampaignRecipients(pb.ListCampaignRecipientsRequest(
            brand_id=brand_id, campaign_id=campaign_id, page_size=200, page_token=token))
        out += page.recipients
        token = page.next_page_token
        if not token:
            return out


@pytest.mark.timeout(240)
async def test_campaign_to_ten_thousand_members_accounts_for_everyone(env: Env) -> None:
    """10,000 members: each one held out, delivered once, or suppressed with its reason."""
    brand = await env.brand()
    earlier = await env.add_members(brand, 1000, prefix="acc_a", level=2)
    rest = await env.add_members(brand, 9000, prefix="acc_b", level=1)
    opted_out, cancelled = set(rest[:500]), set(rest[500:700])
    await env.messaging.SetMessagingPolicy(pb.SetMessagingPolicyRequest(
        request_id=rid(), policy=pb.MessagingPolicy(
            brand_id=brand, daily_cap=1, weekly_cap=1, quiet_start_minute=22 * 60,
            quiet_end_minute=8 * 60)))
    template = await env.inbox_template(brand)

    # Monday 10:00 local: a first campaign reaches the 1,000 level-2 members.
    first = await campaign(env, brand, (await env.snapshot_all(brand, 2)).snapshot_id,
                           template.template_id)
    await env.messaging.LaunchCampaign(pb.LaunchCampaignRequest(
        request_id=rid(), brand_id=brand, campaign_id=first.campaign_id))
    await env.fan_out()
    await env.dispatch()
    first_report = (await env.messaging.GetCampaignReport(pb.GetCampaignReportRequest(
        brand_id=brand, campaign_id=first.campaign_id))).report
    assert (first_report.targeted, first_report.delivered) == (1000, 1000)

    for account in sorted(opted_out):
        await env.messaging.SetConsent(pb.SetConsentRequest(
            request_id=rid(), brand_id=brand, account_id=account, channel=pb.CHANNEL_INBOX,
            purpose=pb.PURPOSE_MARKETING, granted=False, source="member_centre"))
    await publish(env, brand, [membership_events_pb2.MemberCancelled(
        brand_id=brand, account_id=a, member_id=f"mbr_{a}") for a in sorted(cancelled)])

    # Monday 23:00 local (quiet hours): the big campaign, 10% held out, 100 messages a second.
    env.clock.now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    snapshot = await env.snapshot_all(brand, 0)
    assert snapshot.member_count == 10_000
    big = await campaign(env, brand, snapshot.snapshot_id, template.template_id,
                         holdout_basis_points=1000, throttle_per_second=100,
                         conversion_window_days=7)
    await env.messaging.LaunchCampaign(pb.LaunchCampaignRequest(
        request_id=rid(), brand_id=brand, campaign_id=big.campaign_id))
    await env.fan_out()
    await env.dispatch()
    env.clock.now += timedelta(seconds=120)  # every throttled slot has come; still quiet
    await env.dispatch()
    mid = (await env.messaging.GetCampaignReport(pb.GetCampaignReportRequest(
        brand_id=brand, campaign_id=big.campaign_id))).report
    assert mid.delivered == 0 and mid.queued > 8000  # waiting for the morning, not dropped

    env.clock.now = datetime(2026, 3, 3, 0, 0, tzinfo=UTC) + timedelta(seconds=101)
    await env.dispatch()

    # Retries: launching again, retrying failures and a fan-out re-run from the start.
    again = await env.messaging.LaunchCampaign(pb.LaunchCampaignRequest(
        request_id=rid(), brand_id=brand, campaign_id=big.campaign_id))
    assert again.campaign.status == pb.CAMPAIGN_STATUS_FANNED_OUT
    retried = await env.messaging.RetryCampaign(pb.RetryCampaignRequest(
        request_id=rid(), brand_id=brand, campaign_id=big.campaign_id))
    assert retried.requeued_count == 0
    await env.sql("UPDATE messaging.campaigns SET status = 'running', fanout_token = '', "
                  "fanout_count = 0 WHERE campaign_id = $1", big.campaign_id)
    await env.fan_out()
    await env.dispatch()

    recipients = await all_recipients(env, brand, big.campaign_id)
    accounts = [r.account_id for r in recipients]
    assert len(accounts) == len(set(accounts)) == 10_000
    assert set(accounts) == set(earlier) | set(rest)
    outcome: Counter[str] = Counter()
    for r in recipients:
        if r.holdout:
            assert not r.HasField("message")
            outcome["HOLDOUT"] += 1
            continue
        m = r.message
        if r.account_id in cancelled:
            expected = "MEMBER_CANCELLED"
        elif r.account_id in opted_out:
            expected = "OPTED_OUT"
        elif r.account_id in earlier:
            expected = "FREQUENCY_CAP_WEEKLY"
        else:
            expected = ""
        if expected:
            assert (m.status, m.reason) == (pb.MESSAGE_STATUS_SUPPRESSED, expected), r
        else:
            assert m.status == pb.MESSAGE_STATUS_DELIVERED, r
            assert m.deferrals == 1
        outcome[expected or "DELIVERED"] += 1
    assert 800 < outcome["HOLDOUT"] < 1200
    twice = await env.sql(
        "SELECT account_id FROM messaging.inbox_messages WHERE campaign_id = $1 "
        "GROUP BY account_id HAVING count(*) > 1", big.campaign_id)
    assert twice == []
    boxes = await env.sql("SELECT count(*) AS n FROM messaging.inbox_messages "
                          "WHERE campaign_id = $1", big.campaign_id)
    assert boxes[0]["n"] == outcome["DELIVERED"]
    bodies = await env.sql("SELECT DISTINCT body FROM messaging.inbox_messages "
                           "WHERE campaign_id = $1", big.campaign_id)
    assert [b["body"] for b in bodies] == ["Hi LV1, 20% off at Acme"]

    # Conversions: 30 messaged members and 20 held-out members order within the window.
    messaged = [r.account_id for r in recipients
                if not r.holdout and r.message.status == pb.MESSAGE_STATUS_DELIVERED][:30]
    held = [r.account_id for r in recipients if r.holdout][:20]
    paid = timestamp(env.clock.now + timedelta(days=1))
    late = timestamp(env.clock.now + timedelta(days=30))
    await publish(env, brand, [membership_events_pb2.OrderPaid(
        brand_id=brand, shop_id="shp_1", account_id=a, order_id=f"o_{a}", paid_cents=5000,
        paid_time=paid) for a in messaged + held] + [membership_events_pb2.OrderPaid(
            brand_id=brand, shop_id="shp_1", account_id=messaged[0], order_id="o_late",
            paid_cents=7000, paid_time=late)])
    report = (await env.messaging.GetCampaignReport(pb.GetCampaignReportRequest(
        brand_id=brand, campaign_id=big.campaign_id))).report
    assert report.targeted == 10_000
    assert report.holdout == outcome["HOLDOUT"]
    assert report.delivered == outcome["DELIVERED"]
    assert dict(report.suppressed) == {"MEMBER_CANCELLED": outcome["MEMBER_CANCELLED"],
                                       "OPTED_OUT": outcome["OPTED_OUT"],
                                       "FREQUENCY_CAP_WEEKLY": outcome["FREQUENCY_CAP_WEEKLY"]}
    assert report.holdout + sum(report.suppressed.values()) + report.delivered == 10_000
    assert (report.converted, report.converted_revenue_cents) == (30, 150_000)
    assert (report.holdout_converted, report.holdout_revenue_cents) == (20, 100_000)
    assert report.holdout_conversion_rate_basis_points == round(20 * 10_000 / report.holdout)


async def test_campaign_refuses_template_of_other_channel_and_unknown_snapshot(
        env: Env) -> None:
    """A campaign names its problem: channel mismatch, then a snapshot that does not exist."""
    brand = await env.brand()
    template = await env.inbox_template(brand)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.messaging.CreateCampaign(pb.CreateCampaignRequest(
            request_id=rid(), campaign=pb.Campaign(
                brand_id=brand, name="x", snapshot_id="snp_1", template_id=template.template_id,
                channel=pb.CHANNEL_SMS, variables={"offer": "y"})))
    assert remote_error(caught.value).metadata["field"] == "campaign.channel"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await campaign(env, brand, "snp_missing", template.template_id)
    assert remote_error(caught.value).reason == "SNAPSHOT_NOT_FOUND"


async def test_scheduled_campaign_waits_for_its_time(env: Env) -> None:
    """A campaign scheduled for later takes nobody in before its time."""
    brand = await env.brand()
    await env.add_members(brand, 3)
    template = await env.inbox_template(brand)
    created = await campaign(env, brand, (await env.snapshot_all(brand)).snapshot_id,
                             template.template_id)
    at = env.clock.now + timedelta(hours=2)
    await env.messaging.LaunchCampaign(pb.LaunchCampaignRequest(
        request_id=rid(), brand_id=brand, campaign_id=created.campaign_id,
        schedule_time=timestamp(at)))
    assert await env.fan_out() == 0
    env.clock.now = at
    assert await env.fan_out() == 3
    await env.dispatch()
    report = (await env.messaging.GetCampaignReport(pb.GetCampaignReportRequest(
        brand_id=brand, campaign_id=created.campaign_id))).report
    assert report.delivered == 3

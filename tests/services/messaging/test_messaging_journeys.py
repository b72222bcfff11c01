"""Journeys: triggered by membership events, waiting, branching, sending and granting points
through the real benefits service; surviving a restart mid-wait; idempotent under redelivery;
entered once without re-entry; and the per-journey report."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import grpc
import pytest
from google.protobuf.message import Message

from brandclub.benefits.v1 import benefits_service_pb2 as bpb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as bgrpc
from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from brandclub.membership.v1 import membership_service_pb2 as mpb
from brandclub.membership.v1 import membership_service_pb2_grpc as mgrpc
from brandclub.membership.v1 import segment_service_pb2 as spb
from brandclub.membership.v1 import segment_service_pb2_grpc as sgrpc
from brandclub.messaging.v1 import messaging_service_pb2 as pb
from brandclub.messaging.v1 import messaging_service_pb2_grpc as pb_grpc
from libs.config import Settings
from libs.db import Database
from libs.errors import Unavailable
from libs.eventbus import EventConsumer
from libs.grpc_client import remote_error
from libs.outbox import new_envelope, stream_name
from libs.protoconv import timestamp
from libs.redis import connect_redis
from libs.sagas import RetryPolicy
from libs.service import RunningService, start_service
from libs.testing import ContractChannel, contract_channel, running_service, service_settings
from services.benefits.domain.points import ExpiryMode, PointsPolicy, Source
from services.benefits.main import compose as benefits_compose
from services.benefits.usecases import config as benefits_config
from services.benefits.usecases.ledger import Ledger
from services.membership.main import compose as membership_compose
from services.messaging.main import MessagingOptions, make_compose
from services.messaging.usecases import journey_runner
from services.messaging.usecases.dispatch import drain
from services.messaging.usecases.journey_runner import JourneyRunner
from tests.services.messaging.conftest import Clock, rid


@dataclass
class World:
    settings: Settings
    clock: Clock
    redis_url: str
    membership: mgrpc.MembershipServiceStub
    benefits: bgrpc.BenefitsServiceStub
    admin: bgrpc.BenefitsAdminServiceStub
    benefits_db: Database
    messaging: RunningService | None = None
    options: MessagingOptions | None = None
    channel: grpc.aio.Channel | None = None

    async def start_messaging(self) -> pb_grpc.MessagingServiceStub:
        self.options = MessagingOptions(clock=self.clock, run_background=False)
        self.messaging = await start_service(self.settings, make_compose(self.options), port=0,
                                             host="127.0.0.1")
        self.channel = contract_channel(self.messaging)
        return pb_grpc.MessagingServiceStub(self.channel)

    async def stop_messaging(self) -> None:
        assert self.messaging is not None
        if self.channel is not None:
            await self.channel.close()
        await self.messaging.stop(grace_seconds=0.2)
        self.messaging = None

    @property
    def runner(self) -> JourneyRunner:
        assert self.options is not None
        runner: JourneyRunner = self.options.loops["runner"]
        return runner

    async def consume(self) -> int:
        assert self.options is not None
        consumer: EventConsumer = self.options.loops["consumer"]
        await consumer.ensure_groups()
        total = 0
        while handled := await consumer.poll_once(block_ms=10):
            total += handled
        return total

    async def follow(self, brand_id: str, *accounts: str) -> None:
        """Make each account an LV0 member of the brand (benefits acts only for members)."""
        shop = (await self.membership.CreateShop(mpb.CreateShopRequest(
            request_id=rid(), brand_id=brand_id, display_name="Store"))).shop
        for account in accounts:
            await self.membership.FollowShop(mpb.FollowShopRequest(
                request_id=rid(), shop_id=shop.shop_id, account_id=account))

    async def publish(self, envelopes: list[envelope_pb2.EventEnvelope]) -> None:
        redis = connect_redis(self.redis_url)
        try:
            for envelope in envelopes:
                await redis.xadd(stream_name("membership"),
                                 {"envelope": envelope.SerializeToString()})
        finally:
            await redis.aclose()


def event(brand_id: str, payload: Message) -> envelope_pb2.EventEnvelope:
    return new_envelope(brand_id=brand_id, producer="membership", payload=payload)


@pytest.fixture
async def world(db_url: str, redis_url: str) -> AsyncIterator[World]:
    clock = Clock(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    async with running_service(service_settings("membership", db_url, redis_url),
                               membership_compose) as membership, \
            running_service(service_settings("benefits", db_url, redis_url,
                                             MEMBERSHIP_ADDR=membership.address),
                            benefits_compose) as benefits:
        settings = service_settings("messaging", db_url, redis_url,
                                    MEMBERSHIP_ADDR=membership.address,
                                    BENEFITS_ADDR=benefits.address)
        mchannel = contract_channel(membership)
        bchannel = contract_channel(benefits)
        w = World(settings, clock, redis_url, mgrpc.MembershipServiceStub(mchannel),
                  bgrpc.BenefitsServiceStub(bchannel), bgrpc.BenefitsAdminServiceStub(bchannel),
                  benefits.resources.db)
        yield w
        if w.messaging is not None:
            await w.stop_messaging()
        await mchannel.close()
        await bchannel.close()


async def abandoned_cart_journey(messaging: pb_grpc.MessagingServiceStub, brand: str,
                                 coupon_template_id: str) -> pb.Journey:
    template = (await messaging.CreateTemplate(pb.CreateTemplateRequest(
        request_id=rid(), template=pb.Template(
            brand_id=brand, channel=pb.CHANNEL_INBOX, purpose=pb.PURPOSE_MARKETING,
            name="cart", title="{{brand_name}}", body="Your cart misses you")))).template
    S = pb.JourneyStep
    journey = (await messaging.CreateJourney(pb.CreateJourneyRequest(
        request_id=rid(), journey=pb.Journey(
            brand_id=brand, name="abandoned cart", trigger=pb.JOURNEY_TRIGGER_CART_ADDED,
            steps=[
                S(step_id="wait", kind=pb.JOURNEY_STEP_KIND_WAIT, wait_minutes=120,
                  next_step_id="ordered"),
                S(step_id="ordered", kind=pb.JOURNEY_STEP_KIND_BRANCH,
                  condition=pb.JOURNEY_CONDITION_ORDERED_SINCE_ENTRY,
                  on_true_step_id="done", on_false_step_id="nudge"),
                S(step_id="nudge", kind=pb.JOURNEY_STEP_KIND_SEND,
                  template_id=template.template_id, next_step_id="reward"),
                S(step_id="reward", kind=pb.JOURNEY_STEP_KIND_GRANT_POINTS, points=50,
                  next_step_id="coupon"),
                S(step_id="coupon", kind=pb.JOURNEY_STEP_KIND_ISSUE_COUPON,
                  coupon_template_id=coupon_template_id, next_step_id="done"),
                S(step_id="done", kind=pb.JOURNEY_STEP_KIND_EXIT),
            ])))).journey
    await messaging.SetJourneyActive(pb.SetJourneyActiveRequest(
        request_id=rid(), brand_id=brand, journey_id=journey.journey_id, active=True))
    return journey


async def test_journey_survives_restart_mid_wait_and_is_idempotent(world: World) -> None:
    """Abandoned cart: the buyer exits, the other gets one nudge and 50 points after a restart;
    a redelivered event and a second cart event enter nobody again."""
    brand = (await world.membership.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="Asia/Shanghai"))).brand.brand_id
    coupon = (await world.admin.CreateCouponTemplate(bpb.CreateCouponTemplateRequest(
        request_id=rid(), template=bpb.CouponTemplate(
            brand_id=brand, title="5 off", kind=bpb.COUPON_KIND_AMOUNT_OFF,
            amount_off_cents=500, threshold_cents=5000, valid_days=7,
            total_stock=100)))).template
    await world.follow(brand, "acc_buyer", "acc_idle")
    messaging = await world.start_messaging()
    journey = await abandoned_cart_journey(messaging, brand, coupon.template_id)
    cart_a = event(brand, membership_events_pb2.CartItemAdded(
        brand_id=brand, shop_id="shp_1", account_id="acc_buyer", sku_id="sku"))
    cart_b = event(brand, membership_events_pb2.CartItemAdded(
        brand_id=brand, shop_id="shp_1", account_id="acc_idle", sku_id="sku"))
    await world.publish([cart_a, cart_b, cart_b])  # cart_b delivered twice
    await world.consume()
    await drain(world.runner.run_once)
    report = await messaging.GetJourneyReport(pb.GetJourneyReportRequest(
        brand_id=brand, journey_id=journey.journey_id))
    assert (report.entered, dict(report.at_step)) == (2, {"wait": 2})

    # The buyer orders an hour later; then the service restarts while both wait.
    world.clock.now += timedelta(hours=1)
    await world.publish([event(brand, membership_events_pb2.OrderPaid(
        brand_id=brand, shop_id="shp_1", account_id="acc_buyer", order_id="o1",
        paid_cents=9900, paid_time=timestamp(world.clock.now)))])
    await world.consume()
    await world.stop_messaging()
    world.clock.now += timedelta(minutes=30)
    messaging = await world.start_messaging()
    assert await drain(world.runner.run_once) == 0  # 90 minutes in: still waiting
    world.clock.now += timedelta(minutes=31)
    await drain(world.runner.run_once)
    await drain(world.options.loops["dispatcher"].run_once)  # type: ignore[union-attr]

    # A second cart event for the idle member: no re-entry allowed.
    await world.publish([event(brand, membership_events_pb2.CartItemAdded(
        brand_id=brand, shop_id="shp_1", account_id="acc_idle", sku_id="sku2"))])
    await world.consume()
    await drain(world.runner.run_once)

    boxes = {}
    for account in ("acc_buyer", "acc_idle"):
        box = await messaging.ListInboxMessages(pb.ListInboxMessagesRequest(
            brand_id=brand, account_id=account))
        boxes[account] = [m.body for m in box.messages]
    assert boxes == {"acc_buyer": [], "acc_idle": ["Your cart misses you"]}
    balance = await world.benefits.GetPointsBalance(bpb.GetPointsBalanceRequest(
        brand_id=brand, account_id="acc_idle"))
    assert balance.available_points + balance.pending_points == 50
    for account, held in (("acc_idle", 1), ("acc_buyer", 0)):
        coupons = await world.benefits.ListMemberCoupons(bpb.ListMemberCouponsRequest(
            brand_id=brand, account_id=account))
        assert [c.coupon_template_id for c in coupons.coupons] == [coupon.template_id] * held
    report = await messaging.GetJourneyReport(pb.GetJourneyReportRequest(
        brand_id=brand, journey_id=journey.journey_id))
    assert (report.entered, report.exited, report.converted, report.entry_refused,
            dict(report.at_step)) == (2, 2, 1, 1, {})


async def test_journey_with_a_cycle_is_refused(world: World) -> None:
    """Steps that loop back are refused naming the cycle."""
    messaging = await world.start_messaging()
    S = pb.JourneyStep
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await messaging.CreateJourney(pb.CreateJourneyRequest(
            request_id=rid(), journey=pb.Journey(
                brand_id="brd_1", name="loop", trigger=pb.JOURNEY_TRIGGER_ORDER_PAID,
                steps=[S(step_id="a", kind=pb.JOURNEY_STEP_KIND_WAIT, wait_minutes=5,
                         next_step_id="b"),
                       S(step_id="b", kind=pb.JOURNEY_STEP_KIND_WAIT, wait_minutes=5,
                         next_step_id="a")])))
    error = remote_error(caught.value)
    assert (error.reason, error.metadata["field"]) == ("STEP_CYCLE", "journey.steps")


async def test_scheduled_birthday_and_repurchase_journeys(world: World, db_url: str) -> None:
    """A daily schedule enters members whose birthday is within 7 days, and whose last order
    was 30 days ago, once; other members, dormant ones and a second run enter nobody."""
    world.clock.now = datetime.now(UTC)
    brand = (await world.membership.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="Asia/Shanghai"))).brand.brand_id
    today = world.clock.now.astimezone(ZoneInfo("Asia/Shanghai")).date()

    def birthday(days_ahead: int) -> date:
        day = today + timedelta(days=days_ahead)
        return day.replace(year=1990) if (day.month, day.day) != (2, 29) else date(1990, 3, 1)

    conn = await asyncpg.connect(db_url)
    try:
        await conn.executemany(
            "INSERT INTO membership.members (member_id, brand_id, account_id, status, level, "
            "source_channel, member_since, joined_at, birthday, dormant) "
            "VALUES ($1, $2, $1, 'card_member', 2, 'storefront', now(), now(), $3, $4)",
            [("acc_soon", brand, birthday(3), False), ("acc_later", brand, birthday(20), False),
             ("acc_dormant", brand, birthday(1), True), ("acc_due", brand, None, False),
             ("acc_recent", brand, None, False)])
        await conn.executemany(
            "INSERT INTO membership.member_stats (brand_id, account_id, order_count, "
            "paid_cents, first_order_at, last_order_at) VALUES ($1, $2, 1, 100, $3, $3)",
            [(brand, "acc_due", world.clock.now - timedelta(days=30, hours=12)),
             (brand, "acc_recent", world.clock.now - timedelta(days=10))])
    finally:
        await conn.close()
    messaging = await world.start_messaging()
    template = (await messaging.CreateTemplate(pb.CreateTemplateRequest(
        request_id=rid(), template=pb.Template(
            brand_id=brand, channel=pb.CHANNEL_INBOX, purpose=pb.PURPOSE_MARKETING,
            name="greet", title="{{brand_name}}", body="{{greeting}}, LV{{to_level}}",
            custom_variables=["greeting"])))).template
    journeys = {}
    for trigger, days, greeting in ((pb.JOURNEY_TRIGGER_BIRTHDAY, 7, "Happy birthday"),
                                    (pb.JOURNEY_TRIGGER_REPURCHASE_DUE, 30, "Time to restock")):
        journey = (await messaging.CreateJourney(pb.CreateJourneyRequest(
            request_id=rid(), journey=pb.Journey(
                brand_id=brand, name=greeting, trigger=trigger, trigger_days=days,
                steps=[pb.JourneyStep(step_id="send", kind=pb.JOURNEY_STEP_KIND_SEND,
                                      template_id=template.template_id,
                                      variables={"greeting": greeting})])))).journey
        assert journey.segment_id
        await messaging.SetJourneyActive(pb.SetJourneyActiveRequest(
            request_id=rid(), brand_id=brand, journey_id=journey.journey_id, active=True))
        journeys[greeting] = journey
    assert world.options is not None
    scheduler = world.options.loops["scheduler"]
    assert await scheduler.run_once() == 2
    assert await scheduler.run_once() == 0  # already ran today
    world.clock.now += timedelta(days=1)
    assert await scheduler.run_once() == 0  # a birthday enters once a year
    await drain(world.runner.run_once)
    await drain(world.options.loops["dispatcher"].run_once)
    boxes = {}
    for account in ("acc_soon", "acc_later", "acc_dormant", "acc_due", "acc_recent"):
        box = await messaging.ListInboxMessages(pb.ListInboxMessagesRequest(
            brand_id=brand, account_id=account))
        boxes[account] = [m.body for m in box.messages]
    assert boxes == {"acc_soon": ["Happy birthday, LV2"], "acc_later": [], "acc_dormant": [],
                     "acc_due": ["Time to restock, LV2"], "acc_recent": []}
    report = await messaging.GetJourneyReport(pb.GetJourneyReportRequest(
        brand_id=brand, journey_id=journeys["Happy birthday"].journey_id))
    assert (report.entered, report.exited) == (1, 1)


async def test_branch_on_a_segment_after_an_order(world: World, db_url: str) -> None:
    """An OrderPaid journey branches on a membership segment: VIPs and others get their own
    message, with the order amount from the trigger."""
    brand = (await world.membership.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="Asia/Shanghai"))).brand.brand_id
    conn = await asyncpg.connect(db_url)
    try:
        await conn.executemany(
            "INSERT INTO membership.members (member_id, brand_id, account_id, status, level, "
            "source_channel, member_since, joined_at) "
            "VALUES ($1, $2, $1, 'card_member', $3, 'storefront', now(), now())",
            [("acc_vip", brand, 3), ("acc_regular", brand, 1)])
    finally:
        await conn.close()
    async with ContractChannel(world.settings.address_of("membership"),
                               peer="membership") as channel:
        vip = (await sgrpc.SegmentServiceStub(channel).CreateSegment(spb.CreateSegmentRequest(
            request_id=rid(), brand_id=brand, name="vip",
            rule=spb.SegmentRule(condition=spb.RuleCondition(
                field="tier", operator="gte", number=3))))).segment
    messaging = await world.start_messaging()
    template = (await messaging.CreateTemplate(pb.CreateTemplateRequest(
        request_id=rid(), template=pb.Template(
            brand_id=brand, channel=pb.CHANNEL_INBOX, purpose=pb.PURPOSE_SERVICE,
            name="thanks", title="{{brand_name}}", body="{{text}} ({{order_cents}})",
            custom_variables=["text"])))).template
    S = pb.JourneyStep
    journey = (await messaging.CreateJourney(pb.CreateJourneyRequest(
        request_id=rid(), journey=pb.Journey(
            brand_id=brand, name="thanks", trigger=pb.JOURNEY_TRIGGER_ORDER_PAID,
            allow_reentry=True, steps=[
                S(step_id="vip?", kind=pb.JOURNEY_STEP_KIND_BRANCH,
                  condition=pb.JOURNEY_CONDITION_IN_SEGMENT, segment_id=vip.segment_id,
                  on_true_step_id="vip", on_false_step_id="regular"),
                S(step_id="vip", kind=pb.JOURNEY_STEP_KIND_SEND,
                  template_id=template.template_id, variables={"text": "VIP thanks"}),
                S(step_id="regular", kind=pb.JOURNEY_STEP_KIND_SEND,
                  template_id=template.template_id, variables={"text": "Thanks"}),
            ])))).journey
    await messaging.SetJourneyActive(pb.SetJourneyActiveRequest(
        request_id=rid(), brand_id=brand, journey_id=journey.journey_id, active=True))
    await world.publish([event(brand, membership_events_pb2.OrderPaid(
        brand_id=brand, shop_id="shp_1", account_id=a, order_id=f"o_{a}", paid_cents=1234,
        paid_time=timestamp(world.clock.now))) for a in ("acc_vip", "acc_regular")])
    await world.consume()
    await drain(world.runner.run_once)
    assert world.options is not None
    await drain(world.options.loops["dispatcher"].run_once)
    boxes = {}
    for account in ("acc_vip", "acc_regular"):
        box = await messaging.ListInboxMessages(pb.ListInboxMessagesRequest(
            brand_id=brand, account_id=account))
        boxes[account] = [m.body for m in box.messages]
    assert boxes == {"acc_vip": ["VIP thanks (1234)"], "acc_regular": ["Thanks (1234)"]}


async def test_points_expiring_journey_enters_each_expiry_once(world: World,
                                                              db_url: str) -> None:
    """A daily points-expiring journey enters members whose points expire within 5 days
    (not later ones, fully spent ones or cancelled members), once per expiry day: re-runs,
    the next day and a restart enter nobody again; spending the soonest lot moves the expiry
    to a later day, which enters the member again (re-entry allowed)."""
    zone = ZoneInfo("Asia/Shanghai")
    world.clock.now = datetime.now(UTC)  # benefits answers for the real now
    now = world.clock.now
    brand = (await world.membership.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="Asia/Shanghai"))).brand.brand_id

    def expiry_day(days_ago: int) -> str:
        # Rolling 10 days: points expire at the start of the 11th local day after the grant.
        return ((now - timedelta(days=days_ago)).astimezone(zone).date()
                + timedelta(days=11)).isoformat()

    await world.follow(brand, "acc_soon", "acc_spent")
    async with world.benefits_db.transaction() as conn:
        await benefits_config.save_policy(conn, PointsPolicy(
            brand, ExpiryMode.ROLLING_DAYS, 10, time_zone="Asia/Shanghai"), now)
        ledger = Ledger(conn)
        for account, amount, days_ago in (("acc_soon", 100, 8), ("acc_soon", 30, 7),
                                          ("acc_later", 500, 1), ("acc_spent", 40, 8),
                                          ("acc_cancelled", 60, 8)):
            await ledger.grant(brand, account, amount, reason_code="T", source=Source.OPERATOR,
                               request_id=rid(), now=now - timedelta(days=days_ago))
    await world.benefits.SpendPoints(bpb.SpendPointsRequest(
        request_id=rid(), brand_id=brand, account_id="acc_spent", amount=40,
        reason_code="MALL", source=bpb.POINTS_SOURCE_MALL))

    messaging = await world.start_messaging()
    await world.publish([event(brand, membership_events_pb2.MemberCancelled(
        brand_id=brand, account_id="acc_cancelled", member_id="mbr_c", reason="USER"))])
    await world.consume()
    template = (await messaging.CreateTemplate(pb.CreateTemplateRequest(
        request_id=rid(), template=pb.Template(
            brand_id=brand, channel=pb.CHANNEL_INBOX, purpose=pb.PURPOSE_SERVICE,
            name="expiring", title="{{brand_name}}",
            body="{{expiring_points}} points expire on {{expire_date}}")))).template
    journey = (await messaging.CreateJourney(pb.CreateJourneyRequest(
        request_id=rid(), journey=pb.Journey(
            brand_id=brand, name="points expiring", trigger=pb.JOURNEY_TRIGGER_POINTS_EXPIRING,
            trigger_days=5, allow_reentry=True,
            steps=[pb.JourneyStep(step_id="send", kind=pb.JOURNEY_STEP_KIND_SEND,
                                  template_id=template.template_id)])))).journey
    assert journey.trigger == pb.JOURNEY_TRIGGER_POINTS_EXPIRING and not journey.segment_id
    await messaging.SetJourneyActive(pb.SetJourneyActiveRequest(
        request_id=rid(), brand_id=brand, journey_id=journey.journey_id, active=True))

    async def run_schedule() -> int:
        assert world.options is not None
        entered: int = await world.options.loops["scheduler"].run_once()
        await drain(world.runner.run_once)
        await drain(world.options.loops["dispatcher"].run_once)
        return entered

    async def forget_schedule() -> None:  # as if the run had crashed before marking the day
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("UPDATE messaging.journeys SET scheduled_until = NULL "
                               "WHERE journey_id = $1", journey.journey_id)
        finally:
            await conn.close()

    assert await run_schedule() == 1
    assert await run_schedule() == 0  # already ran today
    await forget_schedule()
    assert await run_schedule() == 0  # a re-run of the day: same entry keys
    await world.stop_messaging()
    world.clock.now += timedelta(days=1)
    messaging = await world.start_messaging()
    assert await run_schedule() == 0  # next day, same soonest expiry: not again

    # The soonest lot is spent: the member's next expiry is a day later, a new window.
    await world.benefits.SpendPoints(bpb.SpendPointsRequest(
        request_id=rid(), brand_id=brand, account_id="acc_soon", amount=100,
        reason_code="MALL", source=bpb.POINTS_SOURCE_MALL))
    await forget_schedule()
    assert await run_schedule() == 1

    boxes = {}
    for account in ("acc_soon", "acc_later", "acc_spent", "acc_cancelled"):
        box = await messaging.ListInboxMessages(pb.ListInboxMessagesRequest(
            brand_id=brand, account_id=account))
        boxes[account] = [m.body for m in box.messages]
    assert boxes == {"acc_soon": [f"30 points expire on {expiry_day(7)}",
                                  f"130 points expire on {expiry_day(8)}"],
                     "acc_later": [], "acc_spent": [], "acc_cancelled": []}
    report = await messaging.GetJourneyReport(pb.GetJourneyReportRequest(
        brand_id=brand, journey_id=journey.journey_id))
    assert (report.entered, report.exited) == (2, 2)



async def _idle_member_at_the_reward_steps(world: World, account: str
                                           ) -> tuple[pb_grpc.MessagingServiceStub, str,
                                                      pb.Journey, str]:
    """An abandoned-cart run for `account`, due to send, grant and issue its coupon."""
    brand = (await world.membership.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="Asia/Shanghai"))).brand.brand_id
    coupon = (await world.admin.CreateCouponTemplate(bpb.CreateCouponTemplateRequest(
        request_id=rid(), template=bpb.CouponTemplate(
            brand_id=brand, title="5 off", kind=bpb.COUPON_KIND_AMOUNT_OFF,
            amount_off_cents=500, threshold_cents=5000, valid_days=7,
            total_stock=100)))).template
    await world.follow(brand, account)
    messaging = await world.start_messaging()
    journey = await abandoned_cart_journey(messaging, brand, coupon.template_id)
    await world.publish([event(brand, membership_events_pb2.CartItemAdded(
        brand_id=brand, shop_id="shp_1", account_id=account, sku_id="sku"))])
    await world.consume()
    await drain(world.runner.run_once)
    world.clock.now += timedelta(minutes=121)
    return messaging, brand, journey, coupon.template_id


async def test_a_journey_step_refused_for_good_stops_the_run_visibly(world: World) -> None:
    """ISSUE_COUPON refused for good (the template closed after the journey was saved): the
    run is not retried every minute; it stops 'failed' at that step with the reason, the
    steps before it stay done once, and the journey's report shows it."""
    messaging, brand, journey, template_id = await _idle_member_at_the_reward_steps(
        world, "acc_closed")
    await world.admin.CloseCouponTemplate(bpb.CloseCouponTemplateRequest(
        request_id=rid(), brand_id=brand, template_id=template_id))
    await drain(world.runner.run_once)
    report = await messaging.GetJourneyReport(pb.GetJourneyReportRequest(
        brand_id=brand, journey_id=journey.journey_id))
    assert report.failed == 1 and dict(report.at_step) == {}
    [failure] = report.recent_failures
    assert (failure.account_id, failure.step_id) == ("acc_closed", "coupon")
    assert failure.failure_reason.startswith("COUPON_NOT_AVAILABLE:")
    world.clock.now += timedelta(hours=2)
    assert await drain(world.runner.run_once) == 0  # nothing retries a failed run
    balance = await world.benefits.GetPointsBalance(bpb.GetPointsBalanceRequest(
        brand_id=brand, account_id="acc_closed"))
    assert balance.available_points + balance.pending_points == 50


class _BenefitsDown:
    """The benefits port of the running messaging service, unreachable for `failures` calls
    of grant_points (the answer a client gets when benefits is down)."""

    def __init__(self, real: object, failures: int, error: Exception) -> None:
        self._real = real
        self.failures = failures
        self.calls = 0
        self._error = error

    async def grant_points(self, **kwargs: object) -> None:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise self._error
        await self._real.grant_points(**kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


@pytest.mark.parametrize("error", [
    Unavailable("benefits is down", reason="DOWN"), ConnectionResetError("reset by peer"),
], ids=["unavailable", "connection-error"])
async def test_a_journey_step_whose_service_is_down_is_retried_to_its_bound(
        world: World, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    """GRANT_POINTS while benefits does not answer: retried with backoff, JOURNEY_RETRY's
    attempts and no more, then the run stops 'failed' with RETRIES_EXHAUSTED; a step that
    goes through on a retry carries on with its next step from a clean count."""
    monkeypatch.setattr(journey_runner, "JOURNEY_RETRY",
                        RetryPolicy(max_attempts=3, base_seconds=1.0, cap_seconds=1.0))
    messaging, brand, journey, _ = await _idle_member_at_the_reward_steps(world, "acc_down")
    down = _BenefitsDown(world.runner._benefits, 100, error)
    monkeypatch.setattr(world.runner, "_benefits", down)
    for _ in range(5):
        await drain(world.runner.run_once)
        world.clock.now += timedelta(seconds=2)
    assert down.calls == 3
    report = await messaging.GetJourneyReport(pb.GetJourneyReportRequest(
        brand_id=brand, journey_id=journey.journey_id))
    [failure] = report.recent_failures
    assert failure.step_id == "reward"
    assert failure.failure_reason.startswith("RETRIES_EXHAUSTED: ")

    # Another member: benefits answers again on the second attempt; the run completes.
    await world.follow(brand, "acc_back")
    await world.publish([event(brand, membership_events_pb2.CartItemAdded(
        brand_id=brand, shop_id="shp_1", account_id="acc_back", sku_id="sku"))])
    await world.consume()
    await drain(world.runner.run_once)
    world.clock.now += timedelta(minutes=121)
    down.failures, down.calls = 1, 0
    for _ in range(3):
        await drain(world.runner.run_once)
        world.clock.now += timedelta(seconds=2)
    assert down.calls == 2
    assert world.messaging is not None
    async with world.messaging.resources.db.connection() as conn:
        run = await conn.fetchrow("SELECT status, exit_reason, attempts FROM journey_runs "
                                  "WHERE brand_id = $1 AND account_id = 'acc_back'", brand)
    assert run is not None
    assert (run["status"], run["exit_reason"], run["attempts"]) == ("exited", "EXIT_STEP", 0)

"""Earning from membership and engagement events: orders with pending points and refunds,
fixed-point rules with caps and budgets, the card-opening gift pack."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.message import Message

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from brandclub.events.v1 import engagement_events_pb2, envelope_pb2, membership_events_pb2
from libs.eventbus import EventConsumer
from libs.grpc_client import remote_error
from libs.outbox import new_envelope, stream_name
from libs.protoconv import timestamp
from libs.redis import connect_redis
from services.benefits.main import CONSUMER_GROUP, TOPICS
from services.benefits.usecases import jobs
from services.benefits.usecases.earning import handle_event
from tests.services.benefits.conftest import Benefits, brand, rid


async def deliver(benefits: Benefits, redis_url: str, payload: Message, brand_id: str,
                  envelope: envelope_pb2.EventEnvelope | None = None
                  ) -> envelope_pb2.EventEnvelope:
    """Hand one event to a consumer of the benefits group, as the bus would."""
    envelope = envelope or new_envelope(brand_id=brand_id, producer="membership",
                                        payload=payload)
    redis = connect_redis(redis_url)
    try:
        consumer = EventConsumer(db=benefits.db, redis=redis, group="benefits-test",
                                 topics=["membership"], handler=handle_event,
                                 consumer_name="t")
        await consumer.handle("s", b"0-1", {b"envelope": envelope.SerializeToString()})
    finally:
        await redis.aclose()
    return envelope


async def order_rule(benefits: Benefits, b: str, per_unit: int = 1) -> None:
    await benefits.admin.CreateEarningRule(pb.CreateEarningRuleRequest(
        request_id=rid(), rule=pb.EarningRule(
            brand_id=b, trigger=pb.EARNING_TRIGGER_ORDER_PAID, title="Shopping",
            points_per_currency_unit=per_unit, enabled=True)))


def paid(b: str, order_id: str, cents: int, window_end: datetime) -> Message:
    return membership_events_pb2.OrderPaid(
        brand_id=b, shop_id="shp", account_id="acc", order_id=order_id, paid_cents=cents,
        paid_time=timestamp(datetime.now(UTC)), return_window_end_time=timestamp(window_end))


def refunded(b: str, order_id: str, cents: int) -> Message:
    return membership_events_pb2.OrderRefunded(
        brand_id=b, shop_id="shp", account_id="acc", order_id=order_id,
        refund_id=uuid.uuid4().hex, refunded_cents=cents)


def program_changed(b: str, multipliers: dict[int, int],
                    updated: datetime | None = None) -> Message:
    """Membership's ProgramChanged for a program whose tiers carry these multipliers."""
    return membership_events_pb2.ProgramChanged(
        brand_id=b, program_id="prg_1", update_time=timestamp(updated or datetime.now(UTC)),
        tier_multipliers=[membership_events_pb2.ProgramTierMultiplier(
            level=level, points_multiplier_percent=percent)
            for level, percent in multipliers.items()])


async def multipliers(benefits: Benefits, b: str) -> dict[int, int]:
    listed = await benefits.admin.ListTierMultipliers(pb.ListTierMultipliersRequest(brand_id=b))
    return {m.level: m.multiplier_percent for m in listed.multipliers}


async def test_tier_multipliers_follow_the_program_and_never_go_back(
        benefits: Benefits, redis_url: str) -> None:
    """The multipliers earning applies are the program's latest tiers: a newer program replaces
    them (levels dropped earn x1 again), and an older change delivered late is ignored."""
    b = brand()
    now = datetime.now(UTC)
    await deliver(benefits, redis_url, program_changed(b, {1: 100, 2: 150}, now), b)
    assert await multipliers(benefits, b) == {1: 100, 2: 150}
    await deliver(benefits, redis_url, program_changed(b, {1: 120}, now + timedelta(seconds=1)),
                  b)
    assert await multipliers(benefits, b) == {1: 120}
    await deliver(benefits, redis_url, program_changed(b, {1: 100, 2: 300}, now), b)
    assert await multipliers(benefits, b) == {1: 120}


async def policy_zone(benefits: Benefits, b: str, zone: str,
                      mode: pb.ExpiryMode.ValueType = pb.EXPIRY_MODE_NEVER,
                      days: int = 0) -> pb.PointsPolicy:
    return (await benefits.admin.UpdatePointsPolicy(pb.UpdatePointsPolicyRequest(
        request_id=rid(), policy=pb.PointsPolicy(brand_id=b, expiry_mode=mode, expiry_days=days,
                                                 time_zone=zone)))).policy


async def test_points_policy_time_zone_is_the_brands_own(benefits: Benefits,
                                                         redis_url: str) -> None:
    """The zone daily caps and expiry count in is the brand's (membership's BrandCreated): it
    replaces one set before it arrived, an update naming another is refused naming the field,
    an empty one keeps it; a brand without a policy gets the default policy in its zone."""
    b = brand()
    assert (await policy_zone(benefits, b, "Asia/Tokyo")).time_zone == "Asia/Tokyo"
    await deliver(benefits, redis_url, membership_events_pb2.BrandCreated(
        brand_id=b, time_zone="Europe/Berlin"), b)
    got = (await benefits.admin.GetPointsPolicy(pb.GetPointsPolicyRequest(brand_id=b))).policy
    assert (got.time_zone, got.expiry_mode) == ("Europe/Berlin", pb.EXPIRY_MODE_NEVER)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await policy_zone(benefits, b, "Asia/Shanghai")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = remote_error(caught.value)
    assert (error.reason, error.metadata["field"]) == ("TIME_ZONE_IS_THE_BRANDS",
                                                       "policy.time_zone")
    kept = await policy_zone(benefits, b, "", pb.EXPIRY_MODE_ROLLING_DAYS, 30)
    assert (kept.time_zone, kept.expiry_days) == ("Europe/Berlin", 30)
    assert (await policy_zone(benefits, b, "Europe/Berlin")).time_zone == "Europe/Berlin"
    fresh = brand()
    await deliver(benefits, redis_url, membership_events_pb2.BrandCreated(
        brand_id=fresh, time_zone="America/New_York"), fresh)
    got = (await benefits.admin.GetPointsPolicy(pb.GetPointsPolicyRequest(
        brand_id=fresh))).policy
    assert (got.time_zone, got.expiry_mode) == ("America/New_York", pb.EXPIRY_MODE_NEVER)


async def test_order_points_pending_with_tier_multiplier_once_per_order(
        benefits: Benefits, redis_url: str) -> None:
    """A paid order earns units x rate x tier multiplier (the program's, from ProgramChanged)
    as pending points, once per order even when delivered twice or as two events."""
    b = brand()
    await order_rule(benefits, b, per_unit=2)
    await deliver(benefits, redis_url, program_changed(b, {1: 100, 2: 150}), b)
    await deliver(benefits, redis_url, membership_events_pb2.MemberTierChanged(
        brand_id=b, account_id="acc", from_level=1, to_level=2), b)
    window = datetime.now(UTC) + timedelta(days=7)
    envelope = await deliver(benefits, redis_url, paid(b, "o1", 10_050, window), b)
    await deliver(benefits, redis_url, paid(b, "o1", 10_050, window), b, envelope)
    await deliver(benefits, redis_url, paid(b, "o1", 10_050, window), b)
    balance = await benefits.balance(b, "acc")
    assert (balance.available_points, balance.pending_points) == (0, 301)
    assert await jobs.release_once(benefits.db, window + timedelta(seconds=1)) == 1
    balance = await benefits.balance(b, "acc")
    assert (balance.available_points, balance.pending_points) == (301, 0)


async def test_refund_inside_window_cancels_pending(benefits: Benefits, redis_url: str) -> None:
    """A refund inside the return window cancels its share of the pending points."""
    b = brand()
    await order_rule(benefits, b)
    window = datetime.now(UTC) + timedelta(days=7)
    await deliver(benefits, redis_url, paid(b, "o1", 20_000, window), b)
    await deliver(benefits, redis_url, refunded(b, "o1", 5_000), b)
    balance = await benefits.balance(b, "acc")
    assert (balance.available_points, balance.pending_points) == (0, 150)
    await deliver(benefits, redis_url, refunded(b, "o1", 15_000), b)
    assert (await benefits.balance(b, "acc")).pending_points == 0
    assert await jobs.release_once(benefits.db, window + timedelta(seconds=1)) == 0
    assert await benefits.consistent(b)


async def test_refund_after_release_claws_back_and_records_shortfall(
        benefits: Benefits, redis_url: str) -> None:
    """A refund after points became available claws them back; when some were spent the
    shortfall is recorded and paid off by the next points earned."""
    b = brand()
    await order_rule(benefits, b)
    window = datetime.now(UTC) + timedelta(days=7)
    await deliver(benefits, redis_url, paid(b, "o1", 10_000, window), b)
    await jobs.release_once(benefits.db, window + timedelta(seconds=1))
    await benefits.api.SpendPoints(pb.SpendPointsRequest(
        request_id=rid(), brand_id=b, account_id="acc", amount=80, reason_code="MALL",
        source=pb.POINTS_SOURCE_MALL))
    await deliver(benefits, redis_url, refunded(b, "o1", 10_000), b)
    balance = await benefits.balance(b, "acc")
    assert (balance.available_points, balance.shortfall_points) == (0, 80)
    await benefits.grant(b, "acc", 100)
    balance = await benefits.balance(b, "acc")
    assert (balance.available_points, balance.shortfall_points) == (20, 0)
    assert await benefits.consistent(b)


async def test_refund_after_release_may_go_negative_when_policy_allows(
        benefits: Benefits, redis_url: str) -> None:
    """With negative balances allowed, a clawback takes the balance below zero."""
    b = brand()
    await benefits.admin.UpdatePointsPolicy(pb.UpdatePointsPolicyRequest(
        request_id=rid(), policy=pb.PointsPolicy(brand_id=b, expiry_mode=pb.EXPIRY_MODE_NEVER,
                                                 negative_balance_allowed=True)))
    await order_rule(benefits, b)
    past = datetime.now(UTC) - timedelta(seconds=1)
    await deliver(benefits, redis_url, paid(b, "o1", 10_000, past), b)
    await benefits.api.SpendPoints(pb.SpendPointsRequest(
        request_id=rid(), brand_id=b, account_id="acc", amount=100, reason_code="MALL",
        source=pb.POINTS_SOURCE_MALL))
    await deliver(benefits, redis_url, refunded(b, "o1", 10_000), b)
    assert (await benefits.balance(b, "acc")).available_points == -100
    await benefits.grant(b, "acc", 130)
    assert (await benefits.balance(b, "acc")).available_points == 30
    assert await benefits.consistent(b)


async def test_sign_in_rule_respects_daily_cap_lifetime_cap_and_budget(
        benefits: Benefits, redis_url: str) -> None:
    """Fixed sign-in points stop at the daily cap per member, the lifetime cap, and the
    rule's budget across members."""
    b = brand()
    rule = (await benefits.admin.CreateEarningRule(pb.CreateEarningRuleRequest(
        request_id=rid(), rule=pb.EarningRule(
            brand_id=b, trigger=pb.EARNING_TRIGGER_SIGN_IN, title="Daily sign-in", points=10,
            daily_cap_points=15, lifetime_cap_points=25, budget_points=40,
            enabled=True)))).rule

    async def sign_in(account: str, day: str) -> None:
        await deliver(benefits, redis_url, engagement_events_pb2.MemberSignedIn(
            brand_id=b, account_id=account, activity_id="act", local_date=day), b)

    for day in ("2026-01-01", "2026-01-01", "2026-01-02", "2026-01-03"):
        await sign_in("a", day)
    assert (await benefits.balance(b, "a")).available_points == 25  # 10+5, 10, then lifetime
    for day in ("2026-01-01", "2026-01-02"):
        await sign_in("z", day)
    assert (await benefits.balance(b, "z")).available_points == 15  # budget 40 - 25 left 15
    got = (await benefits.admin.GetEarningRule(pb.GetEarningRuleRequest(
        brand_id=b, rule_id=rule.rule_id))).rule
    assert got.granted_points == 40


async def test_card_opening_gift_pack_granted_once(benefits: Benefits, redis_url: str) -> None:
    """The card-opening gift pack (points and coupons) is granted once per member and program,
    even when the join arrives twice."""
    b = brand()
    template = await benefits.template(b, stock=10)
    await benefits.admin.CreateGiftPack(pb.CreateGiftPackRequest(
        request_id=rid(), gift_pack=pb.GiftPack(
            brand_id=b, title="Welcome", points=200, enabled=True,
            coupons=[pb.GiftPackCoupon(coupon_template_id=template.template_id, quantity=1)])))
    joined = membership_events_pb2.MemberJoined(brand_id=b, account_id="acc", member_id="m1",
                                                program_id="prg1", level=1)
    await deliver(benefits, redis_url, joined, b)
    await deliver(benefits, redis_url, joined, b)
    assert (await benefits.balance(b, "acc")).available_points == 200
    coupons = await benefits.api.ListMemberCoupons(pb.ListMemberCouponsRequest(
        brand_id=b, account_id="acc"))
    assert [c.coupon_template_id for c in coupons.coupons] == [template.template_id]
    shown = await benefits.api.GetCardOpeningGiftPack(pb.GetCardOpeningGiftPackRequest(
        brand_id=b, account_id="acc"))
    assert shown.gift_pack.points == 200 and shown.already_granted


async def test_events_on_the_bus_reach_the_running_consumer(benefits: Benefits,
                                                            redis_url: str) -> None:
    """A follow event on the membership stream earns the follow rule's points."""
    b = brand()
    await benefits.admin.CreateEarningRule(pb.CreateEarningRuleRequest(
        request_id=rid(), rule=pb.EarningRule(brand_id=b, trigger=pb.EARNING_TRIGGER_FOLLOW,
                                              title="Follow", points=5, enabled=True,
                                              lifetime_cap_points=5)))
    assert CONSUMER_GROUP and "membership" in TOPICS
    redis = connect_redis(redis_url)
    try:
        for _ in range(2):
            envelope = new_envelope(brand_id=b, producer="membership",
                                    payload=membership_events_pb2.MemberFollowed(
                                        brand_id=b, shop_id="s", account_id="acc",
                                        became_lv0=True))
            await redis.xadd(stream_name("membership"),
                             {"envelope": envelope.SerializeToString()})
    finally:
        await redis.aclose()
    for _ in range(200):
        if (await benefits.balance(b, "acc")).available_points:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert (await benefits.balance(b, "acc")).available_points == 5


async def test_invite_rewards_the_inviter_for_its_activity_only(benefits: Benefits,
                                                                redis_url: str) -> None:
    """An invite rule limited to one activity rewards the inviter for that activity only."""
    b = brand()
    await benefits.admin.CreateEarningRule(pb.CreateEarningRuleRequest(
        request_id=rid(), rule=pb.EarningRule(brand_id=b, trigger=pb.EARNING_TRIGGER_INVITE,
                                              title="Invite", points=50, activity_id="act1",
                                              enabled=True)))
    for activity in ("act1", "act2"):
        await deliver(benefits, redis_url, engagement_events_pb2.InviteAccepted(
            brand_id=b, activity_id=activity, inviter_account_id="host",
            invitee_account_id="guest"), b)
    assert (await benefits.balance(b, "host")).available_points == 50
    assert (await benefits.balance(b, "guest")).available_points == 0


async def test_rule_validation_and_one_order_rule(benefits: Benefits) -> None:
    """Bad rules are refused naming the field; a second enabled order rule is refused."""
    b = brand()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await benefits.admin.CreateEarningRule(pb.CreateEarningRuleRequest(
            request_id=rid(), rule=pb.EarningRule(brand_id=b, trigger=pb.EARNING_TRIGGER_VOTE,
                                                  title="Vote", points=0, enabled=True)))
    assert remote_error(caught.value).metadata["field"] == "rule.points"
    with pytest.raises(grpc.aio.AioRpcError) as trigger:
        await benefits.admin.CreateEarningRule(pb.CreateEarningRuleRequest(
            request_id=rid(), rule=pb.EarningRule(brand_id=b, title="?", points=1)))
    assert remote_error(trigger.value).metadata["field"] == "rule.trigger"
    await order_rule(benefits, b)
    with pytest.raises(grpc.aio.AioRpcError) as second:
        await order_rule(benefits, b)
    assert remote_error(second.value).reason == "ORDER_RULE_EXISTS"
    listed = await benefits.admin.ListEarningRules(pb.ListEarningRulesRequest(brand_id=b))
    assert [r.trigger for r in listed.rules] == [pb.EARNING_TRIGGER_ORDER_PAID]


async def test_only_members_earn_from_orders_and_carts(benefits: Benefits,
                                                        redis_url: str) -> None:
    """The eligibility rule reaches earning from events: an order paid, or an item added to the
    cart, by a shopper who was not a member when it happened earns nothing (its refund then
    takes nothing back); a member's earns; an event from before the flag existed earns as
    before."""
    b = brand()
    await order_rule(benefits, b)
    await benefits.admin.CreateEarningRule(pb.CreateEarningRuleRequest(
        request_id=rid(), rule=pb.EarningRule(
            brand_id=b, trigger=pb.EARNING_TRIGGER_CART_ADD, title="Cart", points=5,
            enabled=True)))
    window = datetime.now(UTC) - timedelta(seconds=1)

    def order(order_id: str, member: bool | None) -> Message:
        event = paid(b, order_id, 10_000, window)
        assert isinstance(event, membership_events_pb2.OrderPaid)
        if member is not None:
            event.buyer_is_member = member
        return event

    def cart(member: bool) -> Message:
        return membership_events_pb2.CartItemAdded(
            brand_id=b, shop_id="shp", account_id="acc", sku_id=uuid.uuid4().hex,
            add_time=timestamp(datetime.now(UTC)), shopper_is_member=member)

    await deliver(benefits, redis_url, order("not-member", False), b)
    await deliver(benefits, redis_url, cart(False), b)
    balance = await benefits.balance(b, "acc")
    assert (balance.available_points, balance.pending_points) == (0, 0)
    await deliver(benefits, redis_url, refunded(b, "not-member", 10_000), b)
    assert (await benefits.balance(b, "acc")).available_points == 0

    await deliver(benefits, redis_url, order("member", True), b)
    await deliver(benefits, redis_url, order("before-the-flag", None), b)
    await deliver(benefits, redis_url, cart(True), b)
    balance = await benefits.balance(b, "acc")
    assert balance.available_points + balance.pending_points == 100 + 100 + 5

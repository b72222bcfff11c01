"""Every id that saved configuration names, in every service, is checked when it is saved:
naming another brand's object or one that does not exist is refused with INVALID_ARGUMENT or
NOT_FOUND naming the field, and the brand's own object is accepted.

The table below lists every id-typed field of every configuration message the services save
(earning rules, gift packs, mall items, activities of each kind, journeys, campaigns); the
cross-service ones are checked over gRPC against the real services, in-process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from brandclub.benefits.v1 import benefits_service_pb2 as bpb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as bgrpc
from brandclub.engagement.v1 import engagement_service_pb2 as epb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as egrpc
from brandclub.membership.v1 import membership_service_pb2 as mpb
from brandclub.membership.v1 import membership_service_pb2_grpc as mgrpc
from brandclub.membership.v1 import segment_service_pb2 as spb
from brandclub.membership.v1 import segment_service_pb2_grpc as sgrpc
from brandclub.messaging.v1 import messaging_service_pb2 as xpb
from brandclub.messaging.v1 import messaging_service_pb2_grpc as xgrpc
from libs.grpc_client import remote_error
from libs.testing import channel_to, contract_channel, running_service, service_settings
from services.benefits.adapters.upstreams import GrpcActivities
from services.benefits.main import make_compose as benefits_compose
from services.engagement.main import make_compose as engagement_compose
from services.membership.main import compose as membership_compose
from services.messaging.main import MessagingOptions
from services.messaging.main import make_compose as messaging_compose


def rid() -> str:
    return uuid.uuid4().hex


class LateActivities:
    """Benefits' activities port, pointed at engagement once it runs (engagement calls
    benefits too, so one of them starts first)."""

    target: GrpcActivities | None = None

    async def activity_exists(self, brand_id: str, activity_id: str) -> bool:
        assert self.target is not None
        return await self.target.activity_exists(brand_id, activity_id)


@dataclass
class Brand:
    brand_id: str
    coupon_template_id: str = ""
    activity_id: str = ""
    segment_id: str = ""
    snapshot_id: str = ""
    message_template_id: str = ""


@dataclass
class World:
    benefits: bgrpc.BenefitsAdminServiceStub
    engagement: egrpc.EngagementServiceStub
    messaging: xgrpc.MessagingServiceStub
    own: Brand
    other: Brand


async def make_brand(members: mgrpc.MembershipServiceStub, segments: sgrpc.SegmentServiceStub,
                     benefits: bgrpc.BenefitsAdminServiceStub,
                     engagement: egrpc.EngagementServiceStub,
                     messaging: xgrpc.MessagingServiceStub) -> Brand:
    """A brand with one object of every kind configuration may name."""
    brand = Brand((await members.CreateBrand(mpb.CreateBrandRequest(
        request_id=rid(), display_name="Brand", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="Asia/Shanghai"))).brand.brand_id)
    template = bpb.CouponTemplate(
        brand_id=brand.brand_id, title="5 off", kind=bpb.COUPON_KIND_AMOUNT_OFF,
        amount_off_cents=500, threshold_cents=5000, valid_days=7, total_stock=100)
    template.claim_start_time.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    brand.coupon_template_id = (await benefits.CreateCouponTemplate(
        bpb.CreateCouponTemplateRequest(request_id=rid(), template=template))
    ).template.template_id
    brand.activity_id = (await engagement.CreateActivity(epb.CreateActivityRequest(
        request_id=rid(), brand_id=brand.brand_id, owner=epb.Owner(kind=epb.OWNER_KIND_BRAND),
        spec=spec({"sign_in": {"rewards": [{"day": 1, "reward": {"points": 5}}]}})))
    ).activity.activity_id
    brand.segment_id = (await segments.CreateSegment(spb.CreateSegmentRequest(
        request_id=rid(), brand_id=brand.brand_id, name="everyone",
        rule=spb.SegmentRule(condition=spb.RuleCondition(field="tier", operator="gte",
                                                         number=0))))).segment.segment_id
    brand.snapshot_id = (await segments.CreateSegmentSnapshot(
        spb.CreateSegmentSnapshotRequest(request_id=rid(), brand_id=brand.brand_id,
                                         segment_id=brand.segment_id))).snapshot.snapshot_id
    brand.message_template_id = (await messaging.CreateTemplate(xpb.CreateTemplateRequest(
        request_id=rid(), template=xpb.Template(
            brand_id=brand.brand_id, channel=xpb.CHANNEL_INBOX, purpose=xpb.PURPOSE_SERVICE,
            name="note", title="{{brand_name}}", body="Hello")))).template.template_id
    return brand


def spec(config: dict[str, Any]) -> epb.ActivitySpec:
    now = datetime.now(UTC)
    return json_format.ParseDict({
        "title": "Activity", "start_time": (now - timedelta(hours=1)).isoformat(),
        "end_time": (now + timedelta(days=30)).isoformat(), **config}, epb.ActivitySpec())


@pytest.fixture
async def world(db_url: str, redis_url: str) -> AsyncIterator[World]:
    late = LateActivities()
    async with running_service(service_settings("membership", db_url, redis_url),
                               membership_compose) as membership, \
            running_service(service_settings("benefits", db_url, redis_url,
                                             MEMBERSHIP_ADDR=membership.address),
                            benefits_compose(activities=late)) as benefits:
        addresses = {"MEMBERSHIP_ADDR": membership.address, "BENEFITS_ADDR": benefits.address}
        async with running_service(service_settings("engagement", db_url, redis_url,
                                                    **addresses),
                                   engagement_compose()) as engagement, \
                running_service(service_settings("messaging", db_url, redis_url, **addresses),
                                messaging_compose(MessagingOptions(run_background=False))
                                ) as messaging, \
                channel_to(engagement.address, peer="engagement",
                           caller="benefits") as from_benefits, \
                contract_channel(membership) as mchannel, \
                contract_channel(benefits) as bchannel, \
                contract_channel(engagement) as echannel, \
                contract_channel(messaging) as xchannel:
            late.target = GrpcActivities(from_benefits)
            stubs = (mgrpc.MembershipServiceStub(mchannel), sgrpc.SegmentServiceStub(mchannel),
                     bgrpc.BenefitsAdminServiceStub(bchannel),
                     egrpc.EngagementServiceStub(echannel), xgrpc.MessagingServiceStub(xchannel))
            own = await make_brand(*stubs)
            other = await make_brand(*stubs)
            yield World(stubs[2], stubs[3], stubs[4], own, other)


Save = Callable[[World, str], Awaitable[Any]]


def _activity(config: Callable[[str], dict[str, Any]]) -> Save:
    async def save(w: World, ref: str) -> Any:
        return await w.engagement.CreateActivity(epb.CreateActivityRequest(
            request_id=rid(), brand_id=w.own.brand_id,
            owner=epb.Owner(kind=epb.OWNER_KIND_BRAND), spec=spec(config(ref))))
    return save


async def _activity_update(w: World, ref: str) -> Any:
    """UpdateActivity is checked like CreateActivity (the own activity's prize changes)."""
    return await w.engagement.UpdateActivity(epb.UpdateActivityRequest(
        request_id=rid(), brand_id=w.own.brand_id, activity_id=w.own.activity_id,
        spec=spec({"sign_in": {"rewards": [{"day": 1, "reward": {
            "points": 5, "coupon_template_id": ref}}]}})))


def _prize(ref: str) -> dict[str, Any]:
    return {"lottery": {"mode": "LOTTERY_MODE_INSTANT", "cost_points": 10, "prizes": [
        {"prize_id": "c", "name": "Coupon", "kind": "PRIZE_KIND_COUPON", "weight": 1,
         "stock": 5, "coupon_template_id": ref},
        {"prize_id": "t", "name": "Thanks", "kind": "PRIZE_KIND_THANKS", "weight": 9}]}}


async def _rule(w: World, ref: str) -> Any:
    return await w.benefits.CreateEarningRule(bpb.CreateEarningRuleRequest(
        request_id=rid(), rule=bpb.EarningRule(
            brand_id=w.own.brand_id, trigger=bpb.EARNING_TRIGGER_SIGN_IN, title="Sign in",
            points=5, activity_id=ref, enabled=True)))


async def _rule_update(w: World, ref: str) -> Any:
    rule = (await _rule(w, w.own.activity_id)).rule
    rule.activity_id = ref
    return await w.benefits.UpdateEarningRule(bpb.UpdateEarningRuleRequest(
        request_id=rid(), rule=rule))


async def _gift_pack(w: World, ref: str) -> Any:
    return await w.benefits.CreateGiftPack(bpb.CreateGiftPackRequest(
        request_id=rid(), gift_pack=bpb.GiftPack(
            brand_id=w.own.brand_id, title="Welcome", points=10, enabled=True,
            coupons=[bpb.GiftPackCoupon(coupon_template_id=ref, quantity=1)])))


async def _mall_item(w: World, ref: str) -> Any:
    return await w.benefits.CreateMallItem(bpb.CreateMallItemRequest(
        request_id=rid(), item=bpb.MallItem(
            brand_id=w.own.brand_id, kind=bpb.MALL_ITEM_KIND_COUPON, title="Coupon",
            price_points=10, stock_total=5, coupon_template_id=ref,
            state=bpb.MALL_ITEM_STATE_ON_SALE)))


def _journey(step: Callable[[str], xpb.JourneyStep]) -> Save:
    async def save(w: World, ref: str) -> Any:
        return await w.messaging.CreateJourney(xpb.CreateJourneyRequest(
            request_id=rid(), journey=xpb.Journey(
                brand_id=w.own.brand_id, name="journey", trigger=xpb.JOURNEY_TRIGGER_CART_ADDED,
                steps=[step(ref), xpb.JourneyStep(step_id="done",
                                                  kind=xpb.JOURNEY_STEP_KIND_EXIT)])))
    return save


def _campaign(*, template: bool) -> Save:
    async def save(w: World, ref: str) -> Any:
        return await w.messaging.CreateCampaign(xpb.CreateCampaignRequest(
            request_id=rid(), campaign=xpb.Campaign(
                brand_id=w.own.brand_id, name="spring", channel=xpb.CHANNEL_INBOX,
                template_id=ref if template else w.own.message_template_id,
                snapshot_id=w.own.snapshot_id if template else ref)))
    return save


S = xpb.JourneyStep
# (what is saved, the field that names the reference, the kind of object it names)
CASES: dict[str, tuple[Save, str, str]] = {
    "earning rule": (_rule, "rule.activity_id", "activity_id"),
    "earning rule update": (_rule_update, "rule.activity_id", "activity_id"),
    "gift pack coupon": (_gift_pack, "gift_pack.coupons[0].coupon_template_id",
                         "coupon_template_id"),
    "mall item coupon": (_mall_item, "item.coupon_template_id", "coupon_template_id"),
    "lottery prize": (_activity(_prize), "spec.lottery.prizes[0].coupon_template_id",
                      "coupon_template_id"),
    "sign-in reward": (_activity(lambda ref: {"sign_in": {"rewards": [
        {"day": 1, "reward": {"points": 5, "coupon_template_id": ref}}]}}),
        "spec.sign_in.rewards[0].reward.coupon_template_id", "coupon_template_id"),
    "activity update": (_activity_update, "spec.sign_in.rewards[0].reward.coupon_template_id",
                        "coupon_template_id"),
    "vote gift": (_activity(lambda ref: {"vote": {
        "options": [{"option_id": "a", "label": "A"}, {"option_id": "b", "label": "B"}],
        "votes_per_day": 1, "gift": {"coupon_template_id": ref}}}),
        "spec.vote.gift.coupon_template_id", "coupon_template_id"),
    "invite rewards": (_activity(lambda ref: {"invite": {
        "inviter_reward": {"points": 5}, "invitee_reward": {"coupon_template_id": ref}}}),
        "spec.invite.invitee_reward.coupon_template_id", "coupon_template_id"),
    "journey coupon step": (_journey(lambda ref: S(
        step_id="coupon", kind=xpb.JOURNEY_STEP_KIND_ISSUE_COUPON, coupon_template_id=ref,
        next_step_id="done")), "journey.steps[0].coupon_template_id", "coupon_template_id"),
    "journey segment branch": (_journey(lambda ref: S(
        step_id="vip", kind=xpb.JOURNEY_STEP_KIND_BRANCH,
        condition=xpb.JOURNEY_CONDITION_IN_SEGMENT, segment_id=ref, on_true_step_id="done",
        on_false_step_id="done")), "journey.steps[0].segment_id", "segment_id"),
    "journey send step": (_journey(lambda ref: S(
        step_id="send", kind=xpb.JOURNEY_STEP_KIND_SEND, template_id=ref,
        next_step_id="done")), "journey.steps[0].template_id", "message_template_id"),
    "campaign template": (_campaign(template=True), "campaign.template_id",
                          "message_template_id"),
    "campaign snapshot": (_campaign(template=False), "campaign.snapshot_id", "snapshot_id"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_a_reference_to_another_brand_or_to_nothing_is_refused(world: World,
                                                                     case: str) -> None:
    """Saving configuration that names another brand's object, or one that does not exist,
    is refused naming the field; naming the brand's own object is saved."""
    save, field, kind = CASES[case]
    for ref in (getattr(world.other, kind), f"{kind.split('_')[0]}_missing"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await save(world, ref)
        assert caught.value.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                       grpc.StatusCode.NOT_FOUND), (case, ref)
        assert remote_error(caught.value).metadata.get("field") == field, (case, ref)
    await save(world, getattr(world.own, kind))

"""Engagement against the real benefits service (in-process): points really move."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest
from google.protobuf import json_format

from brandclub.benefits.v1 import benefits_service_pb2 as bpb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as bgrpc
from brandclub.engagement.v1 import engagement_service_pb2 as pb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as pb_grpc
from brandclub.membership.v1 import membership_service_pb2 as mpb
from brandclub.membership.v1 import membership_service_pb2_grpc as mgrpc
from libs.grpc_client import remote_error
from libs.testing import contract_channel, running_service, service_settings
from services.benefits.main import compose as benefits_compose
from services.engagement.main import make_compose
from services.membership.main import compose as membership_compose
from tests.services.engagement.fakes import FakeClock


def rid() -> str:
    return uuid.uuid4().hex


Stubs = tuple[pb_grpc.EngagementServiceStub, bgrpc.BenefitsServiceStub, str, FakeClock]


@pytest.fixture
async def stubs(db_url: str, redis_url: str) -> AsyncIterator[Stubs]:
    clock = FakeClock()
    async with running_service(service_settings("membership", db_url, redis_url),
                               membership_compose) as membership, \
            running_service(service_settings("benefits", db_url, redis_url,
                                             MEMBERSHIP_ADDR=membership.address),
                            benefits_compose) as benefits:
        settings = service_settings("engagement", db_url, redis_url,
                                    MEMBERSHIP_ADDR=membership.address,
                                    BENEFITS_ADDR=benefits.address)
        async with running_service(settings, make_compose(clock=clock)) as engagement, \
                contract_channel(membership) as mchannel, \
                contract_channel(benefits) as bchannel, \
                contract_channel(engagement) as echannel:
            mstub = mgrpc.MembershipServiceStub(mchannel)
            brand = (await mstub.CreateBrand(mpb.CreateBrandRequest(
                request_id=rid(), display_name="Acme",
                mode=mpb.PROGRAM_MODE_NON_CONNECTED))).brand
            shop = (await mstub.CreateShop(mpb.CreateShopRequest(
                request_id=rid(), brand_id=brand.brand_id, display_name="Store"))).shop
            await mstub.FollowShop(mpb.FollowShopRequest(request_id=rid(), shop_id=shop.shop_id,
                                                         account_id="acc_real"))
            yield (pb_grpc.EngagementServiceStub(echannel), bgrpc.BenefitsServiceStub(bchannel),
                   brand.brand_id, clock)


async def available(benefits: bgrpc.BenefitsServiceStub, brand_id: str) -> int:
    reply = await benefits.GetPointsBalance(bpb.GetPointsBalanceRequest(
        brand_id=brand_id, account_id="acc_real"))
    return reply.available_points


async def test_draw_and_sign_in_move_real_points(stubs: Stubs) -> None:
    """A paid draw spends in the real ledger and its points prize is granted there; a sign-in
    reward arrives once; a draw the member cannot afford spends nothing."""
    engagement, benefits, brand_id, clock = stubs
    start = (clock.now - timedelta(hours=1)).isoformat()
    end = (clock.now + timedelta(days=3)).isoformat()
    lottery = json_format.ParseDict({
        "title": "Lucky", "start_time": start, "end_time": end,
        "lottery": {"mode": "LOTTERY_MODE_INSTANT", "cost_points": 30, "prizes": [
            {"prize_id": "pts", "name": "100 points", "kind": "PRIZE_KIND_POINTS",
             "weight": 1, "stock": 1, "points": 100},
            {"prize_id": "thanks", "name": "Thanks", "kind": "PRIZE_KIND_THANKS",
             "weight": 1}]}}, pb.ActivitySpec())
    activity = (await engagement.CreateActivity(pb.CreateActivityRequest(
        request_id=rid(), brand_id=brand_id, spec=lottery, publish=True))).activity
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await engagement.DrawLottery(pb.DrawLotteryRequest(
            request_id=rid(), brand_id=brand_id, activity_id=activity.activity_id,
            account_id="acc_real"))
    assert remote_error(caught.value).reason == "INSUFFICIENT_POINTS"
    await benefits.GrantPoints(bpb.GrantPointsRequest(
        request_id=rid(), brand_id=brand_id, account_id="acc_real", amount=100,
        reason_code="TEST", source=bpb.POINTS_SOURCE_OPERATOR))
    draw = (await engagement.DrawLottery(pb.DrawLotteryRequest(
        request_id=rid(), brand_id=brand_id, activity_id=activity.activity_id,
        account_id="acc_real"))).draw
    won = 100 if draw.outcome == pb.DRAW_OUTCOME_WON else 0
    assert draw.grant.state == (pb.GRANT_STATE_DONE if won else pb.GRANT_STATE_UNSPECIFIED)
    assert await available(benefits, brand_id) == 100 - 30 + won

    sign_in = json_format.ParseDict({
        "title": "Daily", "start_time": start, "end_time": end,
        "sign_in": {"rewards": [{"day": 1, "reward": {"points": 7}}]}}, pb.ActivitySpec())
    daily = (await engagement.CreateActivity(pb.CreateActivityRequest(
        request_id=rid(), brand_id=brand_id, spec=sign_in, publish=True))).activity
    record = (await engagement.SignIn(pb.SignInRequest(
        request_id="same", brand_id=brand_id, activity_id=daily.activity_id,
        account_id="acc_real"))).record
    await engagement.SignIn(pb.SignInRequest(
        request_id="same", brand_id=brand_id, activity_id=daily.activity_id,
        account_id="acc_real"))
    assert record.rewards[0].points == 7
    for _ in range(100):  # the reward follows the answer
        if await available(benefits, brand_id) == 100 - 30 + won + 7:
            break
        await asyncio.sleep(0.05)
    assert await available(benefits, brand_id) == 100 - 30 + won + 7

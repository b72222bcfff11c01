"""Membership over gRPC against real PostgreSQL and Redis: follow, card, unfollow."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from brandclub.membership.v1 import membership_service_pb2 as pb
from brandclub.membership.v1 import membership_service_pb2_grpc as pb_grpc
from libs.grpc_client import remote_error
from libs.outbox import stream_name
from libs.redis import connect_redis
from libs.testing import contract_channel, running_service, service_settings
from services.membership.main import compose


def rid() -> str:
    return uuid.uuid4().hex


@pytest.fixture
async def stub(db_url: str, redis_url: str) -> AsyncIterator[pb_grpc.MembershipServiceStub]:
    async with running_service(service_settings("membership", db_url, redis_url), compose) as svc:
        channel = contract_channel(svc)
        yield pb_grpc.MembershipServiceStub(channel)
        await channel.close()


async def make_shop(stub: pb_grpc.MembershipServiceStub) -> pb.Shop:
    brand = (await stub.CreateBrand(pb.CreateBrandRequest(
        request_id=rid(), display_name="Acme", mode=pb.PROGRAM_MODE_NON_CONNECTED))).brand
    return (await stub.CreateShop(pb.CreateShopRequest(
        request_id=rid(), brand_id=brand.brand_id, display_name="Acme flagship"))).shop


async def test_follow_makes_lv0_member_and_card_reads_it(
        stub: pb_grpc.MembershipServiceStub) -> None:
    """Following a shop makes a non-member LV0 of its brand; the card shows level 0."""
    shop = await make_shop(stub)
    followed = await stub.FollowShop(pb.FollowShopRequest(
        request_id=rid(), shop_id=shop.shop_id, account_id="acc_1", channel="storefront"))
    assert followed.became_member
    card = (await stub.GetMemberCard(pb.GetMemberCardRequest(
        brand_id=shop.brand_id, account_id="acc_1"))).card
    assert card.status == pb.MEMBER_STATUS_LV0
    assert card.level == 0
    assert card.brand_display_name == "Acme"
    assert list(card.followed_shop_ids) == [shop.shop_id]
    assert card.member_since.seconds > 0


async def test_unfollow_of_last_shop_ends_lv0(stub: pb_grpc.MembershipServiceStub) -> None:
    """Unfollowing the brand's only followed shop ends the LV0 membership."""
    shop = await make_shop(stub)
    await stub.FollowShop(pb.FollowShopRequest(request_id=rid(), shop_id=shop.shop_id,
                                               account_id="acc_2"))
    left = await stub.UnfollowShop(pb.UnfollowShopRequest(
        request_id=rid(), shop_id=shop.shop_id, account_id="acc_2"))
    assert left.card.status == pb.MEMBER_STATUS_ENDED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetMemberCard(pb.GetMemberCardRequest(brand_id=shop.brand_id,
                                                         account_id="acc_2"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert remote_error(caught.value).reason == "MEMBER_NOT_FOUND"


async def test_unfollow_one_of_two_shops_keeps_lv0(stub: pb_grpc.MembershipServiceStub) -> None:
    """An LV0 member who still follows another shop of the brand stays LV0."""
    shop = await make_shop(stub)
    other = (await stub.CreateShop(pb.CreateShopRequest(
        request_id=rid(), brand_id=shop.brand_id, display_name="Outlet"))).shop
    for target in (shop, other):
        await stub.FollowShop(pb.FollowShopRequest(request_id=rid(), shop_id=target.shop_id,
                                                   account_id="acc_3"))
    left = await stub.UnfollowShop(pb.UnfollowShopRequest(
        request_id=rid(), shop_id=shop.shop_id, account_id="acc_3"))
    assert left.card.status == pb.MEMBER_STATUS_LV0
    assert list(left.card.followed_shop_ids) == [other.shop_id]


async def test_follow_unknown_shop_is_not_found(stub: pb_grpc.MembershipServiceStub) -> None:
    """Following a shop that does not exist fails with SHOP_NOT_FOUND naming the shop."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.FollowShop(pb.FollowShopRequest(request_id=rid(), shop_id="shp_nope",
                                                   account_id="acc_4"))
    error = remote_error(caught.value)
    assert error.reason == "SHOP_NOT_FOUND"
    assert error.metadata["shop_id"] == "shp_nope"
    assert error.domain == "membership.brandclub"


async def test_follow_event_reaches_the_stream(stub: pb_grpc.MembershipServiceStub,
                                               redis_url: str) -> None:
    """A committed follow is relayed from the outbox to the membership stream."""
    shop = await make_shop(stub)
    await stub.FollowShop(pb.FollowShopRequest(request_id=rid(), shop_id=shop.shop_id,
                                               account_id="acc_5"))
    redis = connect_redis(redis_url)
    try:
        follows: list[envelope_pb2.EventEnvelope] = []
        for _ in range(100):
            entries: Any = await redis.xrange(stream_name("membership"))
            envelopes = [envelope_pb2.EventEnvelope.FromString(fields[b"envelope"])
                         for _, fields in entries]
            follows = [e for e in envelopes
                       if e.payload.Is(membership_events_pb2.MemberFollowed.DESCRIPTOR)]
            if follows:
                break
            import asyncio

            await asyncio.sleep(0.05)
        assert len(follows) == 1  # beside the brand's BrandCreated
        followed = membership_events_pb2.MemberFollowed()
        assert follows[0].payload.Unpack(followed)
        assert (followed.shop_id, followed.account_id, followed.became_lv0) == (
            shop.shop_id, "acc_5", True)
    finally:
        await redis.aclose()

"""One eligibility rule over every benefits RPC, against the real membership service: a
shopper who never was a member and a member who left are refused everything done on their
behalf (MEMBER_NOT_FOUND) and nothing changes; the same calls succeed for a member."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.message import Message

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as pb_grpc
from brandclub.membership.v1 import membership_service_pb2 as mpb
from brandclub.membership.v1 import membership_service_pb2_grpc as mgrpc
from libs.db import Database
from libs.grpc_client import remote_error
from libs.testing import contract_channel, running_service, service_settings
from services.benefits.main import make_compose
from services.benefits.usecases.eligibility import MEMBER_ACTIONS, NOT_MEMBER_SCOPED
from services.membership.main import compose as membership_compose


def rid() -> str:
    return uuid.uuid4().hex


@dataclass
class World:
    api: pb_grpc.BenefitsServiceStub
    db: Database
    brand_id: str
    template_id: str
    item_id: str


MEMBER, OUTSIDER, LEFT = "acc_member", "acc_outsider", "acc_left"


@pytest.fixture
async def world(db_url: str, redis_url: str) -> AsyncIterator[World]:
    """A brand with a coupon and a mall item; MEMBER follows its shop, LEFT followed, earned
    points and a coupon, then unfollowed (the LV0 membership ended), OUTSIDER never joined."""
    async with running_service(service_settings("membership", db_url, redis_url),
                               membership_compose) as membership, \
            running_service(service_settings("benefits", db_url, redis_url,
                                             MEMBERSHIP_ADDR=membership.address),
                            make_compose()) as benefits, \
            contract_channel(membership) as mchannel, contract_channel(benefits) as bchannel:
        members = mgrpc.MembershipServiceStub(mchannel)
        api = pb_grpc.BenefitsServiceStub(bchannel)
        admin = pb_grpc.BenefitsAdminServiceStub(bchannel)
        brand = (await members.CreateBrand(mpb.CreateBrandRequest(
            request_id=rid(), display_name="Acme",
            mode=mpb.PROGRAM_MODE_NON_CONNECTED))).brand.brand_id
        shop = (await members.CreateShop(mpb.CreateShopRequest(
            request_id=rid(), brand_id=brand, display_name="Store"))).shop.shop_id
        template = pb.CouponTemplate(
            brand_id=brand, title="10 off", kind=pb.COUPON_KIND_AMOUNT_OFF,
            amount_off_cents=1000, threshold_cents=5000, valid_days=30, total_stock=100,
            per_member_limit=10, placements=[pb.COUPON_PLACEMENT_MEMBER_PAGE])
        template.claim_start_time.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
        template_id = (await admin.CreateCouponTemplate(pb.CreateCouponTemplateRequest(
            request_id=rid(), template=template))).template.template_id
        item_id = (await admin.CreateMallItem(pb.CreateMallItemRequest(
            request_id=rid(), item=pb.MallItem(
                brand_id=brand, kind=pb.MALL_ITEM_KIND_COUPON, title="Coupon", price_points=10,
                stock_total=100, coupon_template_id=template_id,
                state=pb.MALL_ITEM_STATE_ON_SALE)))).item.item_id
        for account in (MEMBER, LEFT):
            await members.FollowShop(mpb.FollowShopRequest(request_id=rid(), shop_id=shop,
                                                           account_id=account))
            await api.GrantPoints(pb.GrantPointsRequest(
                request_id=rid(), brand_id=brand, account_id=account, amount=1000,
                reason_code="TEST", source=pb.POINTS_SOURCE_OPERATOR))
            await api.IssueCoupon(pb.IssueCouponRequest(
                request_id=rid(), brand_id=brand, account_id=account,
                coupon_template_id=template_id, reason_code="TEST"))
        await members.UnfollowShop(mpb.UnfollowShopRequest(request_id=rid(), shop_id=shop,
                                                           account_id=LEFT))
        yield World(api, benefits.resources.db, brand, template_id, item_id)


Call = Callable[[World, str], Awaitable[Message]]

# One call per member-scoped RPC of BenefitsService, for the account given.
CALLS: dict[str, Call] = {
    "GetPointsBalance": lambda w, a: w.api.GetPointsBalance(pb.GetPointsBalanceRequest(
        brand_id=w.brand_id, account_id=a)),
    "ListPointsEntries": lambda w, a: w.api.ListPointsEntries(pb.ListPointsEntriesRequest(
        brand_id=w.brand_id, account_id=a)),
    "ListExpiringPoints": lambda w, a: w.api.ListExpiringPoints(pb.ListExpiringPointsRequest(
        brand_id=w.brand_id, account_id=a)),
    "GrantPoints": lambda w, a: w.api.GrantPoints(pb.GrantPointsRequest(
        request_id=rid(), brand_id=w.brand_id, account_id=a, amount=5, reason_code="TEST",
        source=pb.POINTS_SOURCE_ISV_APP)),
    "SpendPoints": lambda w, a: w.api.SpendPoints(pb.SpendPointsRequest(
        request_id=rid(), brand_id=w.brand_id, account_id=a, amount=5, reason_code="TEST",
        source=pb.POINTS_SOURCE_ISV_APP)),
    "IssueCoupon": lambda w, a: w.api.IssueCoupon(pb.IssueCouponRequest(
        request_id=rid(), brand_id=w.brand_id, account_id=a, coupon_template_id=w.template_id,
        reason_code="TEST")),
    "ClaimCoupon": lambda w, a: w.api.ClaimCoupon(pb.ClaimCouponRequest(
        request_id=rid(), brand_id=w.brand_id, account_id=a, coupon_template_id=w.template_id)),
    "ListClaimableCoupons": lambda w, a: w.api.ListClaimableCoupons(
        pb.ListClaimableCouponsRequest(brand_id=w.brand_id, account_id=a)),
    "GetCardOpeningGiftPack": lambda w, a: w.api.GetCardOpeningGiftPack(
        pb.GetCardOpeningGiftPackRequest(brand_id=w.brand_id, account_id=a)),
    "ListMemberCoupons": lambda w, a: w.api.ListMemberCoupons(pb.ListMemberCouponsRequest(
        brand_id=w.brand_id, account_id=a)),
    "RedeemMallItem": lambda w, a: w.api.RedeemMallItem(pb.RedeemMallItemRequest(
        request_id=rid(), brand_id=w.brand_id, account_id=a, item_id=w.item_id)),
    "ListRedemptions": lambda w, a: w.api.ListRedemptions(pb.ListRedemptionsRequest(
        brand_id=w.brand_id, account_id=a)),
}


def test_every_rpc_is_gated_or_says_why_not() -> None:
    """Every BenefitsService RPC is either member-scoped (gated by the rule, and swept below)
    or listed as brand bookkeeping with its reason: a new RPC cannot skip the rule unnoticed."""
    methods = set(pb.DESCRIPTOR.services_by_name["BenefitsService"].methods_by_name)
    assert set(MEMBER_ACTIONS) | set(NOT_MEMBER_SCOPED) == methods
    assert not set(MEMBER_ACTIONS) & set(NOT_MEMBER_SCOPED)
    assert set(CALLS) == set(MEMBER_ACTIONS)


@pytest.mark.parametrize("method", sorted(CALLS))
async def test_non_members_and_members_who_left_are_refused(world: World, method: str) -> None:
    """Each member-scoped RPC refuses a shopper who never was a member and one whose
    membership ended with NOT_FOUND / MEMBER_NOT_FOUND, changing nothing, and serves a
    member."""
    before = await snapshot(world)
    assert before == [1, 1, 0]  # LEFT's grant and coupon from while a member: kept, frozen
    for account in (OUTSIDER, LEFT):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await CALLS[method](world, account)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND, (method, account)
        error = remote_error(caught.value)
        assert (error.reason, error.metadata["account_id"]) == ("MEMBER_NOT_FOUND", account)
    assert await snapshot(world) == before
    await CALLS[method](world, MEMBER)


async def snapshot(world: World) -> list[int]:
    """How many ledger entries, coupons and redemptions the refused shoppers have."""
    counts = []
    for table in ("points_entries", "coupons", "redemptions"):
        counts.append(await world.db.fetchval(
            f"SELECT count(*) FROM {table} WHERE brand_id = $1 AND account_id = ANY($2)",
            world.brand_id, [OUTSIDER, LEFT]))
    return counts

"""Benefits hot paths: points on every paid order or activity (GrantPoints with unique keys),
points-mall redemption (spend + take stock + issue, as a saga) and a coupon drop that every
member claims at once."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as pb_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from tools.bench_core import SEED_BATCH, SEED_TIMEOUT, BenchContext, Result

# Members seeded through the services (FollowShop, GrantPoints): more only slows the seeding.
MAX_SEEDED_MEMBERS = 5000


async def scenarios(ctx: BenchContext) -> list[Result]:
    """GrantPoints over many members with a fresh key per call; RedeemMallItem of a virtual
    item with stock enough for the run, by members who hold enough points; ClaimCoupon of one
    template by every member (benefits acts only for members: every account follows the
    seeded shop first). Every member is funded once before the first timed window, which
    also warms membership's card cache that benefits reads for the member's standing."""
    run = uuid.uuid4().hex[:8]
    members = max(1, min(ctx.options.members, MAX_SEEDED_MEMBERS))
    accounts = [f"acc_bench_{i}" for i in range(members)]
    async with ctx.stack.channel("benefits") as channel, \
            ctx.stack.channel("membership") as mchannel:
        seed = await ctx.stack.seed("bench-shopper")
        brand_id = seed.brand_id
        membership = membership_grpc.MembershipServiceStub(mchannel)
        for start in range(0, members, SEED_BATCH):
            await asyncio.gather(*(membership.FollowShop(membership_pb.FollowShopRequest(
                request_id=f"bench:follow:{a}", shop_id=seed.shop_id, account_id=a,
                channel="bench"), timeout=SEED_TIMEOUT)
                for a in accounts[start:start + SEED_BATCH]))
        api = pb_grpc.BenefitsServiceStub(channel)
        admin = pb_grpc.BenefitsAdminServiceStub(channel)
        for start in range(0, members, SEED_BATCH):
            await asyncio.gather(*(api.GrantPoints(pb.GrantPointsRequest(
                request_id=f"bench:{run}:fund:{account}", brand_id=brand_id,
                account_id=account, amount=1_000_000, reason_code="BENCH",
                source=pb.POINTS_SOURCE_OPERATOR), timeout=SEED_TIMEOUT)
                for account in accounts[start:start + SEED_BATCH]))
        keys = itertools.count()

        async def grant(index: int) -> None:
            n = next(keys)
            await api.GrantPoints(pb.GrantPointsRequest(
                request_id=f"bench:{run}:grant:{n}", brand_id=brand_id,
                account_id=accounts[n % members], amount=10, reason_code="BENCH",
                source=pb.POINTS_SOURCE_ACTIVITY), timeout=10)

        results = await ctx.measure("benefits/grant-points", grant)

        item = (await admin.CreateMallItem(pb.CreateMallItemRequest(
            request_id=f"bench:{run}:item", item=pb.MallItem(
                brand_id=brand_id, kind=pb.MALL_ITEM_KIND_VIRTUAL, title="Bench e-card",
                price_points=1, stock_total=100_000_000, state=pb.MALL_ITEM_STATE_ON_SALE)),
            timeout=10)).item

        async def redeem(index: int) -> None:
            n = next(keys)
            response = await api.RedeemMallItem(pb.RedeemMallItemRequest(
                request_id=f"bench:{run}:redeem:{n}", brand_id=brand_id,
                account_id=accounts[n % members], item_id=item.item_id), timeout=10)
            if response.redemption.state != pb.REDEMPTION_STATE_COMPLETED:
                raise RuntimeError(response.redemption.failure_reason)

        results += await ctx.measure("benefits/redeem-mall-item", redeem)
        results += await coupon_claims(ctx, api, admin, brand_id, accounts, run)
        return results


async def coupon_claims(ctx: BenchContext, api: pb_grpc.BenefitsServiceStub,
                        admin: pb_grpc.BenefitsAdminServiceStub, brand_id: str,
                        accounts: list[str], run: str) -> list[Result]:
    """A coupon drop: one template, every member claiming (up to the per-member limit, so the
    timed window measures claims, not refusals)."""
    opened = Timestamp()
    opened.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    template = (await admin.CreateCouponTemplate(pb.CreateCouponTemplateRequest(
        request_id=f"bench:{run}:coupon", template=pb.CouponTemplate(
            brand_id=brand_id, title="Bench drop", kind=pb.COUPON_KIND_AMOUNT_OFF,
            amount_off_cents=500, threshold_cents=5000, claim_start_time=opened,
            valid_days=30, total_stock=100_000_000, per_member_limit=1000)),
        timeout=10)).template
    claims = itertools.count()

    async def claim(index: int) -> None:
        n = next(claims)
        await api.ClaimCoupon(pb.ClaimCouponRequest(
            request_id=f"bench:{run}:claim:{n}", brand_id=brand_id,
            account_id=accounts[n % len(accounts)], coupon_template_id=template.template_id),
            timeout=10)

    return await ctx.measure("benefits/coupon-claim-burst", claim)

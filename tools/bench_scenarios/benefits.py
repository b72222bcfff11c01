"""Benefits hot paths: points on every paid order or activity (GrantPoints with unique keys),
and points-mall redemption (spend + take stock + issue, as a saga)."""

from __future__ import annotations

import asyncio
import itertools
import uuid

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as pb_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from tools.bench_core import BenchContext, Result


async def scenarios(ctx: BenchContext) -> list[Result]:
    """GrantPoints over many members with a fresh key per call; RedeemMallItem of a virtual
    item with stock enough for the run, by members who hold enough points (benefits acts
    only for members: every account follows the seeded shop first)."""
    run = uuid.uuid4().hex[:8]
    members = max(1, ctx.options.members)
    accounts = [f"acc_bench_{i}" for i in range(members)]
    async with ctx.stack.channel("benefits") as channel, \
            ctx.stack.channel("membership") as mchannel:
        seed = await ctx.stack.seed("bench-shopper")
        brand_id = seed.brand_id
        membership = membership_grpc.MembershipServiceStub(mchannel)
        for start in range(0, members, 200):
            await asyncio.gather(*(membership.FollowShop(membership_pb.FollowShopRequest(
                request_id=f"bench:follow:{a}", shop_id=seed.shop_id, account_id=a,
                channel="bench"), timeout=30) for a in accounts[start:start + 200]))
        api = pb_grpc.BenefitsServiceStub(channel)
        admin = pb_grpc.BenefitsAdminServiceStub(channel)
        keys = itertools.count()

        async def grant(index: int) -> None:
            n = next(keys)
            await api.GrantPoints(pb.GrantPointsRequest(
                request_id=f"bench:{run}:grant:{n}", brand_id=brand_id,
                account_id=accounts[n % members], amount=10, reason_code="BENCH",
                source=pb.POINTS_SOURCE_ACTIVITY), timeout=10)

        results = [await ctx.measure("benefits/grant-points", grant)]

        item = (await admin.CreateMallItem(pb.CreateMallItemRequest(
            request_id=f"bench:{run}:item", item=pb.MallItem(
                brand_id=brand_id, kind=pb.MALL_ITEM_KIND_VIRTUAL, title="Bench e-card",
                price_points=1, stock_total=100_000_000, state=pb.MALL_ITEM_STATE_ON_SALE)),
            timeout=10)).item
        for start in range(0, members, 200):
            await asyncio.gather(*(api.GrantPoints(pb.GrantPointsRequest(
                request_id=f"bench:{run}:fund:{account}", brand_id=brand_id,
                account_id=account, amount=1_000_000, reason_code="BENCH",
                source=pb.POINTS_SOURCE_OPERATOR), timeout=30)
                for account in accounts[start:start + 200]))

        async def redeem(index: int) -> None:
            n = next(keys)
            response = await api.RedeemMallItem(pb.RedeemMallItemRequest(
                request_id=f"bench:{run}:redeem:{n}", brand_id=brand_id,
                account_id=accounts[n % members], item_id=item.item_id), timeout=10)
            if response.redemption.state != pb.REDEMPTION_STATE_COMPLETED:
                raise RuntimeError(response.redemption.failure_reason)

        results.append(await ctx.measure("benefits/redeem-mall-item", redeem))
        return results

"""Membership hot path: the member card, read on every shop and product page."""

from __future__ import annotations

import asyncio

from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from tools.bench_core import SEED_BATCH, SEED_TIMEOUT, BenchContext, Result

# Members seeded through the services (FollowShop): more only slows the seeding.
MAX_SEEDED_MEMBERS = 5000


async def scenarios(ctx: BenchContext) -> list[Result]:
    return await member_card(ctx)


async def member_card(ctx: BenchContext) -> list[Result]:
    """GetMemberCard over gRPC against the membership process, spread over many members whose
    cards are in the Redis cache (read once before measuring)."""
    members = max(1, min(ctx.options.members, MAX_SEEDED_MEMBERS))
    async with ctx.stack.channel("membership") as channel:
        membership = membership_grpc.MembershipServiceStub(channel)
        seed = await ctx.stack.seed("bench-shopper")
        accounts = [f"acc_bench_{i}" for i in range(members)]
        for start in range(0, members, SEED_BATCH):
            await asyncio.gather(*(membership.FollowShop(membership_pb.FollowShopRequest(
                request_id=f"bench:follow:{account}", shop_id=seed.shop_id, account_id=account,
                channel="bench"), timeout=SEED_TIMEOUT)
                for account in accounts[start:start + SEED_BATCH]))
        # Steady state of a busy shop page: every card has been read once (and cached).
        for start in range(0, members, SEED_BATCH):
            await asyncio.gather(*(membership.GetMemberCard(membership_pb.GetMemberCardRequest(
                brand_id=seed.brand_id, account_id=account), timeout=SEED_TIMEOUT)
                for account in accounts[start:start + SEED_BATCH]))
        counter = 0

        async def read_card(_: int) -> None:
            nonlocal counter
            counter += 1
            await membership.GetMemberCard(membership_pb.GetMemberCardRequest(
                brand_id=seed.brand_id, account_id=accounts[counter % members]), timeout=5)

        return await ctx.measure("membership/get-member-card", read_card)

"""Engagement hot paths: the midnight sign-in burst and lottery draws against limited stock.

  engagement/sign-in-burst        every member taps "sign in" (many tap again: the repeat is
                                  answered ALREADY_SIGNED_IN, which is a normal answer here)
  engagement/lottery-draw         paid draws (1 point) by all members against 100 prizes
  engagement/lottery-oversell=N   N = prizes won beyond stock (must be 0); ops = prizes won,
                                  err = oversold draws seen by clients
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf import json_format

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as benefits_grpc
from brandclub.engagement.v1 import engagement_service_pb2 as pb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as pb_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from libs.grpc_client import remote_error
from tools.bench_core import SEED_BATCH, SEED_TIMEOUT, BenchContext, Result

STOCK = 100


async def _activity(engagement: pb_grpc.EngagementServiceStub, brand_id: str,
                    config: dict[str, object]) -> str:
    now = datetime.now(UTC)
    spec = json_format.ParseDict({"title": "bench", "start_time": (now - timedelta(hours=1))
                                  .isoformat(), "end_time": (now + timedelta(days=1)).isoformat(),
                                  **config}, pb.ActivitySpec())
    reply = await engagement.CreateActivity(pb.CreateActivityRequest(
        request_id=uuid.uuid4().hex, brand_id=brand_id, spec=spec, publish=True),
        timeout=SEED_TIMEOUT)
    return reply.activity.activity_id


# Members seeded through the services (FollowShop, GrantPoints): more only slows the seeding.
MAX_SEEDED_MEMBERS = 5000


async def scenarios(ctx: BenchContext) -> list[Result]:
    """Every member follows the shop and is funded before the first timed window (which also
    warms membership's card cache that engagement and benefits read for the member)."""
    members = max(1, min(ctx.options.members, MAX_SEEDED_MEMBERS))
    async with ctx.stack.channel("engagement") as channel, \
            ctx.stack.channel("membership") as mchannel, \
            ctx.stack.channel("benefits") as bchannel:
        engagement = pb_grpc.EngagementServiceStub(channel)
        membership = membership_grpc.MembershipServiceStub(mchannel)
        benefits = benefits_grpc.BenefitsServiceStub(bchannel)
        seed = await ctx.stack.seed("bench-shopper")
        accounts = [f"acc_bench_{i}" for i in range(members)]
        for start in range(0, members, SEED_BATCH):
            batch = accounts[start:start + SEED_BATCH]
            await asyncio.gather(*(membership.FollowShop(membership_pb.FollowShopRequest(
                request_id=f"bench:follow:{a}", shop_id=seed.shop_id, account_id=a,
                channel="bench"), timeout=SEED_TIMEOUT) for a in batch))
            await asyncio.gather(*(benefits.GrantPoints(benefits_pb.GrantPointsRequest(
                request_id=f"bench:points:{a}:{uuid.uuid4().hex}", brand_id=seed.brand_id,
                account_id=a, amount=1_000_000, reason_code="BENCH",
                source=benefits_pb.POINTS_SOURCE_OPERATOR), timeout=SEED_TIMEOUT) for a in batch))

        sign_in_id = await _activity(engagement, seed.brand_id, {
            "sign_in": {"rewards": [{"day": 1, "reward": {"points": 1}}]}})
        tap = itertools.count()

        async def sign_in(_: int) -> None:
            account = accounts[next(tap) % members]
            try:
                await engagement.SignIn(pb.SignInRequest(
                    request_id=uuid.uuid4().hex, brand_id=seed.brand_id,
                    activity_id=sign_in_id, account_id=account), timeout=10)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                    raise

        results = await ctx.measure("engagement/sign-in-burst", sign_in)

        lottery_id = await _activity(engagement, seed.brand_id, {"lottery": {
            "mode": "LOTTERY_MODE_INSTANT", "cost_points": 1, "prizes": [
                {"prize_id": "gift", "name": "Gift", "kind": "PRIZE_KIND_PHYSICAL",
                 "weight": 5, "stock": STOCK},
                {"prize_id": "thanks", "name": "Thanks", "kind": "PRIZE_KIND_THANKS",
                 "weight": 95}]}})
        draws = itertools.count()
        won_seen = 0
        failures: Counter[str] = Counter()

        async def draw(_: int) -> None:
            nonlocal won_seen
            try:
                reply = await engagement.DrawLottery(pb.DrawLotteryRequest(
                    request_id=uuid.uuid4().hex, brand_id=seed.brand_id,
                    activity_id=lottery_id, account_id=accounts[next(draws) % members]),
                    timeout=10)
            except grpc.aio.AioRpcError as error:
                failures[remote_error(error).reason] += 1
                raise
            if reply.draw.outcome == pb.DRAW_OUTCOME_WON:
                won_seen += 1

        results += await ctx.measure("engagement/lottery-draw", draw)
        status = await engagement.GetLotteryStatus(pb.GetLotteryStatusRequest(
            brand_id=seed.brand_id, activity_id=lottery_id), timeout=SEED_TIMEOUT)
        won = next(p.won for p in status.prizes if p.prize.prize_id == "gift")
        if failures:
            print(f"engagement/lottery-draw errors by reason: {dict(failures)}", file=sys.stderr)
        oversell = max(0, won - STOCK) + max(0, won_seen - STOCK)
        results.append(Result(name=f"engagement/lottery-oversell={oversell}", concurrency=0,
                              operations=won, errors=max(0, won_seen - STOCK), seconds=0.0,
                              throughput=0.0, p50_ms=0.0, p99_ms=0.0))
        return results

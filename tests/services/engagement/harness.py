"""What the engagement tests share: the running service and its neighbours (`Env`), request
ids, and waiting for the background loops (a helper module, not a test module)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
from google.protobuf import json_format

from brandclub.benefits.v1 import benefits_service_pb2_grpc as bgrpc
from brandclub.engagement.v1 import engagement_service_pb2 as pb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as pb_grpc
from brandclub.membership.v1 import membership_service_pb2 as mpb
from brandclub.membership.v1 import membership_service_pb2_grpc as mgrpc
from libs.redis import Redis
from libs.service import RunningService
from libs.testing import identity_of
from tests.services.engagement.fakes import FakeClock, StandInBenefits, StandInBenefitsAdmin


def rid() -> str:
    return uuid.uuid4().hex


@dataclass
class Env:
    engagement: pb_grpc.EngagementServiceStub
    membership: mgrpc.MembershipServiceStub
    benefits: StandInBenefits
    clock: FakeClock
    redis: Redis
    db: asyncpg.Pool
    brand_id: str
    shop_id: str
    service: RunningService
    db_url: str
    redis_url: str

    async def members(self, *accounts: str) -> None:
        """Make each account an LV0 member (by following the shop)."""
        for start in range(0, len(accounts), 100):
            await asyncio.gather(*(self.membership.FollowShop(mpb.FollowShopRequest(
                request_id=f"follow:{a}", shop_id=self.shop_id, account_id=a))
                for a in accounts[start:start + 100]))

    async def activity(self, config: dict[str, Any], *, starts: timedelta = -timedelta(hours=1),
                       ends: timedelta = timedelta(days=30), publish: bool = True,
                       levels: list[int] | None = None, owner: pb.Owner | None = None,
                       title: str = "Activity") -> pb.Activity:
        spec = json_format.ParseDict({
            "title": title, "start_time": (self.clock.now + starts).isoformat(),
            "end_time": (self.clock.now + ends).isoformat(),
            "audience": {"levels": levels or []}, **config}, pb.ActivitySpec())
        reply = await self.engagement.CreateActivity(pb.CreateActivityRequest(
            request_id=rid(), brand_id=self.brand_id, spec=spec, publish=publish,
            owner=owner or pb.Owner(kind=pb.OWNER_KIND_BRAND)))
        return reply.activity

    def give_points(self, account_id: str, amount: int) -> None:
        self.benefits.balances[(self.brand_id, account_id)] += amount

    def balance(self, account_id: str) -> int:
        return self.benefits.balances[(self.brand_id, account_id)]


async def serve_benefits(standin: StandInBenefits) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    bgrpc.add_BenefitsServiceServicer_to_server(standin, server)
    # Implements GetCouponTemplate only; the others answer UNIMPLEMENTED as generated.
    bgrpc.add_BenefitsAdminServiceServicer_to_server(
        StandInBenefitsAdmin(), server)  # type: ignore[abstract]
    # Mutual TLS as the real benefits service: engagement's client checks who it talks to.
    port = server.add_secure_port("127.0.0.1:0", identity_of("benefits").server_credentials())
    await server.start()
    return server, f"127.0.0.1:{port}"


async def eventually(check: Any, *, attempts: int = 200, delay: float = 0.05) -> None:
    """Wait until `check()` returns true (background loops run on their own schedule)."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(delay)
    raise AssertionError("condition not reached")

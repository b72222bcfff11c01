"""Engagement in-process with the real membership service and a benefits stand-in."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
import pytest
import structlog
from google.protobuf import json_format

from brandclub.benefits.v1 import benefits_service_pb2_grpc as bgrpc
from brandclub.engagement.v1 import engagement_service_pb2 as pb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as pb_grpc
from brandclub.membership.v1 import membership_service_pb2 as mpb
from brandclub.membership.v1 import membership_service_pb2_grpc as mgrpc
from libs.redis import Redis, connect_redis
from libs.service import RunningService
from libs.testing import contract_channel, identity_of, running_service, service_settings
from services.engagement.main import make_compose
from services.membership.main import compose as membership_compose
from tests.services.engagement.engagement_fakes import (
    FakeClock,
    StandInBenefits,
    StandInBenefitsAdmin,
)


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


@pytest.fixture
async def env(db_url: str, redis_url: str) -> AsyncIterator[Env]:
    # Implements the RPCs engagement calls; the others answer UNIMPLEMENTED as generated.
    standin = StandInBenefits()  # type: ignore[abstract]
    server, benefits_address = await serve_benefits(standin)
    clock = FakeClock()
    async with running_service(service_settings("membership", db_url, redis_url),
                               membership_compose) as membership:
        settings = service_settings("engagement", db_url, redis_url,
                                    MEMBERSHIP_ADDR=membership.address,
                                    BENEFITS_ADDR=benefits_address)
        compose = make_compose(clock=clock, saga_grace_seconds=0.3, loop_seconds=0.1)
        async with running_service(settings, compose) as engagement:
            channel = contract_channel(engagement)
            membership_channel = contract_channel(membership)
            mstub = mgrpc.MembershipServiceStub(membership_channel)
            brand = (await mstub.CreateBrand(mpb.CreateBrandRequest(
                request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
                time_zone="Asia/Shanghai"))).brand
            shop = (await mstub.CreateShop(mpb.CreateShopRequest(
                request_id=rid(), brand_id=brand.brand_id, display_name="Acme store"))).shop
            redis = connect_redis(redis_url)
            pool = await asyncpg.create_pool(db_url, min_size=1, max_size=4,
                                             server_settings={"search_path": "engagement"})
            try:
                yield Env(pb_grpc.EngagementServiceStub(channel), mstub, standin, clock, redis,
                          pool, brand.brand_id, shop.shop_id, engagement, db_url, redis_url)
            finally:
                await pool.close()
                await redis.aclose()
                await channel.close()
                await membership_channel.close()
    await server.stop(0)


async def eventually(check: Any, *, attempts: int = 200, delay: float = 0.05) -> None:
    """Wait until `check()` returns true (background loops run on their own schedule)."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(delay)
    raise AssertionError("condition not reached")


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    """Bursts of thousands of calls log only warnings (one info line per RPC costs time);
    the previous logging configuration comes back afterwards."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        yield
    finally:
        structlog.configure(**saved)

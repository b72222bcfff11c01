"""Engagement in-process with the real membership service and a benefits stand-in."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import structlog

from brandclub.engagement.v1 import engagement_service_pb2_grpc as pb_grpc
from brandclub.membership.v1 import membership_service_pb2 as mpb
from brandclub.membership.v1 import membership_service_pb2_grpc as mgrpc
from libs.redis import connect_redis
from libs.testing import contract_channel, running_service, service_settings
from services.engagement.main import make_compose
from services.membership.main import compose as membership_compose
from tests.services.engagement.fakes import FakeClock, StandInBenefits
from tests.services.engagement.harness import Env, rid, serve_benefits


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

"""Messaging under test: the real messaging, membership (and identity) services in-process,
with a clock the test moves and the background loops driven step by step."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from brandclub.membership.v1 import membership_service_pb2 as mpb
from brandclub.membership.v1 import membership_service_pb2_grpc as mgrpc
from brandclub.membership.v1 import segment_service_pb2 as spb
from brandclub.membership.v1 import segment_service_pb2_grpc as sgrpc
from brandclub.messaging.v1 import messaging_service_pb2 as pb
from brandclub.messaging.v1 import messaging_service_pb2_grpc as pb_grpc
from libs.service import RunningService
from libs.testing import contract_channel, running_service, service_settings
from services.identity.main import compose as identity_compose
from services.membership.main import compose as membership_compose
from services.messaging.main import MessagingOptions, make_compose
from services.messaging.usecases.dispatch import CampaignFanout, Dispatcher, drain
from services.messaging.usecases.journey_runner import JourneyRunner


def rid() -> str:
    return uuid.uuid4().hex


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    messaging: pb_grpc.MessagingServiceStub
    membership: mgrpc.MembershipServiceStub
    segments: sgrpc.SegmentServiceStub
    clock: Clock
    options: MessagingOptions
    db_url: str
    redis_url: str
    membership_address: str
    identity_address: str
    service: RunningService

    @property
    def dispatcher(self) -> Dispatcher:
        loop: Dispatcher = self.options.loops["dispatcher"]
        return loop

    @property
    def fanout(self) -> CampaignFanout:
        loop: CampaignFanout = self.options.loops["fanout"]
        return loop

    @property
    def runner(self) -> JourneyRunner:
        loop: JourneyRunner = self.options.loops["runner"]
        return loop

    async def dispatch(self) -> int:
        return await drain(self.dispatcher.run_once)

    async def fan_out(self) -> int:
        return await drain(self.fanout.run_once)

    async def sql(self, query: str, *args: Any) -> Any:
        conn = await asyncpg.connect(self.db_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    async def brand(self, time_zone: str = "Asia/Shanghai") -> str:
        reply = await self.membership.CreateBrand(mpb.CreateBrandRequest(
            request_id=rid(), display_name="Acme", mode=mpb.PROGRAM_MODE_NON_CONNECTED,
            time_zone=time_zone))
        return reply.brand.brand_id

    async def add_members(self, brand_id: str, count: int, prefix: str = "acc",
                          level: int = 1) -> list[str]:
        """Card members inserted as test data (membership fills these rows in production)."""
        await self.sql(
            "INSERT INTO membership.members (member_id, brand_id, account_id, status, level, "
            "source_channel, member_since, joined_at) "
            "SELECT 'mbr_' || $2 || g, $1, $2 || '_' || lpad(g::text, 6, '0'), 'card_member', "
            "$4, 'storefront', now(), now() FROM generate_series(1, $3) g",
            brand_id, prefix, count, level)
        return [f"{prefix}_{i:06d}" for i in range(1, count + 1)]

    async def snapshot_all(self, brand_id: str, min_tier: int = 0) -> spb.SegmentSnapshot:
        segment = (await self.segments.CreateSegment(spb.CreateSegmentRequest(
            request_id=rid(), brand_id=brand_id, name="everyone",
            rule=spb.SegmentRule(condition=spb.RuleCondition(
                field="tier", operator="gte", number=min_tier))))).segment
        return (await self.segments.CreateSegmentSnapshot(spb.CreateSegmentSnapshotRequest(
            request_id=rid(), brand_id=brand_id, segment_id=segment.segment_id))).snapshot

    async def inbox_template(self, brand_id: str,
                             purpose: pb.Purpose.ValueType = pb.PURPOSE_MARKETING,
                             body: str = "Hi LV{{member_level}}, {{offer}} at {{brand_name}}",
                             custom: tuple[str, ...] = ("offer",)) -> pb.Template:
        return (await self.messaging.CreateTemplate(pb.CreateTemplateRequest(
            request_id=rid(), template=pb.Template(
                brand_id=brand_id, channel=pb.CHANNEL_INBOX, purpose=purpose, name="promo",
                title="News from {{brand_name}}", body=body,
                custom_variables=list(custom))))).template


@pytest.fixture
async def env(db_url: str, redis_url: str) -> AsyncIterator[Env]:
    clock = Clock(datetime(2026, 3, 2, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai
    async with running_service(service_settings("identity", db_url, redis_url),
                               identity_compose) as identity, \
            running_service(service_settings("membership", db_url, redis_url,
                                             IDENTITY_ADDR=identity.address),
                            membership_compose) as membership:
        options = MessagingOptions(clock=clock, run_background=False)
        settings = service_settings("messaging", db_url, redis_url,
                                    MEMBERSHIP_ADDR=membership.address,
                                    IDENTITY_ADDR=identity.address)
        async with running_service(settings, make_compose(options)) as messaging:
            channel = contract_channel(messaging)
            mchannel = contract_channel(membership)
            yield Env(pb_grpc.MessagingServiceStub(channel),
                      mgrpc.MembershipServiceStub(mchannel), sgrpc.SegmentServiceStub(mchannel),
                      clock, options, db_url, redis_url, membership.address, identity.address,
                      messaging)
            await channel.close()
            await mchannel.close()

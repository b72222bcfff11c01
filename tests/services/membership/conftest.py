"""Membership in-process beside an in-process identity service (the phone vault)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import pytest
from google.protobuf.message import Message

from brandclub.events.v1 import envelope_pb2
from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from brandclub.membership.v1 import membership_service_pb2 as pb
from brandclub.membership.v1 import membership_service_pb2_grpc as pb_grpc
from libs.outbox import stream_name
from libs.protoconv import timestamp
from libs.redis import connect_redis
from libs.testing import contract_channel, running_service, service_settings
from services.identity.main import compose as identity_compose
from services.membership.main import compose as membership_compose

Event = TypeVar("Event", bound=Message)


def rid() -> str:
    return uuid.uuid4().hex


TIERS = [
    pb.Tier(level=1, name="Silver", growth_threshold_cents=0, privileges=["birthday_gift"],
            points_multiplier_percent=100),
    pb.Tier(level=2, name="Gold", growth_threshold_cents=50_000, privileges=["free_shipping"],
            points_multiplier_percent=150),
    pb.Tier(level=3, name="Diamond", growth_threshold_cents=200_000,
            privileges=["free_shipping", "vip_line"], points_multiplier_percent=200),
]


@dataclass
class Club:
    membership: pb_grpc.MembershipServiceStub
    identity: identity_grpc.IdentityServiceStub
    db_url: str
    redis_url: str

    async def brand(self, name: str = "Acme", *, connected: bool = False,
                    retention_days: int = 30) -> tuple[str, str]:
        """A brand with a configured program and one shop."""
        mode = pb.PROGRAM_MODE_CONNECTED if connected else pb.PROGRAM_MODE_NON_CONNECTED
        brand = (await self.membership.CreateBrand(pb.CreateBrandRequest(
            request_id=rid(), display_name=name, mode=mode))).brand
        await self.membership.UpdateProgram(pb.UpdateProgramRequest(
            request_id=rid(), brand_id=brand.brand_id, terms_version="2024-06",
            consent_purposes=["profile", "marketing_sms"], tiers=TIERS, growth_window_days=365,
            retention_days=retention_days, dormant_after_days=90))
        shop = (await self.membership.CreateShop(pb.CreateShopRequest(
            request_id=rid(), brand_id=brand.brand_id, display_name=f"{name} flagship"))).shop
        return brand.brand_id, shop.shop_id

    async def account(self, pin: str) -> str:
        return (await self.identity.EnsureAccount(identity_pb.EnsureAccountRequest(
            request_id=rid(), marketplace_account_id=pin))).account.account_id

    async def join(self, brand_id: str, account_id: str, *, phone: str = "13812345678",
                   request_id: str | None = None, invite_code: str = "",
                   ) -> pb.OpenCardResponse:
        return await self.membership.OpenCard(pb.OpenCardRequest(
            request_id=request_id or rid(), brand_id=brand_id, account_id=account_id,
            channel="storefront", terms_version="2024-06", purposes=["profile"], phone=phone,
            birthday="1990-05-17", gender=pb.GENDER_FEMALE, baby_birthday="2023-01-02",
            invite_code=invite_code))

    async def pay(self, shop_id: str, account_id: str, order_id: str, cents: int,
                  event_id: str | None = None) -> pb.RecordOrderPaidResponse:
        return await self.membership.RecordOrderPaid(pb.RecordOrderPaidRequest(
            event_id=event_id or rid(), shop_id=shop_id, account_id=account_id,
            order_id=order_id, paid_cents=cents, paid_time=timestamp(datetime.now(UTC))))

    async def sql(self, query: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.db_url, server_settings={"search_path": "membership"})
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    async def events(self, kind: type[Event]) -> list[Event]:
        """Committed events of one type, whether still in the outbox or already relayed."""
        blobs = [bytes(r["envelope"]) for r in await self.sql(
            "SELECT envelope FROM outbox ORDER BY id")]
        redis = connect_redis(self.redis_url)
        try:
            entries: Any = await redis.xrange(stream_name("membership"))
        finally:
            await redis.aclose()
        blobs = [fields[b"envelope"] for _, fields in entries] + blobs
        found: dict[str, Event] = {}
        for blob in blobs:
            envelope = envelope_pb2.EventEnvelope.FromString(blob)
            message = kind()
            if envelope.payload.Unpack(message):
                found.setdefault(envelope.event_id, message)
        return list(found.values())


@pytest.fixture
async def club(db_url: str, redis_url: str) -> AsyncIterator[Club]:
    async with running_service(service_settings("identity", db_url, redis_url),
                               identity_compose) as identity:
        settings = service_settings("membership", db_url, redis_url,
                                    IDENTITY_ADDR=identity.address)
        async with running_service(settings, membership_compose) as membership:
            membership_channel = contract_channel(membership)
            identity_channel = contract_channel(identity)
            yield Club(pb_grpc.MembershipServiceStub(membership_channel),
                       identity_grpc.IdentityServiceStub(identity_channel), db_url, redis_url)
            await membership_channel.close()
            await identity_channel.close()

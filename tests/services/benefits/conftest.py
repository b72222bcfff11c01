"""The benefits service in-process on real PostgreSQL and Redis, with helpers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as pb_grpc
from libs.db import Database
from libs.testing import contract_channel, running_service, service_settings
from services.benefits.main import make_compose
from tests.services.benefits.standin_ports import StandInActivities, StandInMembership


def rid() -> str:
    return uuid.uuid4().hex


@dataclass
class Benefits:
    api: pb_grpc.BenefitsServiceStub
    admin: pb_grpc.BenefitsAdminServiceStub
    db: Database
    address: str
    members: StandInMembership

    async def grant(self, brand_id: str, account_id: str, amount: int,
                    **extra: object) -> pb.GrantPointsResponse:
        return await self.api.GrantPoints(pb.GrantPointsRequest(
            request_id=rid(), brand_id=brand_id, account_id=account_id, amount=amount,
            reason_code="TEST", source=pb.POINTS_SOURCE_OPERATOR, **extra))  # type: ignore[arg-type]

    async def balance(self, brand_id: str, account_id: str) -> pb.GetPointsBalanceResponse:
        return await self.api.GetPointsBalance(pb.GetPointsBalanceRequest(
            brand_id=brand_id, account_id=account_id))

    async def consistent(self, brand_id: str) -> bool:
        check = await self.api.CheckPointsLedger(pb.CheckPointsLedgerRequest(brand_id=brand_id))
        return check.consistent

    async def template(self, brand_id: str, stock: int = 100, limit: int = 1,
                       levels: tuple[int, ...] = ()) -> pb.CouponTemplate:
        now = datetime.now(UTC)
        template = pb.CouponTemplate(
            brand_id=brand_id, title="10 off 100", kind=pb.COUPON_KIND_AMOUNT_OFF,
            amount_off_cents=1000, threshold_cents=10000, valid_days=30, total_stock=stock,
            per_member_limit=limit, eligible_levels=list(levels),
            placements=[pb.COUPON_PLACEMENT_CHECKOUT, pb.COUPON_PLACEMENT_MEMBER_PAGE])
        template.claim_start_time.FromDatetime(now - timedelta(minutes=1))
        return (await self.admin.CreateCouponTemplate(pb.CreateCouponTemplateRequest(
            request_id=rid(), template=template))).template


def brand() -> str:
    return f"brd_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def benefits(db_url: str, redis_url: str) -> AsyncIterator[Benefits]:
    members = StandInMembership()
    async with running_service(service_settings("benefits", db_url, redis_url),
                               make_compose(membership=members,
                                            activities=StandInActivities())) as svc:
        channel = contract_channel(svc)
        yield Benefits(pb_grpc.BenefitsServiceStub(channel),
                       pb_grpc.BenefitsAdminServiceStub(channel), svc.resources.db, svc.address,
                       members)
        await channel.close()

"""Outbound calls to the other services engagement depends on: the benefits and membership
ports of `services/engagement/ports.py` over their gRPC contracts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as benefits_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from libs.cache import TtlCache
from libs.errors import Code
from libs.grpc_client import answers_found, open_channel, remote_error
from libs.tls import TlsIdentity
from services.engagement.domain.audience import MemberInfo
from services.engagement.ports import (
    TRANSIENT_CODES,
    BenefitsPort,
    BenefitsUnavailable,
    MembershipPort,
)

T = TypeVar("T")

BENEFITS_SERVICE = benefits_pb.DESCRIPTOR.services_by_name["BenefitsService"].full_name
BENEFITS_ADMIN_SERVICE = (
    benefits_pb.DESCRIPTOR.services_by_name["BenefitsAdminService"].full_name)
MEMBERSHIP_SERVICE = membership_pb.DESCRIPTOR.services_by_name["MembershipService"].full_name


def open_benefits_channel(address: str, tls: TlsIdentity) -> grpc.aio.Channel:
    return open_channel(address, service=(BENEFITS_SERVICE, BENEFITS_ADMIN_SERVICE), tls=tls)


def open_membership_channel(address: str, tls: TlsIdentity) -> grpc.aio.Channel:
    return open_channel(address, service=MEMBERSHIP_SERVICE, tls=tls, timeout=3.0)


async def _call(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except grpc.aio.AioRpcError as error:
        typed = remote_error(error)
        if typed.code in TRANSIENT_CODES:
            raise BenefitsUnavailable(typed.message, reason=typed.reason or "UNAVAILABLE",
                                      metadata=typed.metadata) from None
        raise typed from None


class GrpcBenefits:
    """BenefitsPort over the benefits service's gRPC contract."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = benefits_grpc.BenefitsServiceStub(channel)
        self._admin = benefits_grpc.BenefitsAdminServiceStub(channel)

    async def coupon_template_exists(self, brand_id: str, template_id: str) -> bool:
        return await answers_found(self._admin.GetCouponTemplate(
            benefits_pb.GetCouponTemplateRequest(brand_id=brand_id, template_id=template_id)))

    async def grant_points(self, *, request_id: str, brand_id: str, account_id: str,
                           amount: int, reason_code: str) -> str:
        reply = await _call(lambda: self._stub.GrantPoints(benefits_pb.GrantPointsRequest(
            request_id=request_id, brand_id=brand_id, account_id=account_id, amount=amount,
            reason_code=reason_code, source=benefits_pb.POINTS_SOURCE_ACTIVITY)))
        return reply.entry.entry_id

    async def spend_points(self, *, request_id: str, brand_id: str, account_id: str,
                           amount: int, reason_code: str) -> str:
        reply = await _call(lambda: self._stub.SpendPoints(benefits_pb.SpendPointsRequest(
            request_id=request_id, brand_id=brand_id, account_id=account_id, amount=amount,
            reason_code=reason_code, source=benefits_pb.POINTS_SOURCE_ACTIVITY)))
        return reply.entry.entry_id

    async def reverse_points(self, *, request_id: str, brand_id: str, entry_id: str,
                             reason_code: str) -> str:
        reply = await _call(lambda: self._stub.ReversePointsEntry(
            benefits_pb.ReversePointsEntryRequest(request_id=request_id, brand_id=brand_id,
                                                  entry_id=entry_id, reason_code=reason_code)))
        return reply.entry.entry_id

    async def issue_coupon(self, *, request_id: str, brand_id: str, account_id: str,
                           coupon_template_id: str, reason_code: str) -> str:
        reply = await _call(lambda: self._stub.IssueCoupon(benefits_pb.IssueCouponRequest(
            request_id=request_id, brand_id=brand_id, account_id=account_id,
            coupon_template_id=coupon_template_id, reason_code=reason_code)))
        return reply.coupon_id

    async def coupon_refusals(self, *, brand_id: str, account_id: str,
                              coupon_template_ids: list[str]) -> dict[str, str]:
        reply = await _call(lambda: self._stub.CheckCouponsIssuable(
            benefits_pb.CheckCouponsIssuableRequest(
                brand_id=brand_id, account_id=account_id,
                coupon_template_ids=coupon_template_ids)))
        return {r.coupon_template_id: "" if r.issuable else r.reason or "NOT_ISSUABLE"
                for r in reply.results}


class GrpcMembership:
    """MembershipPort over GetBrand / GetMemberCard, cached briefly (read on every
    participation; a tier change shows within `member_ttl` seconds). Concurrent misses on
    one member share a single call (a burst of one member's requests costs one)."""

    def __init__(self, channel: grpc.aio.Channel, *, member_ttl: float = 5.0,
                 brand_ttl: float = 60.0) -> None:
        self._stub = membership_grpc.MembershipServiceStub(channel)
        self._zones: TtlCache[str, str] = TtlCache(brand_ttl)
        self._members: TtlCache[tuple[str, str], MemberInfo | None] = TtlCache(
            member_ttl, max_entries=100_000)

    async def time_zone(self, brand_id: str) -> str:
        return await self._zones.get_or_load(brand_id, lambda: self._load_zone(brand_id))

    async def _load_zone(self, brand_id: str) -> str:
        try:
            reply = await self._stub.GetBrand(membership_pb.GetBrandRequest(brand_id=brand_id))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        return reply.brand.time_zone or "Asia/Shanghai"

    async def member(self, brand_id: str, account_id: str) -> MemberInfo | None:
        return await self._members.get_or_load(
            (brand_id, account_id), lambda: self._load_member(brand_id, account_id))

    async def _load_member(self, brand_id: str, account_id: str) -> MemberInfo | None:
        try:
            reply = await self._stub.GetMemberCard(membership_pb.GetMemberCardRequest(
                brand_id=brand_id, account_id=account_id))
        except grpc.aio.AioRpcError as error:
            typed = remote_error(error)
            if typed.code is not Code.NOT_FOUND:
                raise typed from None
            return None
        card = reply.card
        if card.status not in (membership_pb.MEMBER_STATUS_LV0,
                               membership_pb.MEMBER_STATUS_CARD_MEMBER):
            return None
        return MemberInfo(level=card.level,
                          card_member=card.status == membership_pb.MEMBER_STATUS_CARD_MEMBER)


@dataclass(frozen=True)
class Upstreams:
    """The other services engagement calls (as the ports its use cases take), and the
    channels to close on shutdown."""

    benefits: BenefitsPort
    membership: MembershipPort
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    @classmethod
    def open(cls, benefits_address: str, membership_address: str,
             tls: TlsIdentity) -> Upstreams:
        benefits = open_benefits_channel(benefits_address, tls)
        membership = open_membership_channel(membership_address, tls)
        return cls(GrpcBenefits(benefits), GrpcMembership(membership),
                   {"benefits": benefits, "membership": membership})

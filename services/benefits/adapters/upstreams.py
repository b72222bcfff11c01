"""Benefits' calls to other services, each behind the port its use cases declare
(`services/benefits/ports.py`).

- The membership port over membership's GetMemberCard (the live card: LV0 or card member).
  A burst of one member's concurrent calls shares one lookup. Nothing is cached, so a
  cancellation takes effect at once.
- The activities port over engagement's GetActivity: configuration that names an activity
  (an earning rule limited to one) is checked against it when saved.
"""

from __future__ import annotations

import asyncio

import grpc

from brandclub.engagement.v1 import engagement_service_pb2 as engagement_pb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as engagement_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from libs.errors import Code
from libs.grpc_client import answers_found, open_channel, remote_error
from libs.tls import TlsIdentity
from services.benefits.domain.eligibility import NOT_A_MEMBER, Membership, Standing

MEMBERSHIP_SERVICE = membership_pb.DESCRIPTOR.services_by_name["MembershipService"].full_name
_ACTIVE = (membership_pb.MEMBER_STATUS_LV0, membership_pb.MEMBER_STATUS_CARD_MEMBER)


def open_membership_channel(address: str, tls: TlsIdentity) -> grpc.aio.Channel:
    return open_channel(address, service=MEMBERSHIP_SERVICE, tls=tls, timeout=3.0)


class GrpcMembership:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = membership_grpc.MembershipServiceStub(channel)
        self._pending: dict[tuple[str, str], asyncio.Future[Membership]] = {}

    async def membership(self, brand_id: str, account_id: str) -> Membership:
        key = (brand_id, account_id)
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(brand_id, account_id))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(pending)

    async def _load(self, brand_id: str, account_id: str) -> Membership:
        try:
            card = (await self._stub.GetMemberCard(membership_pb.GetMemberCardRequest(
                brand_id=brand_id, account_id=account_id))).card
        except grpc.aio.AioRpcError as error:
            typed = remote_error(error)
            if typed.code is Code.NOT_FOUND:
                return NOT_A_MEMBER
            raise typed from None
        if card.status not in _ACTIVE:
            return NOT_A_MEMBER
        return Membership(Standing.ACTIVE, card.level)


ENGAGEMENT_SERVICE = engagement_pb.DESCRIPTOR.services_by_name["EngagementService"].full_name


def open_engagement_channel(address: str, tls: TlsIdentity) -> grpc.aio.Channel:
    return open_channel(address, service=ENGAGEMENT_SERVICE, tls=tls)


class GrpcActivities:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = engagement_grpc.EngagementServiceStub(channel)

    async def activity_exists(self, brand_id: str, activity_id: str) -> bool:
        return await answers_found(self._stub.GetActivity(engagement_pb.GetActivityRequest(
            brand_id=brand_id, activity_id=activity_id)))

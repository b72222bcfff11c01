"""gRPC clients of the services behind the gateway."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from libs.config import Settings
from libs.grpc_client import open_channel

IDENTITY = "brandclub.identity.v1.IdentityService"
MEMBERSHIP = "brandclub.membership.v1.MembershipService"

# Reads, and writes that carry a request_id, are safe to retry.
_IDEMPOTENT = {
    IDENTITY: ("GetAccount", "VerifyToken", "EnsureAccount"),
    MEMBERSHIP: ("GetBrand", "GetShop", "GetMemberCard", "FollowShop", "UnfollowShop"),
}


@dataclass
class Upstreams:
    identity: identity_grpc.IdentityServiceStub
    membership: membership_grpc.MembershipServiceStub
    channels: list[grpc.aio.Channel]

    @classmethod
    def open(cls, settings: Settings) -> Upstreams:
        identity = open_channel(settings.address_of("identity"), service=IDENTITY,
                                idempotent_methods=_IDEMPOTENT[IDENTITY])
        membership = open_channel(settings.address_of("membership"), service=MEMBERSHIP,
                                  idempotent_methods=_IDEMPOTENT[MEMBERSHIP])
        return cls(identity_grpc.IdentityServiceStub(identity),
                   membership_grpc.MembershipServiceStub(membership), [identity, membership])

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()

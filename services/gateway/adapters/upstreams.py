"""gRPC clients of the services behind the gateway."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from brandclub.benefits.v1 import benefits_service_pb2_grpc as benefits_grpc
from brandclub.engagement.v1 import engagement_service_pb2_grpc as engagement_grpc
from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from brandclub.identity.v1 import isv_service_pb2_grpc as isv_grpc
from brandclub.membership.v1 import dashboard_service_pb2_grpc as dashboard_grpc
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from brandclub.membership.v1 import segment_service_pb2_grpc as segment_grpc
from brandclub.messaging.v1 import messaging_service_pb2_grpc as messaging_grpc
from libs.config import Settings
from libs.grpc_client import open_channel
from libs.tls import load_identity

IDENTITY = "brandclub.identity.v1.IdentityService"
ISV = "brandclub.identity.v1.IsvService"
MEMBERSHIP = "brandclub.membership.v1.MembershipService"
BENEFITS = "brandclub.benefits.v1.BenefitsService"
BENEFITS_ADMIN = "brandclub.benefits.v1.BenefitsAdminService"
ENGAGEMENT = "brandclub.engagement.v1.EngagementService"
MESSAGING = "brandclub.messaging.v1.MessagingService"
SEGMENTS = "brandclub.membership.v1.SegmentService"
DASHBOARDS = "brandclub.membership.v1.DashboardService"


@dataclass
class Upstreams:
    identity: identity_grpc.IdentityServiceStub
    isv: isv_grpc.IsvServiceStub
    membership: membership_grpc.MembershipServiceStub
    benefits: benefits_grpc.BenefitsServiceStub
    benefits_admin: benefits_grpc.BenefitsAdminServiceStub
    engagement: engagement_grpc.EngagementServiceStub
    messaging: messaging_grpc.MessagingServiceStub
    channels: list[grpc.aio.Channel]
    # Segments and dashboards live in the membership process, each on its own channel.
    segments: segment_grpc.SegmentServiceStub
    dashboards: dashboard_grpc.DashboardServiceStub

    @classmethod
    def open(cls, settings: Settings) -> Upstreams:
        tls = load_identity(settings.tls_files)  # the gateway's certificate
        identity = open_channel(settings.address_of("identity"), service=IDENTITY, tls=tls)
        # The ISV service lives in the identity process, on its own channel. Every channel
        # retries exactly what the contract declares retry-safe (libs/contract.py).
        isv = open_channel(settings.address_of("identity"), service=ISV, tls=tls)
        membership = open_channel(settings.address_of("membership"), service=MEMBERSHIP, tls=tls)
        benefits = open_channel(settings.address_of("benefits"), service=BENEFITS, tls=tls)
        benefits_admin = open_channel(settings.address_of("benefits"), service=BENEFITS_ADMIN,
                                      tls=tls)
        engagement = open_channel(settings.address_of("engagement"), service=ENGAGEMENT, tls=tls)
        messaging = open_channel(settings.address_of("messaging"), service=MESSAGING, tls=tls)
        segments = open_channel(settings.address_of("membership"), service=SEGMENTS, tls=tls)
        dashboards = open_channel(settings.address_of("membership"), service=DASHBOARDS, tls=tls)
        return cls(identity_grpc.IdentityServiceStub(identity), isv_grpc.IsvServiceStub(isv),
                   membership_grpc.MembershipServiceStub(membership),
                   benefits_grpc.BenefitsServiceStub(benefits),
                   benefits_grpc.BenefitsAdminServiceStub(benefits_admin),
                   engagement_grpc.EngagementServiceStub(engagement),
                   messaging_grpc.MessagingServiceStub(messaging),
                   [identity, isv, membership, benefits, benefits_admin, engagement, messaging,
                    segments, dashboards],
                   segments=segment_grpc.SegmentServiceStub(segments),
                   dashboards=dashboard_grpc.DashboardServiceStub(dashboards))

    def processes(self) -> dict[str, grpc.aio.Channel]:
        """One channel to each upstream process (for its gRPC health), in `channels` order:
        identity, isv, membership, benefits, benefits_admin, engagement, messaging, ..."""
        identity, _, membership, benefits, _, engagement, messaging, *_ = self.channels
        return {"identity": identity, "membership": membership, "benefits": benefits,
                "engagement": engagement, "messaging": messaging}

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()

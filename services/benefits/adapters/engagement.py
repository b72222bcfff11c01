"""The activities port over engagement's GetActivity: configuration that names an activity
(an earning rule limited to one) is checked against it when saved."""

from __future__ import annotations

import grpc

from brandclub.engagement.v1 import engagement_service_pb2 as engagement_pb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as engagement_grpc
from libs.grpc_client import answers_found, open_channel
from libs.tls import TlsIdentity

ENGAGEMENT_SERVICE = engagement_pb.DESCRIPTOR.services_by_name["EngagementService"].full_name


def open_engagement_channel(address: str, tls: TlsIdentity) -> grpc.aio.Channel:
    return open_channel(address, service=ENGAGEMENT_SERVICE, tls=tls)


class GrpcActivities:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = engagement_grpc.EngagementServiceStub(channel)

    async def activity_exists(self, brand_id: str, activity_id: str) -> bool:
        return await answers_found(self._stub.GetActivity(engagement_pb.GetActivityRequest(
            brand_id=brand_id, activity_id=activity_id)))

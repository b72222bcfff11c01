"""Composition root of the engagement service."""

from __future__ import annotations

import grpc

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as pb_grpc
from libs.outbox import OutboxRelay
from libs.service import Composition, Resources, run_service
from services.engagement.api.servicer import EngagementServicer

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EngagementService"].full_name


async def compose(resources: Resources) -> Composition:
    servicer = EngagementServicer(resources.db)
    relay = OutboxRelay(resources.db, resources.redis)

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_EngagementServiceServicer_to_server(servicer, server)

    return Composition(service_names=[SERVICE_NAME], register=register, background=[relay.run])


def main() -> None:
    run_service("engagement", compose)

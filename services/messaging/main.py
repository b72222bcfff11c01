"""Composition root of the messaging service."""

from __future__ import annotations

import grpc

from brandclub.messaging.v1 import messaging_service_pb2 as pb
from brandclub.messaging.v1 import messaging_service_pb2_grpc as pb_grpc
from libs.outbox import OutboxRelay
from libs.service import Composition, Resources, run_service
from services.messaging.api.servicer import MessagingServicer

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MessagingService"].full_name


async def compose(resources: Resources) -> Composition:
    servicer = MessagingServicer(resources.db)
    relay = OutboxRelay(resources.db, resources.redis)

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_MessagingServiceServicer_to_server(servicer, server)

    return Composition(service_names=[SERVICE_NAME], register=register, background=[relay.run])


def main() -> None:
    run_service("messaging", compose)

"""Composition root of the benefits service."""

from __future__ import annotations

import grpc

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as pb_grpc
from libs.outbox import OutboxRelay
from libs.service import Composition, Resources, run_service
from services.benefits.api.servicer import BenefitsServicer

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["BenefitsService"].full_name


async def compose(resources: Resources) -> Composition:
    servicer = BenefitsServicer(resources.db)  # type: ignore[abstract]
    relay = OutboxRelay(resources.db, resources.redis)

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_BenefitsServiceServicer_to_server(servicer, server)

    return Composition(service_names=[SERVICE_NAME], register=register, background=[relay.run])


def main() -> None:
    run_service("benefits", compose)

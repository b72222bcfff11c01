"""Composition root of the membership service."""

from __future__ import annotations

import grpc

from brandclub.membership.v1 import membership_service_pb2 as pb
from brandclub.membership.v1 import membership_service_pb2_grpc as pb_grpc
from libs.outbox import OutboxRelay
from libs.service import Composition, Resources, run_service
from services.membership.api.servicer import MembershipServicer

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MembershipService"].full_name


async def compose(resources: Resources) -> Composition:
    servicer = MembershipServicer(resources.db)
    relay = OutboxRelay(resources.db, resources.redis)

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_MembershipServiceServicer_to_server(servicer, server)

    return Composition(service_names=[SERVICE_NAME], register=register, background=[relay.run])


def main() -> None:
    run_service("membership", compose)

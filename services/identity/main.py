"""Composition root of the identity service."""

from __future__ import annotations

import grpc

from brandclub.identity.v1 import identity_service_pb2 as pb
from brandclub.identity.v1 import identity_service_pb2_grpc as pb_grpc
from libs.outbox import OutboxRelay
from libs.service import Composition, Resources, run_service
from services.identity.api.servicer import IdentityServicer
from services.identity.domain.tokens import TokenCodec

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["IdentityService"].full_name


async def compose(resources: Resources) -> Composition:
    servicer = IdentityServicer(resources.db, TokenCodec(resources.settings.token_keys))
    relay = OutboxRelay(resources.db, resources.redis)

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_IdentityServiceServicer_to_server(servicer, server)

    return Composition(service_names=[SERVICE_NAME], register=register, background=[relay.run])


def main() -> None:
    run_service("identity", compose)

"""Composition root of the membership service."""

from __future__ import annotations

import grpc

from brandclub.membership.v1 import membership_service_pb2 as pb
from brandclub.membership.v1 import membership_service_pb2_grpc as pb_grpc
from libs.db import Database
from libs.jobs import Loop, background_loop
from libs.outbox import OutboxRelay
from libs.service import Composition, Resources, run_service
from services.membership.adapters.card_cache import CardCache
from services.membership.adapters.identity_client import IdentityClient
from services.membership.api.servicer import MembershipServicer
from services.membership.segments.composition import reach_part
from services.membership.settings import membership_settings
from services.membership.usecases import evaluation

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MembershipService"].full_name


def evaluation_loop(db: Database, cache: CardCache, interval_seconds: float) -> Loop:
    """Periodic evaluation of every brand: tiers down after the retention window, dormancy."""
    async def evaluate_all() -> None:
        for brand_id in await evaluation.brand_ids(db):
            await evaluation.evaluate_brand_and_forget_cards(db, cache, brand_id)

    return background_loop("member-evaluation", evaluate_all, interval_seconds=interval_seconds,
                           wait_first=True)


async def compose(resources: Resources) -> Composition:
    settings = membership_settings(resources.settings)
    cache = CardCache(resources.redis)
    identity, identity_channel = IdentityClient.open(
        resources.settings.address_of("identity"), resources.tls)
    resources.channels["identity"] = identity_channel
    servicer = MembershipServicer(resources.db, cache, identity)
    relay = OutboxRelay(resources.db, resources.redis)
    interval = settings.evaluation_interval_seconds

    # segments, dashboards, points projection (issue 8)
    reach = reach_part(resources,
                       refresh_interval_seconds=settings.dashboard_refresh_interval_seconds)

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_MembershipServiceServicer_to_server(servicer, server)
        reach.register(server)

    return Composition(service_names=[SERVICE_NAME, *reach.service_names], register=register,
                       background=[relay.run, evaluation_loop(resources.db, cache, interval),
                                   *reach.background])


def main() -> None:
    run_service("membership", compose)

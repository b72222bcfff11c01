"""Composition root of the membership service."""

from __future__ import annotations

import grpc

from brandclub.membership.v1 import member_data_service_pb2 as privacy_pb
from brandclub.membership.v1 import member_data_service_pb2_grpc as privacy_grpc
from brandclub.membership.v1 import membership_service_pb2 as pb
from brandclub.membership.v1 import membership_service_pb2_grpc as pb_grpc
from libs import privacy_api
from libs.jobs import Loop, background_loop
from libs.outbox import OutboxRelay
from libs.service import Composition, Resources, run_service
from services.membership.adapters.card_cache import CardCache
from services.membership.adapters.upstreams import Upstreams
from services.membership.api.servicer import MembershipServicer
from services.membership.segments.composition import reach_part
from services.membership.settings import membership_settings
from services.membership.usecases import evaluation
from services.membership.usecases.context import MembershipContext
from services.membership.usecases.privacy import member_privacy

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MembershipService"].full_name


def evaluation_loop(context: MembershipContext, interval_seconds: float) -> Loop:
    """Periodic evaluation of every brand: tiers down after the retention window, dormancy."""
    return background_loop("member-evaluation",
                           lambda: evaluation.evaluate_every_brand(context),
                           interval_seconds=interval_seconds, wait_first=True)


async def compose(resources: Resources) -> Composition:
    settings = membership_settings(resources.settings)
    upstreams = Upstreams.open(resources.settings.address_of("identity"), resources.tls)
    resources.channels.update(upstreams.channels)
    context = MembershipContext(db=resources.db, cards=CardCache(resources.redis),
                                identity=upstreams.identity)
    servicer = MembershipServicer(context)
    relay = OutboxRelay(resources.db, resources.redis)
    interval = settings.evaluation_interval_seconds

    # segments, dashboards, points projection (issue 8)
    reach = reach_part(resources,
                       refresh_interval_seconds=settings.dashboard_refresh_interval_seconds)

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_MembershipServiceServicer_to_server(servicer, server)
        reach.register(server)
        privacy_api.register(server, privacy, privacy_pb, privacy_grpc)

    privacy = member_privacy(resources.db)
    return Composition(service_names=[SERVICE_NAME, *reach.service_names,
                                      *privacy_api.service_names(privacy_pb)],
                       register=register,
                       background=[relay.run, evaluation_loop(context, interval),
                                   *reach.background])


def main() -> None:
    run_service("membership", compose)

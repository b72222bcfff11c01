"""Composition root of the engagement service."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable

import grpc

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as pb_grpc
from brandclub.engagement.v1 import member_data_service_pb2 as privacy_pb
from brandclub.engagement.v1 import member_data_service_pb2_grpc as privacy_grpc
from libs import privacy_api
from libs.clock import Clock, system_clock
from libs.eventbus import EventConsumer
from libs.jobs import Loop, background_loop
from libs.outbox import OutboxRelay
from libs.service import Compose, Composition, Resources, run_service
from services.engagement.adapters.redis_lottery import LotteryCache
from services.engagement.adapters.upstreams import Upstreams
from services.engagement.api.answers import StoredAnswers
from services.engagement.api.servicer import EngagementServicer
from services.engagement.settings import engagement_settings
from services.engagement.usecases.engagement import Engagement
from services.engagement.usecases.privacy import erasing_on_cancellation, member_privacy

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EngagementService"].full_name
INVITE_GROUP = "engagement-invites"


def every(seconds: float, step: Callable[[], Awaitable[int]], name: str, *,
          batch: int = 100) -> Loop:
    """A background loop: a full batch runs the next pass at once, anything less waits."""
    return background_loop(name, step, interval_seconds=seconds, batch=batch)


def make_compose(*, clock: Clock = system_clock, upstreams: Upstreams | None = None,
                 saga_grace_seconds: float = 10.0, loop_seconds: float = 1.0) -> Compose:
    """The composition, with the clock and the other services replaceable (tests inject a
    clock that crosses midnight, or upstreams whose benefits fails on purpose)."""

    async def compose(resources: Resources) -> Composition:
        settings = engagement_settings(resources.settings).common
        used = upstreams or Upstreams.open(settings.address_of("benefits"),
                                           settings.address_of("membership"), resources.tls)
        resources.channels.update(used.channels)
        engagement = Engagement(resources.db, LotteryCache(resources.redis), used.benefits,
                                used.membership, clock, saga_grace_seconds=saga_grace_seconds)
        servicer = EngagementServicer(engagement, StoredAnswers(resources.db))
        relay = OutboxRelay(resources.db, resources.redis)
        invites = EventConsumer(
            db=resources.db, redis=resources.redis, group=INVITE_GROUP, topics=["membership"],
            handler=erasing_on_cancellation(engagement.on_membership_event, clock),
            consumer_name=f"{socket.gethostname()}-{os.getpid()}")

        def register(server: grpc.aio.Server) -> None:
            pb_grpc.add_EngagementServiceServicer_to_server(servicer, server)
            privacy_api.register(server, privacy, privacy_pb, privacy_grpc)

        privacy = member_privacy(resources.db)

        return Composition(
            service_names=[SERVICE_NAME, *privacy_api.service_names(privacy_pb)],
            register=register,
            background=[relay.run, invites.run,
                        every(loop_seconds, engagement.dispatch_due, "reward_grants"),
                        every(loop_seconds, engagement.recover_sagas, "draw_sagas"),
                        every(loop_seconds, engagement.reveal_due_koi, "koi_reveal", batch=20)],
            on_close=[engagement.close])

    return compose


compose = make_compose()


def main() -> None:
    run_service("engagement", compose)

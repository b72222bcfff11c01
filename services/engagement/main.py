"""Composition root of the engagement service."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable

import grpc

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from brandclub.engagement.v1 import engagement_service_pb2_grpc as pb_grpc
from libs.eventbus import EventConsumer
from libs.jobs import Loop, background_loop
from libs.outbox import OutboxRelay
from libs.service import Compose, Composition, Resources, run_service
from services.engagement.adapters.redis_lottery import LotteryCache
from services.engagement.adapters.remote import (
    GrpcBenefits,
    GrpcMembership,
    open_benefits_channel,
    open_membership_channel,
)
from services.engagement.api.servicer import EngagementServicer
from services.engagement.ports import BenefitsPort, Clock, MembershipPort, system_clock
from services.engagement.settings import engagement_settings
from services.engagement.usecases.engagement import Engagement

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EngagementService"].full_name
INVITE_GROUP = "engagement-invites"


def every(seconds: float, step: Callable[[], Awaitable[int]], name: str, *,
          batch: int = 100) -> Loop:
    """A background loop: a full batch runs the next pass at once, anything less waits."""
    return background_loop(name, step, interval_seconds=seconds, batch=batch)


def make_compose(*, clock: Clock = system_clock, benefits: BenefitsPort | None = None,
                 membership: MembershipPort | None = None, saga_grace_seconds: float = 10.0,
                 loop_seconds: float = 1.0) -> Compose:
    """The composition, with the clock and the outbound ports replaceable (tests inject a
    clock that crosses midnight, or a benefits stand-in that fails on purpose)."""

    async def compose(resources: Resources) -> Composition:
        settings = engagement_settings(resources.settings).common
        benefits_port = benefits
        if benefits_port is None:
            channel = open_benefits_channel(settings.address_of("benefits"),
                                              resources.tls)
            resources.channels["benefits"] = channel
            benefits_port = GrpcBenefits(channel)
        membership_port = membership
        if membership_port is None:
            channel = open_membership_channel(settings.address_of("membership"),
                                              resources.tls)
            resources.channels["membership"] = channel
            membership_port = GrpcMembership(channel)
        engagement = Engagement(resources.db, LotteryCache(resources.redis), benefits_port,
                                membership_port, clock, saga_grace_seconds=saga_grace_seconds)
        servicer = EngagementServicer(resources.db, engagement)
        relay = OutboxRelay(resources.db, resources.redis)
        invites = EventConsumer(
            db=resources.db, redis=resources.redis, group=INVITE_GROUP, topics=["membership"],
            handler=engagement.on_membership_event,
            consumer_name=f"{socket.gethostname()}-{os.getpid()}")

        def register(server: grpc.aio.Server) -> None:
            pb_grpc.add_EngagementServiceServicer_to_server(servicer, server)

        return Composition(
            service_names=[SERVICE_NAME], register=register,
            background=[relay.run, invites.run,
                        every(loop_seconds, engagement.dispatch_due, "reward_grants"),
                        every(loop_seconds, engagement.recover_sagas, "draw_sagas"),
                        every(loop_seconds, engagement.reveal_due_koi, "koi_reveal", batch=20)],
            on_close=[engagement.close])

    return compose


compose = make_compose()


def main() -> None:
    run_service("engagement", compose)

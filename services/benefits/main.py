"""Composition root of the benefits service."""

from __future__ import annotations

import os
import socket

import grpc

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as pb_grpc
from brandclub.benefits.v1 import member_data_service_pb2 as privacy_pb
from brandclub.benefits.v1 import member_data_service_pb2_grpc as privacy_grpc
from libs import privacy_api
from libs.eventbus import EventConsumer
from libs.outbox import OutboxRelay
from libs.service import Compose, Composition, Resources, run_service
from services.benefits.adapters.upstreams import (
    GrpcActivities,
    GrpcMembership,
    open_engagement_channel,
    open_membership_channel,
)
from services.benefits.api.servicer import BenefitsAdminServicer, BenefitsServicer
from services.benefits.ports import ActivitiesPort, MembershipPort
from services.benefits.settings import benefits_settings
from services.benefits.usecases import jobs
from services.benefits.usecases.context import BenefitsContext
from services.benefits.usecases.earning import handle_event
from services.benefits.usecases.privacy import member_privacy

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["BenefitsService"].full_name
ADMIN_SERVICE_NAME = pb.DESCRIPTOR.services_by_name["BenefitsAdminService"].full_name
CONSUMER_GROUP = "benefits-earning"
TOPICS = ("membership", "engagement")


def make_compose(*, membership: MembershipPort | None = None,
                 activities: ActivitiesPort | None = None) -> Compose:
    """The composition, with the outbound ports replaceable (tests of other rules put
    stand-ins there; the eligibility and reference tests run the real services)."""

    async def composed(resources: Resources) -> Composition:
        port = membership
        if port is None:
            channel = open_membership_channel(resources.settings.address_of("membership"),
                                              resources.tls)
            resources.channels["membership"] = channel
            port = GrpcMembership(channel)
        activities_port = activities
        if activities_port is None:
            channel = open_engagement_channel(resources.settings.address_of("engagement"),
                                              resources.tls)
            resources.channels["engagement"] = channel
            activities_port = GrpcActivities(channel)
        return await _compose(resources, port, activities_port)

    return composed


async def _compose(resources: Resources, membership: MembershipPort,
                   activities: ActivitiesPort) -> Composition:
    settings = benefits_settings(resources.settings)
    job_seconds = settings.job_interval_seconds
    recovery_age = settings.redemption_recovery_after_seconds
    db = resources.db
    app = BenefitsContext(db=db, membership=membership, activities=activities)
    servicer = BenefitsServicer(app)
    admin = BenefitsAdminServicer(app)
    relay = OutboxRelay(db, resources.redis)
    consumer = EventConsumer(db=db, redis=resources.redis, group=CONSUMER_GROUP, topics=TOPICS,
                             handler=handle_event,
                             consumer_name=f"{socket.gethostname()}-{os.getpid()}")

    def register(server: grpc.aio.Server) -> None:
        pb_grpc.add_BenefitsServiceServicer_to_server(servicer, server)
        pb_grpc.add_BenefitsAdminServiceServicer_to_server(admin, server)
        privacy_api.register(server, member_privacy(db), privacy_pb, privacy_grpc)

    return Composition(
        service_names=[SERVICE_NAME, ADMIN_SERVICE_NAME, *privacy_api.service_names(privacy_pb)],
        register=register,
        background=[
            relay.run, consumer.run,
            jobs.loop("expire", lambda: jobs.expire_once(db), job_seconds),
            jobs.loop("release", lambda: jobs.release_once(db), job_seconds),
            jobs.loop("recover", lambda: jobs.recover_once(db, recovery_age), job_seconds),
        ])


compose = make_compose()


def main() -> None:
    run_service("benefits", compose)

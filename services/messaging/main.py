"""Composition root of the messaging service."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import grpc

from brandclub.events.v1 import envelope_pb2
from brandclub.messaging.v1 import messaging_service_pb2 as pb
from brandclub.messaging.v1 import messaging_service_pb2_grpc as pb_grpc
from libs.db import Connection
from libs.eventbus import EventConsumer
from libs.grpc_client import open_channel
from libs.outbox import OutboxRelay
from libs.service import Composition, Resources, run_service
from services.messaging.adapters.clients import (
    BENEFITS_ADMIN_SERVICE,
    BENEFITS_SERVICE,
    IDENTITY_SERVICE,
    MEMBERSHIP_SERVICE,
    SEGMENT_SERVICE,
    BenefitsClient,
    IdentityRecipients,
    MembershipClient,
)
from services.messaging.adapters.crypto import CredentialCipher
from services.messaging.adapters.providers import (
    AliyunSmsProvider,
    ProviderRegistry,
    SandboxProvider,
    WeChatTemplateProvider,
)
from services.messaging.api.servicer import MessagingServicer
from services.messaging.domain.channels import ProviderKind
from services.messaging.ports import (
    AudienceSource,
    BenefitsPort,
    BrandDirectory,
    RecipientDirectory,
)
from services.messaging.settings import messaging_settings
from services.messaging.usecases.dispatch import CampaignFanout, Dispatcher
from services.messaging.usecases.journey_entry import JourneyScheduler
from services.messaging.usecases.journey_runner import JourneyRunner
from services.messaging.usecases.membership_events import handle_membership_event

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MessagingService"].full_name
CONSUMER_GROUP = "messaging"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class MessagingOptions:
    """What tests may replace: the clock, the background loops, the outbound ports."""

    clock: Callable[[], datetime] = utc_now
    run_background: bool = True
    recipients: RecipientDirectory | None = None
    benefits: BenefitsPort | None = None
    loops: dict[str, Any] = field(default_factory=dict)


def make_compose(options: MessagingOptions) -> Callable[[Resources], Any]:
    async def compose(resources: Resources) -> Composition:
        service_settings = messaging_settings(resources.settings)
        settings = service_settings.common
        membership_channel = open_channel(
            settings.address_of("membership"), service=(MEMBERSHIP_SERVICE, SEGMENT_SERVICE),
            tls=resources.tls)
        resources.channels["membership"] = membership_channel
        membership = MembershipClient(membership_channel)
        brands: BrandDirectory = membership
        audience: AudienceSource = membership
        recipients = options.recipients
        if recipients is None:
            identity_channel = open_channel(settings.address_of("identity"),
                                            service=IDENTITY_SERVICE, tls=resources.tls)
            resources.channels["identity"] = identity_channel
            recipients = IdentityRecipients(identity_channel)
        benefits = options.benefits
        if benefits is None:
            benefits_channel = open_channel(settings.address_of("benefits"),
                                            service=(BENEFITS_SERVICE, BENEFITS_ADMIN_SERVICE),
                                            tls=resources.tls)
            resources.channels["benefits"] = benefits_channel
            benefits = BenefitsClient(benefits_channel)
        cipher = CredentialCipher(service_settings.credentials_key)
        http = aiohttp.ClientSession()
        providers = ProviderRegistry({
            ProviderKind.SANDBOX: SandboxProvider(resources.db, options.clock),
            ProviderKind.ALIYUN_SMS: AliyunSmsProvider(http, options.clock),
            ProviderKind.WECHAT_OA: WeChatTemplateProvider(http, resources.redis),
        })
        dispatcher = Dispatcher(resources.db, brands=brands, recipients=recipients,
                                providers=providers, cipher=cipher, clock=options.clock)
        fanout = CampaignFanout(resources.db, audience=audience, clock=options.clock)
        runner = JourneyRunner(resources.db, benefits=benefits, clock=options.clock,
                               audience=audience)
        scheduler = JourneyScheduler(resources.db, audience=audience, brands=brands,
                                     benefits=benefits, clock=options.clock)

        async def on_membership_event(conn: Connection,
                                      envelope: envelope_pb2.EventEnvelope) -> None:
            await handle_membership_event(conn, envelope, options.clock())

        consumer = EventConsumer(db=resources.db, redis=resources.redis, group=CONSUMER_GROUP,
                                 topics=["membership"], handler=on_membership_event,
                                 consumer_name=f"messaging-{socket.gethostname()}")
        options.loops.update(dispatcher=dispatcher, fanout=fanout, runner=runner,
                             consumer=consumer, scheduler=scheduler)
        servicer = MessagingServicer(resources.db, cipher=cipher, audience=audience,
                                     benefits=benefits, clock=options.clock)
        relay = OutboxRelay(resources.db, resources.redis)

        def register(server: grpc.aio.Server) -> None:
            pb_grpc.add_MessagingServiceServicer_to_server(servicer, server)

        background = [relay.run]
        if options.run_background:
            background += [consumer.run, fanout.run, dispatcher.run, runner.run, scheduler.run]
        return Composition(service_names=[SERVICE_NAME], register=register,
                           background=background, on_close=[http.close])

    return compose


compose = make_compose(MessagingOptions())


def main() -> None:
    run_service("messaging", compose)

"""Composition root of the messaging service."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc

from brandclub.events.v1 import envelope_pb2
from brandclub.messaging.v1 import member_data_service_pb2 as privacy_pb
from brandclub.messaging.v1 import member_data_service_pb2_grpc as privacy_grpc
from brandclub.messaging.v1 import messaging_service_pb2 as pb
from brandclub.messaging.v1 import messaging_service_pb2_grpc as pb_grpc
from libs import privacy_api
from libs.clock import Clock, system_clock
from libs.db import Connection
from libs.eventbus import EventConsumer
from libs.outbox import OutboxRelay
from libs.service import Composition, Resources, run_service
from services.messaging.adapters.crypto import CredentialCipher
from services.messaging.adapters.providers import (
    AliyunSmsProvider,
    ProviderRegistry,
    SandboxProvider,
    WeChatTemplateProvider,
)
from services.messaging.adapters.upstreams import open_upstreams
from services.messaging.api.servicer import MessagingServicer
from services.messaging.domain.channels import ProviderKind
from services.messaging.ports import (
    BenefitsPort,
    RecipientDirectory,
)
from services.messaging.settings import messaging_settings
from services.messaging.usecases.context import MessagingContext
from services.messaging.usecases.dispatch import CampaignFanout, Dispatcher
from services.messaging.usecases.journey_entry import JourneyScheduler
from services.messaging.usecases.journey_runner import JourneyRunner
from services.messaging.usecases.membership_events import handle_membership_event
from services.messaging.usecases.privacy import erase_on_cancellation, member_privacy

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MessagingService"].full_name
CONSUMER_GROUP = "messaging"


@dataclass
class MessagingOptions:
    """What tests may replace: the clock, the background loops, the outbound ports."""

    clock: Clock = system_clock
    run_background: bool = True
    recipients: RecipientDirectory | None = None
    benefits: BenefitsPort | None = None
    loops: dict[str, Any] = field(default_factory=dict)


def make_compose(options: MessagingOptions) -> Callable[[Resources], Any]:
    async def compose(resources: Resources) -> Composition:
        service_settings = messaging_settings(resources.settings)
        settings = service_settings.common
        upstreams = open_upstreams(settings, resources.tls, resources.channels,
                                   recipients=options.recipients, benefits=options.benefits)
        cipher = CredentialCipher(service_settings.credentials_key)
        http = aiohttp.ClientSession()
        providers = ProviderRegistry({
            ProviderKind.SANDBOX: SandboxProvider(resources.db, options.clock),
            ProviderKind.ALIYUN_SMS: AliyunSmsProvider(http, options.clock),
            ProviderKind.WECHAT_OA: WeChatTemplateProvider(http, resources.redis),
        })
        dispatcher = Dispatcher(resources.db, brands=upstreams.brands,
                                recipients=upstreams.recipients,
                                providers=providers, cipher=cipher, clock=options.clock)
        fanout = CampaignFanout(resources.db, audience=upstreams.audience, clock=options.clock)
        runner = JourneyRunner(resources.db, benefits=upstreams.benefits, clock=options.clock,
                               audience=upstreams.audience)
        scheduler = JourneyScheduler(resources.db, audience=upstreams.audience,
                                     brands=upstreams.brands, benefits=upstreams.benefits,
                                     clock=options.clock)

        async def on_membership_event(conn: Connection,
                                      envelope: envelope_pb2.EventEnvelope) -> None:
            await handle_membership_event(conn, envelope, options.clock())
            await erase_on_cancellation(conn, envelope, options.clock)

        consumer = EventConsumer(db=resources.db, redis=resources.redis, group=CONSUMER_GROUP,
                                 topics=["membership"], handler=on_membership_event,
                                 consumer_name=f"messaging-{socket.gethostname()}")
        options.loops.update(dispatcher=dispatcher, fanout=fanout, runner=runner,
                             consumer=consumer, scheduler=scheduler)
        app = MessagingContext(db=resources.db, cipher=cipher, audience=upstreams.audience,
                               benefits=upstreams.benefits, clock=options.clock)
        servicer = MessagingServicer(app)
        relay = OutboxRelay(resources.db, resources.redis)

        def register(server: grpc.aio.Server) -> None:
            pb_grpc.add_MessagingServiceServicer_to_server(servicer, server)
            privacy_api.register(server, privacy, privacy_pb, privacy_grpc)

        privacy = member_privacy(resources.db)

        background = [relay.run]
        if options.run_background:
            background += [consumer.run, fanout.run, dispatcher.run, runner.run, scheduler.run]
        return Composition(service_names=[SERVICE_NAME, *privacy_api.service_names(privacy_pb)],
                           register=register, background=background, on_close=[http.close])

    return compose


compose = make_compose(MessagingOptions())


def main() -> None:
    run_service("messaging", compose)

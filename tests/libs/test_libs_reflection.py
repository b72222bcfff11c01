"""Reflection v1 (and v1alpha) describes every service each process advertises."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha.reflection_pb2 import ServerReflectionRequest as Request
from grpc_reflection.v1alpha.reflection_pb2 import ServerReflectionResponse as Response

from libs.reflection import V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME
from libs.testing import channel_to, running_service, service_settings
from services.benefits.main import compose as benefits_compose
from services.engagement.main import make_compose as engagement_make_compose
from services.gateway.main import start_gateway
from services.identity.main import compose as identity_compose
from services.membership.main import compose as membership_compose
from services.messaging.main import compose as messaging_compose

HEALTH = "grpc.health.v1.Health"


@pytest.fixture
async def addresses(db_url: str, redis_url: str) -> AsyncIterator[dict[str, str]]:
    """The six processes in-process: name -> TLS address."""
    composes = {"identity": identity_compose, "membership": membership_compose,
                "benefits": benefits_compose, "engagement": engagement_make_compose(),
                "messaging": messaging_compose}
    async with AsyncExitStack() as stack:
        found = {}
        for name, compose in composes.items():
            service = await stack.enter_async_context(running_service(
                service_settings(name, db_url, redis_url), compose))
            found[name] = service.address
        gateway = await start_gateway(service_settings("gateway", db_url, redis_url),
                                      http_port=0, grpc_port=0, bind="127.0.0.1")
        stack.push_async_callback(gateway.stop, 0.2)
        found["gateway"] = f"127.0.0.1:{gateway.host.port}"
        yield found


async def ask(channel: grpc.aio.Channel, reflection_service: str,
              requests: list[Request]) -> list[Response]:
    call = channel.stream_stream(f"/{reflection_service}/ServerReflectionInfo",
                                 request_serializer=Request.SerializeToString,
                                 response_deserializer=Response.FromString)
    stream = call(iter(requests), timeout=10)
    return [answer async for answer in stream]


def described_services(answer: Response) -> set[str]:
    names = set()
    for raw in answer.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        names |= {f"{proto.package}.{service.name}" for service in proto.service}
    return names


async def test_reflection_v1_describes_every_advertised_service(
        addresses: dict[str, str]) -> None:
    """Every process lists its services over v1 and v1alpha alike, and v1 returns a
    descriptor for each one it lists, the reflection services included; the gateway lists
    nothing it cannot describe, and an unknown symbol is NOT_FOUND in the stream."""
    for process, address in addresses.items():
        async with channel_to(address, peer=process, caller="operator") as channel:
            listed = await ask(channel, V1_SERVICE_NAME, [Request(list_services="")])
            names = {service.name for service in listed[0].list_services_response.service}
            alpha = await ask(channel, V1ALPHA_SERVICE_NAME, [Request(list_services="")])
            assert {s.name for s in alpha[0].list_services_response.service} == names
            assert {HEALTH, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME} <= names, process
            answers = await ask(channel, V1_SERVICE_NAME,
                                [Request(file_containing_symbol=name) for name in sorted(names)])
            for name, answer in zip(sorted(names), answers, strict=True):
                assert not answer.HasField("error_response"), (process, name, answer)
                assert name in described_services(answer), (process, name)
    async with channel_to(addresses["gateway"], peer="gateway", caller="operator") as channel:
        listed = await ask(channel, V1_SERVICE_NAME, [Request(list_services="")])
        [unknown] = await ask(channel, V1_SERVICE_NAME,
                              [Request(file_containing_symbol="brandclub.nope.v1.Nothing")])
    assert {s.name for s in listed[0].list_services_response.service} == {
        HEALTH, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME}
    assert unknown.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


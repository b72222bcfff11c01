"""/readyz reflects the upstream services the gateway needs (their gRPC health), within an
overall time limit, cached briefly so frequent probes stay cheap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from libs.ports import held_closed_port
from libs.testing import running_service, service_settings
from services.gateway.adapters.readiness import UpstreamHealth
from services.gateway.main import start_gateway
from services.identity.main import compose as identity_compose
from services.membership.main import compose as membership_compose
from tests.services.gateway.conftest import Suite

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class FakeHealth(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """A local stand-in for an upstream's health service: a settable status, an optional
    hang, and a count of the checks it answered."""

    def __init__(self, status: int = SERVING, hang: bool = False) -> None:
        self.status, self.hang, self.calls = status, hang, 0

    async def Check(self, request: Any, context: Any) -> Any:
        self.calls += 1
        if self.hang:
            await asyncio.sleep(30)
        return health_pb2.HealthCheckResponse(status=self.status)


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[dict[str, FakeHealth], dict[str, grpc.aio.Channel]]]:
    servicers = {"identity": FakeHealth(), "membership": FakeHealth(NOT_SERVING),
                 "benefits": FakeHealth(hang=True)}
    servers, channels = [], {}
    for name, servicer in servicers.items():
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        channels[name] = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    channels["messaging"] = grpc.aio.insecure_channel(f"127.0.0.1:{closed_port()}")
    yield servicers, channels
    for channel in channels.values():
        await channel.close()
    for server in servers:
        await server.stop(0)


def closed_port() -> int:
    """A loopback port nothing listens on, held so that nothing can start to (libs.ports)."""
    return held_closed_port()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_each_upstream_is_judged_within_one_time_limit(fakes: Any) -> None:
    """SERVING, NOT_SERVING, a hung upstream and one nothing listens on are told apart, and
    the hung one cannot hold the answer past the overall limit."""
    _, channels = fakes
    health = UpstreamHealth(channels, timeout_seconds=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    ready, statuses = await health.ready()
    assert loop.time() - started < 5  # bounded by the limit, not by the 30 s hang
    assert not ready
    assert statuses == {"identity": "SERVING", "membership": "NOT_SERVING",
                        "benefits": "UNREACHABLE", "messaging": "UNREACHABLE"}


async def test_answers_are_cached_and_probes_share_one_check(fakes: Any) -> None:
    """Probes within the cache span reuse the last answer; concurrent probes share one check;
    after the span a change upstream is seen."""
    servicers, channels = fakes
    clock = Clock()
    health = UpstreamHealth({"identity": channels["identity"],
                             "membership": channels["membership"]},
                            timeout_seconds=2.0, cache_seconds=2.0, clock=clock)
    results = await asyncio.gather(*(health.ready() for _ in range(10)))
    assert all(result == (False, {"identity": "SERVING", "membership": "NOT_SERVING"})
               for result in results)
    assert servicers["identity"].calls == 1 and servicers["membership"].calls == 1
    servicers["membership"].status = SERVING
    clock.now += 1.9
    assert (await health.ready())[0] is False
    clock.now += 0.2
    assert await health.ready() == (True, {"identity": "SERVING", "membership": "SERVING"})
    assert servicers["identity"].calls == 2


async def test_readyz_is_503_naming_upstreams_that_are_down(db_url: str, redis_url: str
                                                            ) -> None:
    """With identity and membership up but benefits, engagement and messaging unreachable,
    /readyz answers 503 and names each upstream's state."""
    async with running_service(service_settings("identity", db_url, redis_url),
                               identity_compose) as identity, \
            running_service(service_settings("membership", db_url, redis_url),
                            membership_compose) as membership:
        down = {name: f"127.0.0.1:{closed_port()}"
                for name in ("BENEFITS_ADDR", "ENGAGEMENT_ADDR", "MESSAGING_ADDR")}
        gateway = await start_gateway(
            service_settings("gateway", db_url, redis_url, IDENTITY_ADDR=identity.address,
                             MEMBERSHIP_ADDR=membership.address, **down),
            http_port=0, grpc_port=0, bind="127.0.0.1")
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", gateway.http_port)
            writer.write(b"GET /readyz HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(-1), 10)
            writer.close()
        finally:
            await gateway.stop(0.2)
    assert answer.startswith(b"HTTP/1.1 503 "), answer
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert b'"identity": "SERVING"' in body and b'"membership": "SERVING"' in body
    for name in (b"benefits", b"engagement", b"messaging"):
        assert b'"' + name + b'": "UNREACHABLE"' in body, body


async def test_readyz_is_200_when_every_upstream_serves(full_suite: Suite) -> None:
    """With every upstream running, /readyz answers 200 listing each as SERVING."""
    async with full_suite.http.get("/readyz") as response:
        body = await response.json()
        assert response.status == 200, body
    assert body["upstreams"] == {name: "SERVING" for name in (
        "identity", "membership", "benefits", "engagement", "messaging")}


async def test_a_closed_channel_reads_as_unreachable() -> None:
    """A channel already closed (the gateway shutting down) makes the probe answer not ready
    instead of failing."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{closed_port()}")
    await channel.close()
    assert await UpstreamHealth({"identity": channel}).ready() == (
        False, {"identity": "UNREACHABLE"})

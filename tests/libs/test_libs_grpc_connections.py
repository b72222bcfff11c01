"""Connection age and keepalive: a server added behind the same address gets new calls.

In Kubernetes a client dials a Service address; kube-proxy picks a backend pod per new TCP
connection, so a long-lived gRPC connection stays on the pod it first reached. Here a small
TCP proxy plays kube-proxy (round-robin per connection over the backends it knows), a client
channel dials it, and a second server is added behind it, as the autoscaler would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import grpc

from libs.config import ConnectionSettings, load_settings
from libs.grpc_client import channel_options, open_channel
from libs.grpc_server import ServiceHost, server_options
from libs.testing import identity_of

SERVICE = "test.Who"


def _raw(data: bytes) -> bytes:
    return data


class ConnectionBalancer:
    """A TCP proxy choosing a backend per new connection, like kube-proxy."""

    def __init__(self) -> None:
        self.backends: list[int] = []
        self._turn = itertools.count()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = self.backends[next(self._turn) % len(self.backends)]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)


async def start_named_server(name: bytes, connections: ConnectionSettings) -> ServiceHost:
    """A server whose one method answers its name."""

    async def who(request: bytes, context: Any) -> bytes:
        return name

    host = ServiceHost(service="identity", service_names=[SERVICE],
                       authorize=lambda _method: frozenset({"operator"}),
                       connections=connections)
    handler = grpc.unary_unary_rpc_method_handler(who, request_deserializer=_raw,
                                                  response_serializer=_raw)
    host.server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(SERVICE, {"Who": handler})])
    await host.start(0, "127.0.0.1", tls=identity_of("identity"), health_port=None,
                     metrics_port=None)
    return host


@contextlib.asynccontextmanager
async def balancer() -> AsyncIterator[tuple[ConnectionBalancer, int]]:
    proxy = ConnectionBalancer()
    port = await proxy.start()
    try:
        yield proxy, port
    finally:
        await proxy.stop()


async def test_new_calls_reach_a_server_added_after_the_connection_was_made() -> None:
    """Calls go to the first server; once a second one joins, the first closes the
    connection at its maximum age (the calls in flight finish), the client reconnects and
    calls reach the new server, without a single call failing."""
    connections = ConnectionSettings(max_connection_age_seconds=1.0,
                                     max_connection_age_grace_seconds=1.0,
                                     keepalive_time_seconds=10.0, keepalive_timeout_seconds=2.0)
    first = await start_named_server(b"first", connections)
    second: ServiceHost | None = None
    async with balancer() as (proxy, port):
        proxy.backends.append(first.port)
        channel = open_channel(f"127.0.0.1:{port}", service=SERVICE,
                               tls=identity_of("operator"), peer="identity",
                               connections=connections)
        try:
            call = channel.unary_unary(f"/{SERVICE}/Who", request_serializer=_raw,
                                       response_deserializer=_raw)
            assert await call(b"") == b"first"
            second = await start_named_server(b"second", connections)
            proxy.backends.append(second.port)
            answers = []
            for _ in range(300):  # up to ~15 s: a few connection ages
                answers.append(await call(b"", timeout=5))
                if answers[-1] == b"second":
                    break
                await asyncio.sleep(0.05)
        finally:
            await channel.close()
            await first.server.stop(0)
            if second is not None:
                await second.server.stop(0)
    assert answers[-1] == b"second"
    assert answers[0] == b"first"


def test_connection_settings_are_read_from_the_environment() -> None:
    """GRPC_MAX_CONNECTION_AGE_* and GRPC_KEEPALIVE_* reach both server and channel options;
    the server accepts pings as often as clients send them."""
    settings = load_settings("identity", {
        "BRANDCLUB_ENV": "development", "GRPC_MAX_CONNECTION_AGE_SECONDS": "60",
        "GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS": "40", "GRPC_KEEPALIVE_TIME_SECONDS": "20",
        "GRPC_KEEPALIVE_TIMEOUT_SECONDS": "5"}).connections
    server = dict(server_options(settings))
    client = dict(channel_options(settings))
    assert server["grpc.max_connection_age_ms"] == 60_000
    assert server["grpc.max_connection_age_grace_ms"] == 40_000
    assert client["grpc.keepalive_time_ms"] == 20_000
    assert client["grpc.keepalive_timeout_ms"] == 5_000
    assert server["grpc.http2.min_ping_interval_without_data_ms"] <= \
        client["grpc.keepalive_time_ms"]
    assert client["grpc.keepalive_permit_without_calls"] == 1

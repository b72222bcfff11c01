"""The gateway's HTTP listener bounds the time a request head may take (slow-header denial of
service), without cutting idle keep-alive connections or requests that arrive whole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from libs.testing import service_settings
from services.gateway.main import GatewayOptions, RunningGateway, start_gateway

HEAD_SECONDS = 0.5
# Far below aiohttp's own keep-alive timer (minutes), far above the bound itself.
CLOSED_WITHIN = 5.0


@pytest.fixture
async def gateway(db_url: str, redis_url: str) -> AsyncIterator[RunningGateway]:
    running = await start_gateway(service_settings("gateway", db_url, redis_url),
                                  http_port=0, grpc_port=0, bind="127.0.0.1",
                                  options=GatewayOptions(request_head_seconds=HEAD_SECONDS))
    yield running
    await running.stop(0.2)


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    data = b""
    while chunk := await reader.read(65536):
        data += chunk
    return data


async def test_unfinished_header_block_is_cut_with_408(gateway: RunningGateway) -> None:
    """A head that stops half-way is answered 408 and the connection closed within the bound
    (it used to be held for minutes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.http_port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: a")
    await writer.drain()
    answer = await asyncio.wait_for(read_until_closed(reader), CLOSED_WITHIN)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"REQUEST_HEAD_TIMEOUT" in answer


async def test_a_trickled_head_does_not_reset_the_clock(gateway: RunningGateway) -> None:
    """Sending the head one byte at a time (each byte well inside the bound) is still cut: the
    bound is on the whole head, counted from its first byte."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.http_port)
    head = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n" + b"X-Pad: " + b"a" * 200

    async def trickle() -> None:
        for byte in head:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(HEAD_SECONDS / 10)

    sender = asyncio.create_task(trickle())
    try:
        answer = await asyncio.wait_for(read_until_closed(reader), CLOSED_WITHIN)
    finally:
        sender.cancel()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer


async def test_idle_keep_alive_and_whole_requests_are_served(gateway: RunningGateway) -> None:
    """A connection idle between requests for longer than the bound is kept, and the next
    request on it is answered; a head sent in two quick parts is answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.http_port)
    try:
        for _ in range(2):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n")
            await writer.drain()
            await asyncio.sleep(HEAD_SECONDS / 5)
            writer.write(b"\r\n")
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), CLOSED_WITHIN)
            assert status.startswith(b"HTTP/1.1 200 "), status
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            await asyncio.sleep(HEAD_SECONDS * 3)  # idle: the head clock is not running
    finally:
        writer.close()

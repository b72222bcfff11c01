"""The gateway's HTTP listener: aiohttp's, with a bound on the time a request head may take.

aiohttp waits for a request head for as long as the connection stays open (only the idle
keep-alive timer, minutes long, ends it), so a client that sends a header block one byte at a
time holds a connection and its buffers for free: a slow-header denial of service. Here the
clock starts at the first byte of a head and the complete head must arrive within
`head_seconds`; otherwise the client gets `408 Request Timeout` and the connection is closed.
An idle keep-alive connection (no byte of a next request yet) is left to the keep-alive timer,
and the body is bounded by the handlers that read it (`http_common.read_body_bytes`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

_TIMEOUT_BODY = json.dumps({"error": {
    "code": "DEADLINE_EXCEEDED", "reason": "REQUEST_HEAD_TIMEOUT",
    "message": "the request head did not arrive in time", "details": {}}}).encode()
_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\n"
                     + f"Content-Length: {len(_TIMEOUT_BODY)}\r\n\r\n".encode() + _TIMEOUT_BODY)


class HeadTimeoutRequestHandler(RequestHandler):
    """aiohttp's protocol, closing a connection whose request head is not complete within
    `head_seconds` of its first byte."""

    __slots__ = ("_body", "_head_seconds", "_head_timer")

    def __init__(self, manager: web.Server, *, head_seconds: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._head_seconds = head_seconds
        self._head_timer: asyncio.TimerHandle | None = None
        # The payload of the last complete head while its body is still arriving: bytes then
        # belong to the body, not to a next head.
        self._body: Any = None

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:  # a head is complete
            self._cancel_head_timer()
            payload = self._messages[-1][1] if self._messages else None
            self._body = payload if payload is not None and not payload.is_eof() else None
            return
        if self._body is not None and self._body.is_eof():
            self._body = None
            return  # the rest of a body, not the start of a head
        if data and self._body is None and self._head_timer is None and not self._upgraded:
            self._head_timer = self._loop.call_later(self._head_seconds, self._head_expired)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(_TIMEOUT_RESPONSE)
        self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)


class HeadTimeoutSite(web.TCPSite):
    """A TCP site whose connections use HeadTimeoutRequestHandler."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, *,
                 head_seconds: float) -> None:
        super().__init__(runner, host, port)
        self._head_seconds = head_seconds

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        # The handler options the runner was given (line and field sizes, access log).
        options: dict[str, Any] = dict(getattr(server, "_kwargs", {}))
        head_seconds = self._head_seconds

        def protocol() -> HeadTimeoutRequestHandler:
            return HeadTimeoutRequestHandler(server, loop=loop, head_seconds=head_seconds,
                                             **options)

        self._server = await loop.create_server(protocol, self._host, self._port,
                                                backlog=self._backlog)
        self._bound_port = self._server.sockets[0].getsockname()[1]

"""Helpers for testing services built on libs: settings for a test database and in-process
servers on port 0."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc

from libs.authz import Policy
from libs.config import Settings, load_settings
from libs.contract import allowed_callers
from libs.service import Compose, RunningService, start_service
from libs.tls import CALLERS, TlsFiles, TlsIdentity, issue_pki, load_identity, secure_channel


def service_settings(service: str, database_url: str, redis_url: str,
                  **overrides: str) -> Settings:
    # Development mode: the published development secrets are accepted (overrides may
    # replace any of them, or set BRANDCLUB_ENV to test production-strict loading).
    env = {"BRANDCLUB_ENV": "development", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "HEALTH_INTERVAL_SECONDS": "0.2", "TLS_DIR": str(shared_pki() / service), **overrides}
    return load_settings(service, env)


@asynccontextmanager
async def running_service(settings: Settings, compose: Compose, *,
                          authorize: Policy = allowed_callers) -> AsyncIterator[RunningService]:
    """Serve the composition on a free loopback port for the duration of the block."""
    service = await start_service(settings, compose, port=0, host="127.0.0.1",
                                  authorize=authorize)
    try:
        yield service
    finally:
        await service.stop(grace_seconds=0.2)


@functools.cache
def shared_pki() -> Path:
    """A CA and one certificate per caller (libs.tls.CALLERS), made once per test process in a
    temporary directory: `<dir>/<caller>/{ca.crt,tls.crt,tls.key}`."""
    root = Path(tempfile.mkdtemp(prefix="brandclub-test-pki-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return issue_pki(root)


def identity_of(caller: str) -> TlsIdentity:
    """The test certificate of `caller` (a service name, or `operator`)."""
    if caller not in CALLERS:
        raise ValueError(f"unknown caller {caller!r}; one of {', '.join(CALLERS)}")
    return load_identity(TlsFiles.in_dir(shared_pki() / caller))


def channel_to(address: str, *, peer: str, caller: str) -> grpc.aio.Channel:
    """A mutual-TLS channel to the service `peer` at `address`, calling as `caller`.

    Tests call as the service that makes that call in production (the gateway for storefront
    and console calls, messaging to reveal a phone, `operator` for brand and shop set-up).
    """
    return secure_channel(address, identity_of(caller), peer=peer)


def channel(service: RunningService, caller: str) -> grpc.aio.Channel:
    """A mutual-TLS channel to a running service, calling as `caller`."""
    return channel_to(service.address, peer=service.resources.settings.service, caller=caller)


class ContractChannel(grpc.aio.Channel):  # type: ignore[misc]
    """A channel to one service that calls each method as a caller the contract allows for it.

    The caller table (libs.contract.allowed_callers, the proto annotations) names who makes each
    call in production; this channel opens one mutual-TLS connection per such caller and sends
    every method over the first allowed one, in `prefer` order. A method the contract does not
    annotate goes out as `operator` and is refused, as it would be in production. Tests and
    tools use it where one stub stands for several production callers; the authorization tests
    use `channel_to` with an explicit caller instead.
    """

    def __init__(self, address: str, *, peer: str, pki: Path | None = None,
                 prefer: Sequence[str] = CALLERS) -> None:
        self._address = address
        self._peer = peer
        self._pki = pki
        self._prefer = tuple(prefer)
        self._channels: dict[str, grpc.aio.Channel] = {}

    def caller_for(self, method: str) -> str:
        allowed = allowed_callers(method) or frozenset()
        return next((caller for caller in self._prefer if caller in allowed), "operator")

    def _channel(self, method: str) -> grpc.aio.Channel:
        caller = self.caller_for(method)
        channel = self._channels.get(caller)
        if channel is None:
            identity = (identity_of(caller) if self._pki is None
                        else load_identity(TlsFiles.in_dir(self._pki / caller)))
            channel = secure_channel(self._address, identity, peer=self._peer)
            self._channels[caller] = channel
        return channel

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel(method).unary_unary(method, *args, **kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel(method).unary_stream(method, *args, **kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel(method).stream_unary(method, *args, **kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._channel(method).stream_stream(method, *args, **kwargs)

    async def close(self, grace: float | None = None) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close(grace)

    async def __aenter__(self) -> ContractChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        """The state of the connection that carries unannotated calls (as `operator`)."""
        return self._channel("").get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channel("").wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._channel("").channel_ready()


def contract_channel(service: RunningService) -> ContractChannel:
    """A ContractChannel to a running test service (see ContractChannel)."""
    return ContractChannel(service.address, peer=service.resources.settings.service)

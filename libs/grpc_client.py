"""gRPC clients: a deadline on every call, retries only for idempotent methods."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from opentelemetry import propagate
from opentelemetry.instrumentation.grpc import aio_client_interceptors

from libs.config import ConnectionSettings
from libs.contract import idempotent_methods
from libs.errors import Code, RemoteError
from libs.tls import TlsIdentity, peer_of_service, secure_channel
from libs.tracing import spans_exported

DEFAULT_TIMEOUT_SECONDS = 5.0

# The process's keepalive settings (GRPC_KEEPALIVE_*), set once at start-up by
# libs.service / the gateway from their settings; the defaults until then.
_connections = ConnectionSettings()


def configure_channels(connections: ConnectionSettings) -> None:
    """Keepalive for every channel this process opens from now on."""
    global _connections
    _connections = connections


def channel_options(connections: ConnectionSettings) -> list[tuple[str, int]]:
    """Ping an idle connection every keepalive_time and drop it when a ping goes unanswered
    for keepalive_timeout: a peer that vanished (a node lost, a NAT entry expired) is noticed
    in seconds instead of at the next call's deadline. The server accepts pings this often
    (libs.grpc_server.server_options)."""
    return [
        ("grpc.keepalive_time_ms", int(connections.keepalive_time_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", int(connections.keepalive_timeout_seconds * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]


class CallDefaultsInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Give every call a deadline unless the caller set one, and carry the trace context.

    When spans are exported, OpenTelemetry's client interceptor records a client span and
    propagates the context itself; otherwise this one injects the W3C headers alone, so the
    callee's logs share the caller's trace id without the cost of a span per call.
    """

    def __init__(self, timeout: float, *, propagate_context: bool) -> None:
        self._timeout = timeout
        self._propagate = propagate_context

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if details.timeout is None:
            details = details._replace(timeout=self._timeout)
        if self._propagate:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            if carrier:
                metadata = grpc.aio.Metadata(*(details.metadata or ()))
                for key, value in carrier.items():
                    metadata.add(key, value)
                details = details._replace(metadata=metadata)
        return await continuation(details, request)


def _retry_safe(service: str) -> tuple[str, ...]:
    """The contract's retry-safe methods of one of our services; none for anything else."""
    if not service.startswith("brandclub."):
        return ()
    return idempotent_methods(service)


def _service_config(services: Iterable[str]) -> str:
    """Retry UNAVAILABLE only on methods the contract declares safe to repeat.

    Those are the rpcs whose `idempotency_level` is NO_SIDE_EFFECTS or IDEMPOTENT (reads, and
    writes keyed by a request_id); see libs/contract.py.
    """
    names = [{"service": service, "method": method}
             for service in services for method in _retry_safe(service)]
    config: dict[str, Any] = {"methodConfig": []}
    if names:
        config["methodConfig"].append({
            "name": names,
            "retryPolicy": {
                "maxAttempts": 4,
                "initialBackoff": "0.05s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        })
    return json.dumps(config)


def open_channel(
    address: str,
    *,
    service: str | Sequence[str],
    tls: TlsIdentity,
    peer: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    connections: ConnectionSettings | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """A channel to the service(s) `service` names (full names), retrying what is retry-safe.
    `connections` defaults to the process's (configure_channels); `options` adds channel
    options (a load-balancing policy, say)."""
    services = (service,) if isinstance(service, str) else tuple(service)
    # Mutual TLS: `tls` is this process's identity; the server must prove it is `peer` (by
    # default the process that serves the service's package, e.g. identity for IsvService).
    first = service if isinstance(service, str) else next(iter(service))
    return secure_channel(
        address, tls, peer=peer or peer_of_service(first),
        options=[
            ("grpc.service_config", _service_config(services)),
            ("grpc.enable_retries", 1),
            *channel_options(connections or _connections),
            *options,
        ],
        interceptors=_interceptors(timeout),
    )


def _interceptors(timeout: float) -> list[Any]:
    if spans_exported():
        return [*aio_client_interceptors(),
                CallDefaultsInterceptor(timeout, propagate_context=False)]
    return [CallDefaultsInterceptor(timeout, propagate_context=True)]


def remote_error(error: grpc.aio.AioRpcError) -> RemoteError:
    """Turn a failed call back into a typed error, keeping the callee's ErrorInfo."""
    code_value = error.code().value[0]
    try:
        code = Code(code_value)
    except ValueError:
        code = Code.INTERNAL
    reason, domain, metadata = code.name, "", {}
    try:
        status = rpc_status.from_call(error)
        for detail in status.details if status is not None else ():
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
    except Exception:
        # Details that do not parse or disagree with the code (a peer's trailer cut or mangled
        # on the way) must not turn an error into a crash: the call's code and message remain.
        reason, domain, metadata = code.name, "", {}
    message = error.details() or code.name
    return RemoteError(code, message[:1000], reason=reason, domain=domain, metadata=metadata)


async def answers_found(call: Awaitable[Any]) -> bool:
    """Whether a read finds its object: True when the call answers, False on NOT_FOUND; any
    other failure is raised as a `RemoteError`. The shape of every "does this id exist in
    that service?" check made before saving a reference to it."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        failure = remote_error(error)
        if failure.code is Code.NOT_FOUND:
            return False
        raise failure from None
    return True

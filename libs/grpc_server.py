"""gRPC server bootstrap shared by every service.

grpc.aio with the standard health service (honest: NOT_SERVING while PostgreSQL or Redis is
unreachable and while draining), reflection, and interceptors for tracing, logging, deadlines and
errors. SIGTERM drains: health flips to NOT_SERVING while calls are still served for
`DRAIN_SECONDS`; then new calls are refused and calls in flight get `SHUTDOWN_GRACE_SECONDS`.
Connection-level failures of a dependency answer UNAVAILABLE (libs.outages), never INTERNAL.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import grpc
import structlog
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

from libs.authz import AuthorizationInterceptor, Policy
from libs.config import ConnectionSettings
from libs.errors import DomainError
from libs.logging import access_log_enabled, get_logger, write_access_line
from libs.metrics import MetricsListener, observe_rpc
from libs.outages import is_outage
from libs.reflection import V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME, enable_reflection
from libs.safetext import admit, checked_deserializer
from libs.tls import TlsIdentity
from libs.tracing import spans_exported

Probe = Callable[[], Awaitable[None]]
log = get_logger("rpc")

# A call that arrives without a deadline gets this one, so nothing waits forever.
DEFAULT_DEADLINE_SECONDS = 30.0
# Every health check, all probes together, answers within this (Kubernetes probes wait 2 s).
PROBE_TIMEOUT_SECONDS = 1.5


# Trailers must fit the client's metadata limit (8 KiB by default): grpc-message is the message
# percent-encoded (up to 9 bytes per non-ASCII character) and grpc-status-details-bin the
# Status again in base64, so an error echoing a 5,000-character id would be dropped or fail.
MAX_ERROR_MESSAGE_BYTES = 400
MAX_ERROR_METADATA = 16
MAX_ERROR_METADATA_KEY_BYTES = 40
MAX_ERROR_METADATA_VALUE_BYTES = 128


def bounded_text(text: str, limit: int) -> str:
    """The text cut to at most `limit` UTF-8 bytes on a character boundary, marked with …."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return data[:max(limit - 3, 0)].decode("utf-8", "ignore") + "…"


def domain_status(error: DomainError, service: str) -> grpc.Status:
    metadata = {
        bounded_text(key, MAX_ERROR_METADATA_KEY_BYTES):
            bounded_text(value, MAX_ERROR_METADATA_VALUE_BYTES)
        for key, value in list(error.metadata.items())[:MAX_ERROR_METADATA]}
    info = error_details_pb2.ErrorInfo(
        reason=bounded_text(error.reason, 64),
        domain=bounded_text(error.domain or f"{service}.brandclub", 64), metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=int(error.code),
                               message=bounded_text(error.message, MAX_ERROR_MESSAGE_BYTES),
                               details=[detail])
    return rpc_status.to_status(status)


# The W3C headers a caller's trace context travels in.
TRACE_HEADERS = frozenset({"traceparent", "tracestate"})


def remote_trace_context(context: grpc.aio.ServicerContext) -> otel_context.Context | None:
    """The caller's trace context from the call's metadata, or None when it sent none."""
    carrier = {key: value for key, value in context.invocation_metadata() or ()
               if key in TRACE_HEADERS}
    return propagate.extract(carrier) if carrier else None


class RequestInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """One log line and the RED metrics per call; domain errors to rich status; a default
    deadline. With `continue_trace` (no tracing interceptor installed), the call runs in the
    caller's trace context, so log lines and onward calls keep its trace id at no span cost."""

    def __init__(self, service: str, *, continue_trace: bool = False) -> None:
        self._service = service
        self._continue_trace = continue_trace

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method = details.method
        service = self._service
        continue_trace = self._continue_trace

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            remote = remote_trace_context(context) if continue_trace else None
            trace_token = otel_context.attach(remote) if remote is not None else None
            request_id = getattr(request, "request_id", "") or None
            structlog.contextvars.bind_contextvars(rpc_method=method, request_id=request_id)
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                request = admit(request)  # unstorable text or unparsable bytes: refused
                remaining = context.time_remaining()
                if remaining is not None:
                    if remaining <= 0:
                        code = grpc.StatusCode.DEADLINE_EXCEEDED
                        await context.abort(code, "deadline already expired on arrival")
                    # gRPC ends the call at the caller's deadline itself (the handler is
                    # cancelled); a second timer of ours would only cost CPU on every call.
                    return await inner(request, context)
                scope = asyncio.timeout(DEFAULT_DEADLINE_SECONDS)
                try:
                    async with scope:
                        return await inner(request, context)
                except TimeoutError:
                    # Only our own deadline is DEADLINE_EXCEEDED; a timeout raised by the
                    # handler's own I/O is a dependency that did not answer: UNAVAILABLE below.
                    if scope.expired():
                        code = grpc.StatusCode.DEADLINE_EXCEEDED
                        await context.abort(code, "deadline exceeded")
                    raise
            except DomainError as error:
                code = grpc.StatusCode(_status_code_tuple(int(error.code)))
                await context.abort_with_status(domain_status(error, service))
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:
                # Our own abort above (or the handler's) ends the call; when the client has
                # already gone, the abort itself fails with another error: never abort twice.
                if _is_abort(exc) or code is not grpc.StatusCode.OK:
                    code = context.code() or code
                    raise
                if is_outage(exc):
                    # PostgreSQL, Redis or a peer is unreachable: transient, so retryable.
                    code = grpc.StatusCode.UNAVAILABLE
                    log.warning("rpc_dependency_unavailable", error=repr(exc))
                    await context.abort(code, "a dependency is unavailable; retry later")
                if isinstance(exc, NotImplementedError):  # a generated servicer's default
                    code = grpc.StatusCode.UNIMPLEMENTED
                    await context.abort(code, "method not implemented")
                code = grpc.StatusCode.INTERNAL
                log.exception("rpc_unhandled_error")
                await context.abort(code, "internal error")
            finally:
                elapsed = time.perf_counter() - started
                observe_rpc(method, code.name, elapsed)
                if access_log_enabled():  # one line per call, without the processor chain
                    write_access_line("rpc", rpc_method=method, request_id=request_id,
                                      code=code.name, duration_ms=round(elapsed * 1000, 3))
                structlog.contextvars.unbind_contextvars("rpc_method", "request_id")
                if trace_token is not None:
                    otel_context.detach(trace_token)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=checked_deserializer(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )


def _tracing_interceptors(traced: bool) -> list[grpc.aio.ServerInterceptor]:
    # Health calls are not traced: OpenTelemetry's aio interceptor iterates streaming handlers
    # with `async for`, which breaks Health/Watch (it writes via context); nor is reflection.
    if not traced:
        return []
    untraced = filters.any_of(filters.health_check(), filters.service_prefix(V1_SERVICE_NAME),
                              filters.service_prefix(V1ALPHA_SERVICE_NAME))
    return [aio_server_interceptor(filter_=filters.negate(untraced))]


def server_options(connections: ConnectionSettings) -> list[tuple[str, int]]:
    """Connection age and keepalive (libs.config.ConnectionSettings, docs/operations.md).

    Clients ping every keepalive_time (libs.grpc_client), idle connections included, so the
    server must accept pings that often without data or it would answer them with GOAWAY
    ("too_many_pings")."""
    ping_ms = int(connections.keepalive_time_seconds * 1000)
    return [
        ("grpc.so_reuseport", 0),
        ("grpc.max_connection_age_ms", int(connections.max_connection_age_seconds * 1000)),
        ("grpc.max_connection_age_grace_ms",
         int(connections.max_connection_age_grace_seconds * 1000)),
        ("grpc.keepalive_time_ms", ping_ms),
        ("grpc.keepalive_timeout_ms", int(connections.keepalive_timeout_seconds * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", ping_ms // 2),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def _status_code_tuple(value: int) -> tuple[int, str]:
    for member in grpc.StatusCode:
        if member.value[0] == value:
            return member.value  # type: ignore[no-any-return]
    return grpc.StatusCode.UNKNOWN.value  # type: ignore[no-any-return]


def _is_abort(exc: BaseException) -> bool:
    return type(exc).__name__ == "AbortError"


class ServiceHost:
    """A grpc.aio server with health, reflection and the shared interceptors."""

    def __init__(
        self,
        *,
        service: str,
        service_names: Sequence[str],
        probes: Sequence[Probe] = (),
        health_interval_seconds: float = 2.0,
        authorize: Policy,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        probe_timeout_seconds: float = PROBE_TIMEOUT_SECONDS,
        connections: ConnectionSettings | None = None,
    ) -> None:
        self.service = service
        traced = spans_exported()
        self.server = grpc.aio.server(
            # Authorization first: a refused call costs nothing else (libs/authz.py). The
            # tracing interceptor only when spans leave the process: without an exporter its
            # span per call is pure cost (docs/performance.md).
            interceptors=[AuthorizationInterceptor(authorize), *_tracing_interceptors(traced),
                          RequestInterceptor(service, continue_trace=not traced), *interceptors],
            options=server_options(connections or ConnectionSettings()),
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._service_names = list(service_names)
        enable_reflection([*self._service_names, health.SERVICE_NAME], self.server)
        self.metrics = MetricsListener()
        self._probes = list(probes)
        self._interval = health_interval_seconds
        self._probe_timeout = probe_timeout_seconds
        self._draining = False
        self._health_task: asyncio.Task[None] | None = None
        self.port = 0
        self.health_port = 0

    async def start(self, port: int, host: str, *, tls: TlsIdentity,
                    health_port: int | None = 0, metrics_port: int | None = 0) -> int:
        """Serve on `host:port` with mutual TLS. `health_port` (None: not opened) is plaintext
        for probes that cannot do TLS: the authorization interceptor answers only the health
        service there and UNAUTHENTICATED to everything else. `metrics_port` (None: not
        opened) is plaintext HTTP answering GET /metrics for Prometheus."""
        self.port = self.server.add_secure_port(f"{host}:{port}", tls.server_credentials())
        if health_port is not None:
            self.health_port = self.server.add_insecure_port(f"{host}:{health_port}")
        if metrics_port is not None:
            await self.metrics.start(host, metrics_port)
        await self.server.start()
        await self.check_health()
        self._health_task = asyncio.create_task(self._health_loop())
        log.info("server_started", port=self.port, health_port=self.health_port)
        return self.port

    async def check_health(self) -> bool:
        """Probe dependencies and publish SERVING or NOT_SERVING for every service name."""
        healthy = not self._draining
        if healthy:
            try:
                # One limit over every probe, release of their connections included: a hung
                # dependency (PostgreSQL stopped, not refusing) is NOT_SERVING, not a hang.
                async with asyncio.timeout(self._probe_timeout):
                    await asyncio.gather(*(probe() for probe in self._probes))
            except Exception as exc:
                healthy = False
                log.warning("dependency_unhealthy", error=repr(exc))
            if self._draining:  # drain began while the probes ran
                healthy = False
        status = (health_pb2.HealthCheckResponse.SERVING if healthy
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for name in ["", *self._service_names]:
            await self.health.set(name, status)
        return healthy

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check_health()
            except Exception as exc:  # health reporting must never stop
                log.warning("health_check_failed", error=repr(exc))

    @property
    def draining(self) -> bool:
        return self._draining

    async def drain(self, grace_seconds: float, *, drain_seconds: float = 0.0) -> None:
        """Shut down without failing a caller.

        Health turns NOT_SERVING at once, and the server keeps serving every call for
        `drain_seconds`, long enough for load balancers, Kubernetes endpoints and clients to
        move away; only then does it refuse new calls (GOAWAY) and give the calls in flight
        `grace_seconds` to finish.
        """
        self._draining = True
        if self._health_task is not None:
            self._health_task.cancel()
        await self.check_health()
        log.info("server_draining", drain_seconds=drain_seconds, grace_seconds=grace_seconds)
        if drain_seconds > 0:
            await asyncio.sleep(drain_seconds)
        await self.server.stop(grace_seconds)
        await self.metrics.stop()
        log.info("server_stopped")


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)



"""Trace context crosses every gRPC hop made through libs.grpc_client channels."""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from libs.grpc_client import open_channel
from libs.service import Composition, Resources
from libs.testing import identity_of, running_service, service_settings

SERVICE = "test.Trace"


def _raw(data: bytes) -> bytes:
    return data


async def current_trace(request: bytes, context: Any) -> bytes:
    """Answer the trace id the server-side span runs under."""
    return format(trace.get_current_span().get_span_context().trace_id, "032x").encode()


async def compose(resources: Resources) -> Composition:
    def register(server: Any) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            current_trace, request_deserializer=_raw, response_serializer=_raw)
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, {"Current": handler})])

    return Composition(service_names=[SERVICE], register=register)


async def test_callee_runs_under_the_callers_trace(db_url: str, redis_url: str) -> None:
    """A call made inside a span reaches the server in the same trace (no exporter needed)."""
    tracer = TracerProvider().get_tracer("test")
    async with running_service(service_settings("identity", db_url, redis_url),
                               compose, authorize=lambda _method: frozenset({"operator"})) \
            as service:
        channel = open_channel(service.address, service=SERVICE, tls=identity_of("operator"),
                               peer="identity")
        try:
            call = channel.unary_unary(f"/{SERVICE}/Current", request_serializer=_raw,
                                       response_deserializer=_raw)
            with tracer.start_as_current_span("caller") as span:
                answered = await call(b"")
            outside = await call(b"")
        finally:
            await channel.close()
    expected = format(span.get_span_context().trace_id, "032x").encode()
    assert answered == expected
    assert outside != expected

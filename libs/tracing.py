"""OpenTelemetry set-up. Telemetry fails open: a missing collector never stops a service."""

from __future__ import annotations

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

_configured = False
_exporting = False


def spans_exported() -> bool:
    """Whether spans leave the process (an exporter other than "none" is configured)."""
    return _exporting


def configure_tracing(service: str, exporter: str, otlp_endpoint: str) -> None:
    """Install a tracer provider once per process; instrument asyncpg and redis when spans are
    exported.

    Spans get real ids even with exporter "none", so logs carry trace ids in every mode.
    """
    global _configured, _exporting
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        # The batch processor drops spans it cannot send and never blocks a request; short
        # timeouts keep an absent collector from stretching shutdown past the drain.
        exporter_client = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True, timeout=2)
        provider.add_span_processor(BatchSpanProcessor(exporter_client,
                                                       export_timeout_millis=2000))
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    _exporting = exporter != "none"
    if _exporting:
        # SQL and Redis spans only matter when they are exported; without an exporter the
        # gRPC/HTTP server spans alone carry the trace ids that logs need, and a span per
        # query would cost a tenth of a hot path's CPU for nothing.
        _instrument_clients()
    _configured = True


def _instrument_clients() -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    AsyncPGInstrumentor().instrument()
    RedisInstrumentor().instrument()


def current_traceparent() -> str:
    """The W3C traceparent of the active span, or "" outside a trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)

"""OpenTelemetry set-up. Telemetry fails open: a missing collector never stops a service.

Exporter "none" records nothing: spans are non-recording (they still carry ids, so log lines
and outbound calls keep the caller's trace), and libs.grpc_server installs no tracing
interceptor. With an exporter, two rules keep an idle service from tracing itself:

- a database or Redis command (or an outbound call) outside any request or job is not sampled
  (health probes, a consumer's blocking read between polls);
- a background pass runs under `traced_poll`: its spans are held back until it ends and are
  exported only if it reported work, so a poll that found nothing records no trace.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import context as context_api
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from libs.config import OtlpSettings

_configured = False
_exporting = False

# Attributes of a poll's root span: it is one, and how much work it did.
POLL_ATTRIBUTE = "brandclub.poll"
POLL_WORK_ATTRIBUTE = "brandclub.poll.work"
# A runaway pass cannot hold unbounded memory: past this many spans the rest are dropped.
MAX_HELD_SPANS_PER_POLL = 512
# Trace ids of polls already dropped, so that a span ending after its root is dropped too.
REMEMBERED_DROPPED_POLLS = 1024


def spans_exported() -> bool:
    """Whether spans leave the process (an exporter other than "none" is configured)."""
    return _exporting


class NoParentlessClientSpans(Sampler):
    """Root sampler: a client span (SQL, Redis, outbound gRPC) with no request or job around
    it is background noise, never the start of a trace worth keeping."""

    def should_sample(self, parent_context: context_api.Context | None, trace_id: int,
                      name: str, kind: SpanKind | None = None,
                      attributes: Attributes = None, links: Sequence[Link] | None = None,
                      trace_state: trace.TraceState | None = None) -> SamplingResult:
        if kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "NoParentlessClientSpans"


class IdlePollFilter(SpanProcessor):
    """Holds the spans of each `traced_poll` until its root ends; passes them on to `inner`
    only when the poll reported work. Every other span goes straight through."""

    def __init__(self, inner: SpanProcessor) -> None:
        self._inner = inner
        self._held: dict[int, list[ReadableSpan]] = {}
        self._dropped: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: context_api.Context | None = None) -> None:
        if span.parent is None and (span.attributes or {}).get(POLL_ATTRIBUTE):
            with self._lock:
                self._held[span.context.trace_id] = []
        self._inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for kept in self._decide(span):
            self._inner.on_end(kept)

    def _decide(self, span: ReadableSpan) -> list[ReadableSpan]:
        trace_id = span.context.trace_id if span.context is not None else 0
        with self._lock:
            if trace_id in self._dropped:
                return []
            held = self._held.get(trace_id)
            if held is None:
                return [span]
            if span.parent is not None:
                if len(held) < MAX_HELD_SPANS_PER_POLL:
                    held.append(span)
                return []
            del self._held[trace_id]
            # A pass that did work, or failed, is worth its trace.
            worked = int(str((span.attributes or {}).get(POLL_WORK_ATTRIBUTE, 0))) > 0
            if worked or span.status.status_code is trace.StatusCode.ERROR:
                return [*held, span]
            self._dropped[trace_id] = None
            if len(self._dropped) > REMEMBERED_DROPPED_POLLS:
                self._dropped.popitem(last=False)
            return []

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class PollTrace:
    """What a background pass tells its trace: how much work it did (0: not exported)."""

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def did(self, work: int | None) -> None:
        self._span.set_attribute(POLL_WORK_ATTRIBUTE, int(work or 0))


@contextmanager
def traced_poll(name: str) -> Iterator[PollTrace]:
    """A root span for one pass of a background loop; call `.did(n)` with the work done.

    Always a new trace (a pass is nobody's child). Exported only when n > 0.
    """
    span = tracer("brandclub.jobs").start_span(
        f"poll {name}", context=context_api.Context(), kind=SpanKind.INTERNAL,
        attributes={POLL_ATTRIBUTE: True, POLL_WORK_ATTRIBUTE: 0})
    with trace.use_span(span, end_on_exit=True):
        yield PollTrace(span)


def tracer_provider(service: str, exporter: SpanExporter | None, *,
                    batch: bool = True) -> TracerProvider:
    """The provider for `exporter` (None: record nothing, ids only), with the noise rules.
    `batch=False` exports each span as it ends (tests)."""
    resource = Resource.create({"service.name": service})
    if exporter is None:
        return TracerProvider(resource=resource, sampler=ALWAYS_OFF)
    provider = TracerProvider(resource=resource,
                              sampler=ParentBased(root=NoParentlessClientSpans()))
    # The batch processor drops spans it cannot send and never blocks a request; short
    # timeouts keep an absent collector from stretching shutdown past the drain.
    processor: SpanProcessor = (BatchSpanProcessor(exporter, export_timeout_millis=2000)
                                if batch else SimpleSpanProcessor(exporter))
    provider.add_span_processor(IdlePollFilter(processor))
    return provider


def otlp_exporter(otlp: OtlpSettings) -> SpanExporter:
    """The OTLP/gRPC exporter: TLS (the collector checked against OTEL_EXPORTER_OTLP_CERTIFICATE,
    or the system roots; a client certificate when one is set) unless `insecure`."""
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    if otlp.insecure:
        return OTLPSpanExporter(endpoint=otlp.endpoint, insecure=True, timeout=2)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(otlp.certificate_file),
        private_key=_read(otlp.client_key_file),
        certificate_chain=_read(otlp.client_certificate_file))
    return OTLPSpanExporter(endpoint=otlp.endpoint, insecure=False, credentials=credentials,
                            timeout=2)


def _read(path: str) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as file:  # a missing file stops start-up, naming the path
        return file.read()


def configure_tracing(service: str, exporter: str, otlp: OtlpSettings) -> None:
    """Install a tracer provider once per process; instrument asyncpg and redis when spans are
    exported."""
    global _configured, _exporting
    if _configured:
        return
    chosen: SpanExporter | None = None
    if exporter == "otlp":
        chosen = otlp_exporter(otlp)
    elif exporter == "console":
        chosen = ConsoleSpanExporter()
    trace.set_tracer_provider(tracer_provider(service, chosen))
    _exporting = chosen is not None
    if _exporting:
        # SQL and Redis spans only matter when they are exported: a span per query would cost
        # a tenth of a hot path's CPU for nothing.
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

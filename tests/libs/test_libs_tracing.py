"""libs.tracing: an idle service traces nothing, work is traced, exporter "none" costs no span
work, and the OTLP exporter's transport security is a setting."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util._once import Once

from brandclub.events.v1 import membership_events_pb2
from libs import grpc_server, tracing
from libs.config import ConfigError, OtlpSettings, load_settings
from libs.db import Database
from libs.jobs import background_loop
from libs.outbox import OutboxRelay, add_event, stream_name
from libs.redis import connect_redis
from libs.service import Composition, Resources
from libs.testing import channel_to, running_service, service_settings
from libs.tracing import tracer_provider

SERVICE = "test.Traced"


def _install(provider: trace.TracerProvider | None) -> None:
    # The API allows one global provider per process; tests swap it the way OpenTelemetry's
    # own test utilities do.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    if provider is not None:
        trace.set_tracer_provider(provider)


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """A global provider with the production noise rules, exporting to memory at once."""
    memory = InMemorySpanExporter()
    _install(tracer_provider("test", memory, batch=False))
    try:
        yield memory
    finally:
        _install(None)


def names(memory: InMemorySpanExporter) -> list[str]:
    return [span.name for span in memory.get_finished_spans()]


async def run_passes(results: list[int]) -> None:
    """A background loop whose passes do a query-like child span and report `results`."""
    remaining = list(results)
    done = asyncio.Event()

    async def step() -> int:
        with trace.get_tracer("test").start_as_current_span("SELECT", kind=SpanKind.CLIENT):
            pass
        if not remaining:
            done.set()  # every reported pass has ended
            return 0
        return remaining.pop(0)

    task = asyncio.create_task(background_loop("sweep", step, interval_seconds=0.01)())
    await asyncio.wait_for(done.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_idle_background_passes_record_no_spans(exported: InMemorySpanExporter) -> None:
    """Passes that found nothing export nothing, their queries included."""
    await run_passes([0, 0, 0, 0])
    assert exported.get_finished_spans() == ()


async def test_a_pass_with_work_records_its_trace(exported: InMemorySpanExporter) -> None:
    """Among idle passes, the one that did work is exported: its root and its query, which
    is the root's child; the idle ones are not."""
    await run_passes([0, 3, 0])
    spans = exported.get_finished_spans()
    assert sorted(span.name for span in spans) == ["SELECT", "poll sweep"]
    root = next(span for span in spans if span.name == "poll sweep")
    child = next(span for span in spans if span.name == "SELECT")
    assert child.parent is not None and child.parent.span_id == root.context.span_id
    assert root.attributes is not None and root.attributes[tracing.POLL_WORK_ATTRIBUTE] == 3


async def test_a_failing_pass_is_traced(exported: InMemorySpanExporter) -> None:
    """A pass that raises is worth its trace even though it reported no work."""
    with pytest.raises(RuntimeError), tracing.traced_poll("broken"):
        raise RuntimeError("database gone")
    assert names(exported) == ["poll broken"]


def test_a_query_outside_any_request_or_job_is_not_sampled(
        exported: InMemorySpanExporter) -> None:
    """A parentless client span (a health probe's SELECT 1) is dropped; the same span inside
    a request is kept."""
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("SELECT 1", kind=SpanKind.CLIENT):
        pass
    with tracer.start_as_current_span("GET /x", kind=SpanKind.SERVER), \
            tracer.start_as_current_span("SELECT 2", kind=SpanKind.CLIENT):
        pass
    assert sorted(names(exported)) == ["GET /x", "SELECT 2"]


async def test_relay_polls_with_nothing_to_publish_make_no_spans(
        exported: InMemorySpanExporter, db_url: str, redis_url: str) -> None:
    """The outbox relay polling an empty outbox exports nothing; publishing an event does."""
    db = await Database.connect(db_url, "membership", min_size=1, max_size=3)
    redis = connect_redis(redis_url)
    relay = OutboxRelay(db, redis, poll_seconds=0.02)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.3)  # about fifteen idle polls
        assert names(exported) == []
        async with db.transaction() as conn:
            await add_event(conn, topic="tracetest", brand_id="brd_1", producer="membership",
                            payload=membership_events_pb2.MemberFollowed(
                                brand_id="brd_1", shop_id="shp_1", account_id="acc_1"))
        for _ in range(500):  # the pass's span ends once its transaction has committed
            if names(exported):
                break
            await asyncio.sleep(0.01)
        assert await redis.xlen(stream_name("tracetest")) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await redis.aclose()
        await db.close()
    assert names(exported) == ["poll outbox relay"]


def _raw(data: bytes) -> bytes:
    return data


async def current_span_recording(request: bytes, context: Any) -> bytes:
    return b"yes" if trace.get_current_span().is_recording() else b"no"


async def compose(resources: Resources) -> Composition:
    def register(server: Any) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            current_span_recording, request_deserializer=_raw, response_serializer=_raw)
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, {"Recording": handler})])

    return Composition(service_names=[SERVICE], register=register)


async def call_once(db_url: str, redis_url: str) -> bytes:
    async with running_service(service_settings("identity", db_url, redis_url), compose,
                               authorize=lambda _method: frozenset({"operator"})) as service, \
            channel_to(service.address, peer="identity", caller="operator") as channel:
        call = channel.unary_unary(f"/{SERVICE}/Recording", request_serializer=_raw,
                                   response_deserializer=_raw)
        answer: bytes = await call(b"")
        return answer


async def test_no_server_span_when_spans_are_not_exported(
        exported: InMemorySpanExporter, db_url: str, redis_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Exporter "none": no tracing interceptor, so a call makes no span at all; with an
    exporter the same call runs inside a recorded server span."""
    assert await call_once(db_url, redis_url) == b"no"
    assert not any(name.endswith("/Recording") for name in names(exported))
    monkeypatch.setattr(grpc_server, "spans_exported", lambda: True)
    assert await call_once(db_url, redis_url) == b"yes"
    assert f"/{SERVICE}/Recording" in names(exported)


def test_exporter_none_records_nothing_but_keeps_ids() -> None:
    """Without an exporter spans are not recorded, yet carry a trace id for the logs."""
    provider = tracer_provider("test", None)
    with provider.get_tracer("t").start_as_current_span("work") as span:
        assert not span.is_recording()
        assert span.get_span_context().trace_id != 0


def test_otlp_is_tls_by_default_outside_development() -> None:
    """Production: TLS unless OTEL_EXPORTER_OTLP_INSECURE=true; development: plaintext."""
    production = {"DATABASE_URL": "postgresql://u:p@db/x", "REDIS_URL": "redis://r:6379/0",
                  "OTEL_TRACES_EXPORTER": "otlp"}
    assert load_settings("gateway", production, database=False).otlp.insecure is False
    secure = load_settings("gateway", {**production, "OTEL_EXPORTER_OTLP_ENDPOINT":
                                       "https://collector:4317"}, database=False)
    assert secure.otlp.insecure is False
    opted = load_settings("gateway", {**production, "OTEL_EXPORTER_OTLP_INSECURE": "true"},
                          database=False)
    assert opted.otlp.insecure is True
    development = load_settings("gateway", {"BRANDCLUB_ENV": "development"}, database=False)
    assert development.otlp.insecure is True


@pytest.mark.parametrize(("variables", "named"), [
    ({"OTEL_EXPORTER_OTLP_INSECURE": "maybe"}, "OTEL_EXPORTER_OTLP_INSECURE"),
    ({"OTEL_EXPORTER_OTLP_INSECURE": "true", "OTEL_TRACES_EXPORTER": "otlp",
      "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ({"OTEL_EXPORTER_OTLP_INSECURE": "false", "OTEL_TRACES_EXPORTER": "otlp",
      "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, "OTEL_EXPORTER_OTLP_INSECURE"),
    ({"OTEL_EXPORTER_OTLP_CLIENT_KEY": "/k.pem"}, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
])
def test_contradictory_otlp_settings_stop_start_up(variables: dict[str, str],
                                                   named: str) -> None:
    """A malformed or contradictory OTLP setting is refused, naming the variable."""
    with pytest.raises(ConfigError, match=named):
        load_settings("gateway", {"BRANDCLUB_ENV": "development", **variables},
                      database=False)


def test_secure_exporter_reads_the_ca_and_client_files(tmp_path: Path) -> None:
    """A TLS exporter is built from the named PEM files; a missing one stops start-up."""
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    exporter = tracing.otlp_exporter(OtlpSettings(endpoint="collector:4317",
                                                  certificate_file=str(ca)))
    exporter.shutdown()
    with pytest.raises(FileNotFoundError, match=r"absent\.crt"):
        tracing.otlp_exporter(OtlpSettings(certificate_file=str(tmp_path / "absent.crt")))

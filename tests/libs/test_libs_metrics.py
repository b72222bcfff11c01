"""libs.metrics: /metrics on every process, RED per RPC and per HTTP route, and the product
gauges the sampler reads (outbox backlog and lag, consumer lag, dead letters)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from prometheus_client import REGISTRY

from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from libs import metrics
from libs.db import Connection, Database
from libs.errors import NotFound
from libs.eventbus import EventConsumer
from libs.metrics import ProductSampler
from libs.outbox import OutboxRelay, add_event
from libs.redis import Redis, connect_redis
from libs.service import Composition, Resources
from libs.testing import channel_to, running_service, service_settings
from services.gateway.main import start_gateway

SERVICE = "test.Metrics"
TOPIC = "metricstest"
GROUP = "metricstest-readers"


def _raw(data: bytes) -> bytes:
    return data


async def echo(request: bytes, context: Any) -> bytes:
    """Answer the request; b"missing" is a NotFound."""
    if request == b"missing":
        raise NotFound("thing missing", reason="THING_NOT_FOUND")
    return request


async def compose(resources: Resources) -> Composition:
    def register(server: Any) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            echo, request_deserializer=_raw, response_serializer=_raw)
        server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler})])

    return Composition(service_names=[SERVICE], register=register)


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def scrape(port: int) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{port}/metrics") as response:
        return response.status, await response.text()


async def test_metrics_port_answers_with_the_rpc_histogram_after_a_call(
        db_url: str, redis_url: str) -> None:
    """After one OK and one NOT_FOUND call, /metrics has the latency histogram of the method
    and one count per status code."""
    async with running_service(service_settings("identity", db_url, redis_url), compose,
                               authorize=lambda _method: frozenset({"operator"})) as service:
        ok_before = sample("grpc_server_handled_total", grpc_service=SERVICE,
                           grpc_method="Echo", grpc_code="OK")
        async with channel_to(service.address, peer="identity", caller="operator") as channel:
            call = channel.unary_unary(f"/{SERVICE}/Echo", request_serializer=_raw,
                                       response_deserializer=_raw)
            assert await call(b"hello") == b"hello"
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(b"missing")
        assert refused.value.code() is grpc.StatusCode.NOT_FOUND
        status, text = await scrape(service.host.metrics.port)
    assert status == 200
    assert re.search(r'grpc_server_handling_seconds_bucket\{grpc_method="Echo",'
                     rf'grpc_service="{SERVICE}",le="0.005"\}} \d', text)
    assert f'grpc_server_handled_total{{grpc_code="NOT_FOUND",grpc_method="Echo",' \
           f'grpc_service="{SERVICE}"}}' in text
    assert sample("grpc_server_handled_total", grpc_service=SERVICE, grpc_method="Echo",
                  grpc_code="OK") == ok_before + 1


async def test_metrics_port_serves_nothing_but_metrics(db_url: str, redis_url: str) -> None:
    """The plaintext metrics port answers /metrics and 404 to every other path."""
    async with running_service(service_settings("identity", db_url, redis_url), compose,
                               authorize=lambda _method: frozenset({"operator"})) as service, \
            aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{service.host.metrics.port}/") as response:
        assert response.status == 404


async def test_gateway_counts_http_calls_by_route_template(db_url: str, redis_url: str) -> None:
    """A call to /storefront/v1/brands/<id>/points is counted under the route's template, on
    the gateway's metrics port, never under the raw path; an unknown path is "unmatched"."""
    template = "/storefront/v1/brands/{brand_id}/points"
    before = sample("http_server_requests_total", method="GET", route=template, status="401")
    gateway = await start_gateway(service_settings("gateway", db_url, redis_url),
                                  http_port=0, grpc_port=0, bind="127.0.0.1")
    try:
        async with aiohttp.ClientSession() as session:
            for brand in ("brd_one", "brd_two"):
                async with session.get(f"{gateway.base_url}/storefront/v1/brands/{brand}/points"
                                       ) as response:
                    assert response.status == 401
            async with session.get(f"{gateway.base_url}/no/such/path/x1") as response:
                assert response.status == 404
        status, text = await scrape(gateway.host.metrics.port)
    finally:
        await gateway.stop(0.2)
    assert status == 200
    assert sample("http_server_requests_total", method="GET", route=template,
                  status="401") == before + 2
    assert 'route="unmatched"' in text
    assert "brd_one" not in text and "/no/such/path" not in text
    assert "http_server_request_duration_seconds_bucket" in text


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(db_url, "membership", min_size=1, max_size=4)
    yield database
    await database.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect_redis(redis_url)
    yield client
    await client.aclose()


async def write_event(db: Database) -> None:
    async with db.transaction() as conn:
        await add_event(conn, topic=TOPIC, brand_id="brd_1", producer="membership",
                        payload=membership_events_pb2.MemberFollowed(
                            brand_id="brd_1", shop_id="shp_1", account_id="acc_1"))


async def test_outbox_backlog_and_lag_follow_the_relay(db: Database, redis: Redis) -> None:
    """Two committed events not yet relayed: backlog 2 and a lag; once relayed: 0 and 0."""
    sampler = ProductSampler(schema="membership", fetchrow=db.fetchrow, redis=redis,
                             consumers=[])
    await write_event(db)
    await write_event(db)
    await db.execute("UPDATE outbox SET created_at = now() - interval '90 seconds'")
    await sampler.sample()
    assert sample("brandclub_outbox_backlog", schema="membership") == 2
    assert sample("brandclub_outbox_lag_seconds", schema="membership") >= 90
    assert await OutboxRelay(db, redis).publish_once() == 2
    await sampler.sample()
    assert sample("brandclub_outbox_backlog", schema="membership") == 0
    assert sample("brandclub_outbox_lag_seconds", schema="membership") == 0


async def test_consumer_lag_pending_and_dead_letters_per_topic(db: Database,
                                                              redis: Redis) -> None:
    """Lag counts entries the group has not read; a handler that always fails leaves its
    entry pending, then (at max_deliveries) moves it to the dead letters."""

    async def failing(conn: Connection, envelope: envelope_pb2.EventEnvelope) -> None:
        raise ValueError("cannot apply")

    consumer = EventConsumer(db=db, redis=redis, group=GROUP, topics=[TOPIC], handler=failing,
                             consumer_name="c1", block_ms=10, max_deliveries=2)
    sampler = ProductSampler(schema="membership", fetchrow=None, redis=redis,
                             consumers=[consumer])
    await consumer.ensure_groups()
    await sampler.sample()
    assert sample("brandclub_consumer_lag", group=GROUP, topic=TOPIC) == 0
    for _ in range(3):
        await write_event(db)
    await OutboxRelay(db, redis).publish_once()
    await sampler.sample()
    assert sample("brandclub_consumer_lag", group=GROUP, topic=TOPIC) == 3
    assert sample("brandclub_dead_letters", group=GROUP, topic=TOPIC) == 0

    await consumer.poll_once(block_ms=10)  # first delivery: all three fail, stay pending
    await sampler.sample()
    assert sample("brandclub_consumer_lag", group=GROUP, topic=TOPIC) == 0
    assert sample("brandclub_consumer_pending", group=GROUP, topic=TOPIC) == 3

    await consumer.poll_once(block_ms=10)  # second delivery: exhausted, dead-lettered
    await sampler.sample()
    assert sample("brandclub_consumer_pending", group=GROUP, topic=TOPIC) == 0
    assert sample("brandclub_dead_letters", group=GROUP, topic=TOPIC) == 3


async def test_a_failed_sample_is_counted_and_keeps_the_last_values(redis: Redis) -> None:
    """The sampler never raises: a query that fails counts a failure, gauges stay."""

    async def broken(query: str) -> Any:
        raise ConnectionRefusedError("postgres is down")

    metrics.OUTBOX_BACKLOG.labels("broken").set(7)
    failures = sample("brandclub_metrics_sampler_failures_total")
    await ProductSampler(schema="broken", fetchrow=broken, redis=redis, consumers=[]).sample()
    assert sample("brandclub_metrics_sampler_failures_total") == failures + 1
    assert sample("brandclub_outbox_backlog", schema="broken") == 7


def test_message_outcomes_are_a_closed_set() -> None:
    """A message status outside the known ones is refused, naming it."""
    with pytest.raises(ValueError, match="'bounced'"):
        metrics.message_outcome("bounced", "X")

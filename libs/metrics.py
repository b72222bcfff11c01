"""Prometheus metrics: one catalogue for every process, served on a plaintext `/metrics` port.

Every metric Brandclub exports is declared here, so alert rules and the dashboard in
deploy/monitoring/ are checked against one list (tests/deploy/test_deploy_monitoring.py). The
names describe product facts (points, messages, lottery stock); libs still imports no service:
services call the one-line recorders below from their own code paths.

Label values come from closed sets (gRPC codes, route templates, registered methods, outcome
reasons chosen in code) or from ids that are bounded by configuration (an ISV app key, a prize
id), never from raw request text, so the number of series stays bounded.

Product gauges that need a query (outbox backlog, consumer lag, dead letters) are read by
`ProductSampler`, a background loop, never on a request's path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from libs.logging import get_logger

log = get_logger(__name__)

# Latency buckets for calls that mostly answer in milliseconds but may wait on a deadline.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)

# --- RED per RPC (libs.grpc_server.RequestInterceptor) --------------------------------------
RPC_HANDLED = Counter(
    "grpc_server_handled_total", "gRPC calls answered, by method and status code",
    ["grpc_service", "grpc_method", "grpc_code"])
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds", "Time to answer a gRPC call, by method",
    ["grpc_service", "grpc_method"], buckets=LATENCY_BUCKETS)

# --- RED per HTTP route (the gateway) -------------------------------------------------------
HTTP_REQUESTS = Counter(
    "http_server_requests_total", "HTTP requests answered, by route template and status",
    ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "http_server_request_duration_seconds", "Time to answer an HTTP request, by route template",
    ["method", "route"], buckets=LATENCY_BUCKETS)

# --- events: outbox and consumers (sampled by ProductSampler) -------------------------------
OUTBOX_BACKLOG = Gauge(
    "brandclub_outbox_backlog", "Committed events not yet relayed to Redis", ["schema"])
OUTBOX_LAG = Gauge(
    "brandclub_outbox_lag_seconds", "Age of the oldest event waiting in the outbox (0: none)",
    ["schema"])
CONSUMER_LAG = Gauge(
    "brandclub_consumer_lag", "Stream entries a consumer group has not read yet",
    ["group", "topic"])
CONSUMER_PENDING = Gauge(
    "brandclub_consumer_pending", "Entries read by a consumer group but not acknowledged",
    ["group", "topic"])
DEAD_LETTERS = Gauge(
    "brandclub_dead_letters", "Entries in a consumer group's dead-letter stream",
    ["group", "topic"])
SAMPLER_FAILURES = Counter(
    "brandclub_metrics_sampler_failures_total", "Passes of the product sampler that failed")

# --- product figures (one-line recorders in service code) -----------------------------------
LOTTERY_STOCK_LEFT = Gauge(
    "brandclub_lottery_stock_left", "Prizes left in a lottery (as of its last win)",
    ["activity_id", "prize_id"])
POINTS_ISSUED = Counter("brandclub_points_issued_total", "Points credited to members")
POINTS_REDEEMED = Counter("brandclub_points_redeemed_total", "Points spent by members")
MESSAGES = Counter(
    "brandclub_messages_total",
    "Messages by outcome (sent, delivered, suppressed, failed) and reason",
    ["outcome", "reason"])
OPEN_PLATFORM_CALLS = Counter(
    "brandclub_open_platform_calls_total", "Open-platform API calls, by app and result",
    ["app_key", "result"])
OPEN_PLATFORM_QUOTA_REFUSALS = Counter(
    "brandclub_open_platform_quota_refusals_total",
    "Open-platform calls refused by the app's quota or rate limit", ["app_key"])

# Message statuses that end a step of delivery, and those that do not (not counted).
MESSAGE_OUTCOMES = ("sent", "delivered", "suppressed", "failed")
MESSAGE_IN_PROGRESS = ("queued", "sending", "read")
# How often ProductSampler reads the outbox and the streams: under a scrape interval (30 s).
SAMPLE_INTERVAL_SECONDS = 15.0
# Counting a lag by reading entries stops here: beyond it the alert has long fired anyway.
LAG_COUNT_CAP = 1_000


def observe_rpc(full_method: str, code: str, seconds: float) -> None:
    """Record one answered call. `full_method` is the registered "/pkg.Service/Method"."""
    service, _, method = full_method.lstrip("/").partition("/")
    RPC_HANDLED.labels(service, method, code).inc()
    RPC_SECONDS.labels(service, method).observe(seconds)


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_SECONDS.labels(method, route).observe(seconds)


def points_issued(points: int) -> None:
    if points > 0:
        POINTS_ISSUED.inc(points)


def points_redeemed(points: int) -> None:
    if points > 0:
        POINTS_REDEEMED.inc(points)


def message_outcome(status: str, reason: str = "") -> None:
    """A message reached `status`; outcomes (MESSAGE_OUTCOMES) are counted with `reason`, an
    UPPER_SNAKE code from the caller's closed set ("" for a plain send); in-progress statuses
    are not. Anything else is a programming error."""
    if status in MESSAGE_IN_PROGRESS:
        return
    if status not in MESSAGE_OUTCOMES:
        raise ValueError(f"message status must be one of "
                         f"{MESSAGE_OUTCOMES + MESSAGE_IN_PROGRESS}, got {status!r}")
    MESSAGES.labels(status, reason).inc()


def open_platform_call(app_key: str, result: str) -> None:
    OPEN_PLATFORM_CALLS.labels(app_key, result).inc()


def open_platform_quota_refused(app_key: str) -> None:
    OPEN_PLATFORM_QUOTA_REFUSALS.labels(app_key).inc()


def lottery_stock_left(activity_id: str, prize_id: str, left: int) -> None:
    LOTTERY_STOCK_LEFT.labels(activity_id, prize_id).set(max(left, 0))


def exposition(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The text format Prometheus scrapes."""
    return generate_latest(registry)


# --- per HTTP route (aiohttp) ----------------------------------------------------------------

# Methods outside this set are counted as OTHER: a client cannot mint label values.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"


def route_template(request: web.Request) -> str:
    """The route's template ("/v1/members/{member_id}"), never the raw path: one series per
    route however many ids are called; anything no route matched shares one label."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    return canonical or UNMATCHED_ROUTE


@web.middleware
async def http_metrics_middleware(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """RED per route: put it first, so it sees the status the client finally gets."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        method = request.method if request.method in HTTP_METHODS else "OTHER"
        observe_http(method, route_template(request), status, time.perf_counter() - started)


# --- the /metrics listener -----------------------------------------------------------------

async def _metrics(_: web.Request) -> web.Response:
    return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def metrics_routes(app: web.Application) -> None:
    """Add GET /metrics to an aiohttp application."""
    app.router.add_get("/metrics", _metrics)


class MetricsListener:
    """A small plaintext HTTP server answering GET /metrics (anything else 404)."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        app = web.Application()
        metrics_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        # gRPC spells "every interface" [::]; aiohttp wants the bare address.
        site = web.TCPSite(self._runner, host.strip("[]"), port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


# --- the product sampler ----------------------------------------------------------------------

class ConsumerGroup(Protocol):
    """What the sampler reads of a libs.eventbus.EventConsumer."""

    @property
    def group(self) -> str: ...

    @property
    def topics(self) -> Sequence[str]: ...


OUTBOX_QUERY = ("SELECT count(*) AS backlog, "
                "coalesce(extract(epoch FROM now() - min(created_at)), 0) AS lag FROM outbox")


class ProductSampler:
    """Reads the gauges that cost a query: this schema's outbox, and for each consumer group
    its lag, pending entries and dead letters per topic. One pass per `interval_seconds`."""

    def __init__(self, *, schema: str, fetchrow: Callable[[str], Awaitable[Any]] | None,
                 redis: Any, consumers: Sequence[ConsumerGroup]) -> None:
        self._schema = schema
        self._fetchrow = fetchrow
        self._redis = redis
        self._consumers = list(consumers)

    async def sample(self) -> None:
        """One pass; a failure is counted and logged, the gauges keep their last values."""
        started = time.perf_counter()
        try:
            if self._fetchrow is not None:
                row = await self._fetchrow(OUTBOX_QUERY)
                OUTBOX_BACKLOG.labels(self._schema).set(int(row["backlog"]))
                OUTBOX_LAG.labels(self._schema).set(float(row["lag"]))
            for consumer in self._consumers:
                for topic in consumer.topics:
                    await self._sample_group(consumer.group, topic)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            SAMPLER_FAILURES.inc()
            log.warning("metrics_sample_failed", error=repr(exc),
                        seconds=round(time.perf_counter() - started, 3))

    async def _sample_group(self, group: str, topic: str) -> None:
        from libs.outbox import stream_name

        stream = stream_name(topic)
        lag = pending = 0
        for info in await self._groups(stream):
            if _text(info.get("name")) == group:
                pending = int(info.get("pending") or 0)
                lag = await self._lag(stream, info)
        CONSUMER_LAG.labels(group, topic).set(lag)
        CONSUMER_PENDING.labels(group, topic).set(pending)
        DEAD_LETTERS.labels(group, topic).set(await self._redis.xlen(f"{stream}:dead:{group}"))

    async def _lag(self, stream: str, info: dict[str, Any]) -> int:
        """Redis 7 reports a group's lag; before 7 (or when Redis cannot tell, after
        deletions) count the entries after the last one delivered, up to LAG_COUNT_CAP."""
        if info.get("lag") is not None:
            return int(info["lag"])
        last = _text(info.get("last-delivered-id") or "0-0")
        after = await self._redis.xrange(stream, min=f"({last}", max="+", count=LAG_COUNT_CAP)
        return len(after)

    async def _groups(self, stream: str) -> list[dict[str, Any]]:
        if not await self._redis.exists(stream):
            return []
        groups: list[dict[str, Any]] = await self._redis.xinfo_groups(stream)
        return groups


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

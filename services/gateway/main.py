"""Composition root of the gateway: HTTP APIs in front, gRPC clients behind, no durable state.

Besides HTTP it serves the standard gRPC health service, so Kubernetes probes every service the
same way; that health (liveness included) follows Redis (counters and nonces live there) and
drain. HTTP `/readyz` also requires every upstream service to report SERVING on its own gRPC
health, so a gateway cut off from them leaves a load balancer's rotation without a restart.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

from aiohttp import web

from libs.config import ConfigError, Settings
from libs.contract import allowed_callers
from libs.grpc_client import configure_channels
from libs.grpc_server import ServiceHost, install_stop_signals
from libs.logging import configure_logging, get_logger
from libs.metrics import http_metrics_middleware
from libs.ports import report_ports
from libs.redis import Redis, connect_redis, ping_redis
from libs.service import run_main
from libs.tls import load_identity
from libs.tracing import configure_tracing
from services.gateway.adapters.auth import TokenVerifier
from services.gateway.adapters.isv import IsvDirectory
from services.gateway.adapters.limits import AuditLog, RateLimiter, ReplayStore
from services.gateway.adapters.readiness import UpstreamHealth
from services.gateway.adapters.upstreams import Upstreams
from services.gateway.api import (
    app_keys,
    console,
    console_reach,
    marketplace,
    openplatform,
    privacy,
    storefront,
    webhooks,
)
from services.gateway.api.http_common import (
    access_log_middleware,
    error_middleware,
    input_middleware,
    request_id_middleware,
    tracing_middleware,
)
from services.gateway.api.http_server import HeadTimeoutSite
from services.gateway.api.routes import RouteTable
from services.gateway.settings import GatewaySettings, gateway_settings, load_gateway_settings

log = get_logger(__name__)
HOST = web.AppKey("host", ServiceHost)
ROUTES = web.AppKey("routes", RouteTable)
READINESS = web.AppKey("readiness", UpstreamHealth)
MAX_REQUEST_LINE = 256 * 1024


@dataclass(frozen=True)
class GatewayOptions:
    # An app's signing key and quota are read from identity at most this often.
    app_cache_seconds: float = 30.0
    # A verified ISV access token is trusted this long; a revocation takes effect within it.
    token_cache_seconds: float = 5.0
    # Slow-header defence: a request head not complete this long after its first byte is 408.
    request_head_seconds: float = 10.0
    # /readyz asks every upstream's gRPC health within this limit, at most once per cache span.
    readiness_timeout_seconds: float = 1.0
    readiness_cache_seconds: float = 2.0


def route_table() -> RouteTable:
    """The storefront and console APIs: registered from, and documented by, one table."""
    table = RouteTable("Brandclub storefront and merchant console API", "1.0.0")
    storefront.routes(table)
    console.routes(table)
    console_reach.routes(table)  # segments, dashboards, messaging
    marketplace.routes(table)  # marketplace facts, signed with a shared secret
    webhooks.routes(table)  # provider delivery receipts, signed per channel
    privacy.routes(table)  # access export and erasure reports (every service's part)
    return table


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(request.app[ROUTES].openapi())


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when Redis answers, not draining, and every upstream service reports SERVING on
    its gRPC health (checked within a time limit, cached briefly: see adapters/readiness)."""
    ready = await request.app[HOST].check_health()
    upstreams_ready, upstreams = await request.app[READINESS].ready()
    ready = ready and upstreams_ready
    return web.json_response({"status": "ready" if ready else "not ready",
                              "upstreams": upstreams}, status=200 if ready else 503)


def build_app(upstreams: Upstreams, host: ServiceHost, redis: Redis,
              options: GatewayOptions | None = None, *,
              marketplace_secret: bytes) -> web.Application:
    options = options or GatewayOptions()
    app = web.Application(middlewares=[http_metrics_middleware,
                                       tracing_middleware, request_id_middleware,
                                       access_log_middleware, error_middleware,
                                       input_middleware])
    verifier = TokenVerifier(upstreams)
    limiter = RateLimiter(redis)
    app[app_keys.UPSTREAMS] = upstreams
    app[app_keys.VERIFIER] = verifier
    app[app_keys.LIMITER] = limiter
    app[openplatform.OPEN_PLATFORM] = openplatform.OpenPlatform(
        upstreams=upstreams,
        directory=IsvDirectory(upstreams, app_cache_seconds=options.app_cache_seconds,
                               token_cache_seconds=options.token_cache_seconds),
        limiter=limiter, replays=ReplayStore(redis), audit=AuditLog(redis), verifier=verifier)
    app[HOST] = host
    app[marketplace.SECRET] = marketplace_secret
    app[READINESS] = UpstreamHealth(upstreams.processes(),
                                    timeout_seconds=options.readiness_timeout_seconds,
                                    cache_seconds=options.readiness_cache_seconds)
    table = route_table()
    app[ROUTES] = table
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/openapi.json", openapi_document)
    table.register(app)
    openplatform.add_routes(app)
    return app


@dataclass
class RunningGateway:
    host: ServiceHost
    runner: web.AppRunner
    upstreams: Upstreams
    redis: Redis
    http_port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def stop(self, grace_seconds: float, *, drain_seconds: float = 0.0) -> None:
        """Readiness off (/readyz 503, gRPC NOT_SERVING) while still serving every request for
        `drain_seconds`; then close the listeners, give requests in flight `grace_seconds`
        (the runner's shutdown_timeout), and close the clients."""
        await self.host.drain(grace_seconds, drain_seconds=drain_seconds)
        await self.runner.cleanup()
        await self.upstreams.close()
        await self.redis.aclose()


async def start_gateway(settings: Settings | GatewaySettings, *, http_port: int | None = None,
                        grpc_port: int | None = None, bind: str | None = None,
                        options: GatewayOptions | None = None) -> RunningGateway:
    gateway = settings if isinstance(settings, GatewaySettings) else gateway_settings(settings)
    settings = gateway.common
    redis = connect_redis(settings.redis_url)
    upstreams = Upstreams.open(settings)
    # The gateway's gRPC port serves health (and reflection) only: no service of its own.
    host = ServiceHost(service="gateway", service_names=[], connections=settings.connections,
                       probes=[lambda: ping_redis(redis)],
                       health_interval_seconds=settings.health_interval_seconds,
                       authorize=allowed_callers)
    # The official SDK sends every parameter in the URL: allow long request lines so that a
    # large 360buy_param_json reaches /routerjson and is judged there (JSON, HTTP 200).
    runner = web.AppRunner(build_app(upstreams, host, redis, options,
                                     marketplace_secret=gateway.marketplace_webhook_secret),
                           access_log=None,
                           shutdown_timeout=settings.shutdown_grace_seconds,
                           max_line_size=MAX_REQUEST_LINE, max_field_size=16 * 1024)
    await runner.setup()
    # `bind` (tests) puts both listeners on one host; else HTTP_LISTEN_HOST / GRPC_LISTEN_HOST.
    http_host = settings.http_listen_host if bind is None else bind
    # A request head must be complete within request_head_seconds of its first byte.
    site = HeadTimeoutSite(runner, http_host,
                           settings.http_port if http_port is None else http_port,
                           head_seconds=(options or GatewayOptions()).request_head_seconds)
    await site.start()
    port = site.port
    await host.start(settings.grpc_port if grpc_port is None else grpc_port,
                     settings.grpc_listen_host if bind is None else bind,
                     tls=load_identity(settings.tls_files),
                     health_port=settings.grpc_health_port if grpc_port is None else 0,
                     metrics_port=settings.metrics_port if grpc_port is None else 0)
    log.info("gateway_started", http_port=port, grpc_port=host.port)
    return RunningGateway(host, runner, upstreams, redis, port)


async def _serve() -> None:
    gateway = load_gateway_settings()
    settings = gateway.common
    configure_logging("gateway", settings.log_level)
    configure_tracing("gateway", settings.traces_exporter, settings.otlp)
    configure_channels(settings.connections)
    stop = asyncio.Event()
    install_stop_signals(stop)
    running = await start_gateway(gateway)
    report_ports(settings.port_file, grpc=running.host.port,
                 health=running.host.health_port, http=running.http_port,
                 metrics=running.host.metrics.port)
    await stop.wait()
    await running.stop(settings.shutdown_grace_seconds, drain_seconds=settings.drain_seconds)


def main() -> None:
    try:
        run_main(_serve())
    except ConfigError as exc:
        sys.exit(f"gateway: refusing to start: {exc}")

"""Composition root of the gateway: HTTP APIs in front, gRPC clients behind, no durable state.

Besides HTTP it serves the standard gRPC health service, so Kubernetes probes every service the
same way; readiness follows Redis (counters and nonces live there) and drain.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from libs.config import Settings, load_settings
from libs.grpc_server import ServiceHost, install_stop_signals
from libs.logging import configure_logging, get_logger
from libs.redis import Redis, connect_redis, ping_redis
from libs.tracing import configure_tracing
from services.gateway.adapters.auth import TokenVerifier
from services.gateway.adapters.upstreams import Upstreams
from services.gateway.api import storefront
from services.gateway.api.http_common import (
    access_log_middleware,
    error_middleware,
    tracing_middleware,
)

log = get_logger(__name__)
SERVICE_NAME = "brandclub.gateway.v1.Gateway"
HOST = web.AppKey("host", ServiceHost)


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ready = await request.app[HOST].check_health()
    return web.json_response({"status": "ready" if ready else "not ready"},
                             status=200 if ready else 503)


def build_app(upstreams: Upstreams, host: ServiceHost) -> web.Application:
    app = web.Application(middlewares=[tracing_middleware, access_log_middleware,
                                       error_middleware])
    app[storefront.UPSTREAMS] = upstreams
    app[storefront.VERIFIER] = TokenVerifier(upstreams)
    app[HOST] = host
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    storefront.add_routes(app)
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

    async def stop(self, grace_seconds: float) -> None:
        """Refuse new work (readiness off), finish requests in flight, then close clients."""
        await self.host.drain(grace_seconds)
        await self.runner.cleanup()
        await self.upstreams.close()
        await self.redis.aclose()


async def start_gateway(settings: Settings, *, http_port: int | None = None,
                        grpc_port: int | None = None,
                        bind: str = "0.0.0.0") -> RunningGateway:
    redis = connect_redis(settings.redis_url)
    upstreams = Upstreams.open(settings)
    host = ServiceHost(service="gateway", service_names=[SERVICE_NAME],
                       probes=[lambda: ping_redis(redis)],
                       health_interval_seconds=settings.health_interval_seconds)
    runner = web.AppRunner(build_app(upstreams, host), access_log=None,
                           shutdown_timeout=settings.drain_seconds)
    await runner.setup()
    site = web.TCPSite(runner, bind, settings.http_port if http_port is None else http_port)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await host.start(settings.grpc_port if grpc_port is None else grpc_port,
                     "[::]" if bind == "0.0.0.0" else bind)
    log.info("gateway_started", http_port=port, grpc_port=host.port)
    return RunningGateway(host, runner, upstreams, redis, port)


async def _serve() -> None:
    settings = load_settings("gateway")
    configure_logging("gateway", settings.log_level)
    configure_tracing("gateway", settings.traces_exporter, settings.otlp_endpoint)
    stop = asyncio.Event()
    install_stop_signals(stop)
    running = await start_gateway(settings)
    await stop.wait()
    await running.stop(settings.drain_seconds)


def main() -> None:
    asyncio.run(_serve())

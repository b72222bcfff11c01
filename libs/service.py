"""The composition root every service shares: open resources, serve, drain, close.

A service describes itself with a `compose` function that turns opened resources into a
`Composition` (servicers to register, background loops to run). `run_service` is the process
entry point; tests call `start_service` to run the same composition in-process on port 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import uvloop

from libs.authz import Policy
from libs.config import ConfigError, Settings, load_settings
from libs.contract import allowed_callers
from libs.db import Database
from libs.eventbus import EventConsumer
from libs.grpc_client import configure_channels
from libs.grpc_server import Probe, ServiceHost, install_stop_signals
from libs.jobs import Loop, Supervisor, background_loop
from libs.logging import configure_logging, get_logger
from libs.metrics import SAMPLE_INTERVAL_SECONDS, ProductSampler
from libs.paging import use_page_token_keys
from libs.ports import report_ports
from libs.redis import Redis, connect_redis, ping_redis
from libs.retention import prune_loop
from libs.tls import TlsIdentity, load_identity
from libs.tracing import configure_tracing

log = get_logger(__name__)


@dataclass
class Resources:
    settings: Settings
    db: Database
    redis: Redis
    # This process's mutual-TLS identity: pass it to libs.grpc_client.open_channel.
    tls: TlsIdentity
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)


@dataclass
class Composition:
    service_names: Sequence[str]
    register: Callable[[grpc.aio.Server], None]
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    extra_probes: Sequence[Probe] = ()
    on_close: Sequence[Callable[[], Awaitable[None]]] = ()


Compose = Callable[[Resources], Awaitable[Composition]]


@dataclass
class RunningService:
    host: ServiceHost
    resources: Resources
    composition: Composition
    tasks: list[asyncio.Task[None]]
    supervisor: Supervisor

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.host.port}"

    @property
    def health_address(self) -> str:
        """The plaintext port: health only (everything else answers UNAUTHENTICATED)."""
        return f"127.0.0.1:{self.host.health_port}"

    async def stop(self, grace_seconds: float = 0.5, *, drain_seconds: float = 0.0) -> None:
        """Drain (NOT_SERVING but still serving for `drain_seconds`, then calls in flight get
        `grace_seconds`), stop background loops, close resources in reverse order of opening."""
        await self.host.drain(grace_seconds, drain_seconds=drain_seconds)
        await cancel_all(self.tasks)
        for close in reversed(self.composition.on_close):
            await close()
        for channel in self.resources.channels.values():
            await channel.close()
        await self.resources.redis.aclose()
        await self.resources.db.close()


async def cancel_all(tasks: Sequence[asyncio.Task[None]], *, retry_seconds: float = 0.5) -> None:
    """Cancel background loops and wait for them to end.

    A cancellation can be swallowed inside a library (one that races with a timeout, or a
    client that catches it while tearing down a connection); cancelling again until the task
    is done makes shutdown certain instead of hanging the drain.
    """
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=retry_seconds)
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            task.result()


async def start_service(settings: Settings, compose: Compose, *, port: int | None = None,
                        host: str | None = None,
                        authorize: Policy = allowed_callers) -> RunningService:
    """`port`/`host` default to the settings (GRPC_PORT, GRPC_LISTEN_HOST); port 0 also puts
    the health port on a free port. `authorize` is the caller table (the proto annotations)."""
    # Certificates first: a process without its identity refuses to start, naming the setting.
    tls = load_identity(settings.tls_files)
    # Every replica signs and verifies page tokens with the same keys (libs/paging.py).
    use_page_token_keys(settings.page_token_keys)
    # min_size=0: the process starts (and reports NOT_SERVING) even while PostgreSQL is down.
    db = await Database.connect(settings.database_url, settings.schema, min_size=0)
    redis = connect_redis(settings.redis_url)
    resources = Resources(settings=settings, db=db, redis=redis, tls=tls)
    composition = await compose(resources)
    # Every background loop is supervised: restarted with backoff, NOT_SERVING while down.
    supervisor = Supervisor()
    service_host = ServiceHost(
        service=settings.service,
        service_names=composition.service_names,
        probes=[db.ping, lambda: ping_redis(redis), supervisor.probe,
                *composition.extra_probes],
        health_interval_seconds=settings.health_interval_seconds,
        authorize=authorize,
        connections=settings.connections,
    )
    supervisor.on_change = service_host.check_health
    composition.register(service_host.server)
    await service_host.start(
        settings.grpc_port if port is None else port,
        settings.grpc_listen_host if host is None else host, tls=tls,
        health_port=settings.grpc_health_port if port is None else 0,
        metrics_port=settings.metrics_port if port is None else 0)
    # Besides the service's own loops: pruning of idempotency keys and processed events, and
    # the sampler of the gauges that cost a query (libs/metrics.py).
    tasks = supervisor.start([*composition.background,
                              prune_loop(db, settings.dedup_retention_days),
                              product_sampler(resources, composition)])
    return RunningService(service_host, resources, composition, tasks, supervisor)


def product_sampler(resources: Resources, composition: Composition) -> Loop:
    """Outbox backlog and lag of this schema, and lag and dead letters of every consumer
    group among the composition's background loops."""
    consumers = [owner for loop in composition.background
                 if isinstance(owner := getattr(loop, "__self__", None), EventConsumer)]
    db = resources.db
    sampler = ProductSampler(schema=db.schema, fetchrow=db.fetchrow, redis=resources.redis,
                             consumers=consumers)
    return background_loop("metrics-sampler", sampler.sample,
                           interval_seconds=SAMPLE_INTERVAL_SECONDS)


async def _serve(service: str, compose: Compose) -> None:
    settings = load_settings(service)
    configure_logging(service, settings.log_level)
    configure_tracing(service, settings.traces_exporter, settings.otlp)
    configure_channels(settings.connections)
    stop = asyncio.Event()
    install_stop_signals(stop)
    running = await start_service(settings, compose)
    report_ports(settings.port_file, grpc=running.host.port, health=running.host.health_port,
                 metrics=running.host.metrics.port)
    await stop.wait()
    await running.stop(settings.shutdown_grace_seconds, drain_seconds=settings.drain_seconds)


def run_service(service: str, compose: Compose) -> None:
    """Process entry point for `python -m services.<service>`. A missing or invalid setting
    (a secret outside development mode, say) ends the process with a message naming it."""
    try:
        run_main(_serve(service, compose))
    except ConfigError as exc:
        sys.exit(f"{service}: refusing to start: {exc}")


def run_main(main: Coroutine[Any, Any, None]) -> None:
    """Run a process's main coroutine to the end on uvloop, the event loop every service
    process runs on: libuv's loop spends less CPU per socket event and per callback than
    asyncio's own (docs/performance.md, uvloop)."""
    uvloop.run(main)

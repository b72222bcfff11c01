"""SIGTERM under load, on real processes: not one request fails.

Clients keep calling while a service is told to stop. They stop sending only after they have
seen it report NOT_SERVING (gRPC health) or 503 (`/readyz`), and a little later still, as a
load balancer or a Kubernetes endpoint update would; the service must have answered every call,
those sent after the NOT_SERVING included, and then exit on its own.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from tools.stack import Seed, Stack

pytestmark = pytest.mark.e2e

DRAIN_SECONDS = 6.0
# How long clients keep sending after they saw NOT_SERVING: well inside the drain window,
# which leaves the watcher up to 4 s (a loaded machine) to see the NOT_SERVING.
ROUTING_DELAY_SECONDS = 0.5
SEE_NOT_SERVING_WITHIN = DRAIN_SECONDS - ROUTING_DELAY_SECONDS - 1.5
WORKERS = 8


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory, postgres_server_url: str,
                redis_server_url: str) -> AsyncIterator[Stack]:
    """All six services as processes, with a drain window long enough to observe."""
    import asyncpg

    from tests.conftest import database_url

    name = f"e2e_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_server_url)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    root = tmp_path_factory.mktemp("shutdown")
    running = Stack.on_free_ports(root, database_url=database_url(postgres_server_url, name),
                                  redis_url=redis_server_url.replace("/0", "/2"),
                                  log_dir=root / "logs",
                                  extra_env={"DRAIN_SECONDS": str(DRAIN_SECONDS),
                                             "SHUTDOWN_GRACE_SECONDS": "5",
                                             "LOG_LEVEL": "warning"})
    try:
        await running.start()
        yield running
    finally:
        running.stop()


class Load:
    """WORKERS concurrent callers until told to stop; counts outcomes."""

    def __init__(self, call: Callable[[], Awaitable[str]]) -> None:
        self.outcomes: Counter[str] = Counter()
        self.after_not_serving = 0
        self.not_serving = False
        self._stop = asyncio.Event()
        self._call = call
        self._tasks = [asyncio.create_task(self._work()) for _ in range(WORKERS)]

    async def _work(self) -> None:
        while not self._stop.is_set():
            outcome = await self._call()
            self.outcomes[outcome] += 1
            if self.not_serving and outcome == "ok":
                self.after_not_serving += 1

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def sigterm_under_load(stack: Stack, service: str, load: Load,
                             not_serving: Callable[[], Awaitable[bool]]) -> None:
    """Load for a moment, SIGTERM, watch for NOT_SERVING, keep sending a little longer (the
    routing delay), stop sending, and wait for the process to exit by itself."""
    deadline = time.monotonic() + 30
    while load.outcomes["ok"] < WORKERS:  # every worker is under way
        assert time.monotonic() < deadline and set(load.outcomes) <= {"ok"}, load.outcomes
        await asyncio.sleep(0.05)
    process = stack.processes[service]
    process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + SEE_NOT_SERVING_WITHIN
    while not await not_serving():
        assert time.monotonic() < deadline, f"{service} never reported NOT_SERVING / 503"
        await asyncio.sleep(0.05)
    load.not_serving = True
    await asyncio.sleep(ROUTING_DELAY_SECONDS)
    await load.stop()
    code = await asyncio.to_thread(process.wait, 30)
    assert code == 0, f"{service} exited with {code}"


async def test_gateway_sigterm_under_http_load_fails_no_request(stack: Stack) -> None:
    """HTTP callers of the gateway: /readyz turns 503 at SIGTERM, every request sent before
    and during the drain window is answered, and the gateway exits cleanly."""
    seed: Seed = await stack.seed("shutdown-shopper")
    card = f"{stack.gateway_url}/storefront/v1/brands/{seed.brand_id}/card"
    headers = {"Authorization": f"Bearer {seed.shopper_token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def call() -> str:
            try:
                async with session.get(card, headers=headers) as response:
                    await response.read()
                    return "ok" if response.status in (200, 404) else f"http {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                return type(exc).__name__

        async def not_ready() -> bool:
            try:
                async with session.get(f"{stack.gateway_url}/readyz") as response:
                    return response.status == 503
            except aiohttp.ClientError:
                return False

        load = Load(call)
        await sigterm_under_load(stack, "gateway", load, not_ready)
    assert set(load.outcomes) == {"ok"}, load.outcomes
    assert load.after_not_serving > 0, "nothing was served during the drain window"


async def test_service_sigterm_under_grpc_load_fails_no_call(stack: Stack) -> None:
    """gRPC callers of membership: health turns NOT_SERVING at SIGTERM, every call sent before
    and during the drain window is answered, and the process exits cleanly."""
    seed: Seed = await stack.seed("shutdown-shopper")
    async with stack.channel("membership") as channel:
        stub = membership_grpc.MembershipServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        request = membership_pb.GetBrandRequest(brand_id=seed.brand_id)

        async def call() -> str:
            try:
                await stub.GetBrand(request, timeout=10)
                return "ok"
            except grpc.aio.AioRpcError as error:
                return error.code().name

        async def not_serving() -> bool:
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            except grpc.aio.AioRpcError:
                return False
            return bool(reply.status == health_pb2.HealthCheckResponse.NOT_SERVING)

        load = Load(call)
        await sigterm_under_load(stack, "membership", load, not_serving)
    assert set(load.outcomes) == {"ok"}, load.outcomes
    assert load.after_not_serving > 0, "nothing was served during the drain window"

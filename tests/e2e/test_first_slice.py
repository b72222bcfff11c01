"""The first slice end to end: real processes for all six services, driven over HTTP."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from libs.ports import held_closed_port
from tools.stack import SERVICES, Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory, postgres_server_url: str,
                redis_server_url: str) -> AsyncIterator[Stack]:
    """All six services as processes on free ports, sharing the session's PostgreSQL/Redis."""
    import asyncpg

    from tests.conftest import database_url

    name = f"e2e_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_server_url)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    root = tmp_path_factory.mktemp("stack")
    running = Stack.on_free_ports(root, database_url=database_url(postgres_server_url, name),
                                  redis_url=redis_server_url.replace("/0", "/1"),
                                  log_dir=root / "logs",
                                  extra_env={
                                      "DRAIN_SECONDS": "2", "LOG_LEVEL": "info",
                                      # Telemetry fails open: spans go to a collector that
                                      # is not there, and nothing may notice.
                                      "OTEL_TRACES_EXPORTER": "otlp",
                                      "OTEL_EXPORTER_OTLP_ENDPOINT":
                                          f"http://127.0.0.1:{held_closed_port()}",
                                  })
    try:
        await running.start()
        yield running
    finally:
        running.stop()


def log_lines(log_dir: Path, service: str) -> list[dict[str, object]]:
    lines = []
    for raw in (log_dir / f"{service}.log").read_text().splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


async def test_follow_and_card_through_the_gateway_share_one_trace(stack: Stack) -> None:
    """Follow and card read over HTTP reach membership over gRPC under the caller's trace."""
    seed = await stack.seed("e2e-shopper")
    trace_id = secrets.token_hex(16)
    headers = {"Authorization": f"Bearer {seed.shopper_token}",
               "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    async with aiohttp.ClientSession(base_url=stack.gateway_url) as http:
        async with http.post(f"/storefront/v1/shops/{seed.shop_id}/follow",
                             headers=headers) as response:
            assert response.status == 200, await response.text()
            assert response.headers["X-Trace-Id"] == trace_id
        async with http.get(f"/storefront/v1/brands/{seed.brand_id}/card",
                            headers=headers) as response:
            assert response.status == 200
            card = (await response.json())["card"]
        assert card["status"] == "LV0" and card["level"] == 0
        assert card["brand"]["name"] == "Demo Brand"
        async with http.get("/healthz") as response:
            assert response.status == 200
    assert stack.log_dir is not None
    gateway = [line for line in log_lines(stack.log_dir, "gateway")
               if line.get("trace_id") == trace_id]
    membership = [line for line in log_lines(stack.log_dir, "membership")
                  if line.get("trace_id") == trace_id]
    assert {line["event"] for line in gateway} >= {"http"}
    assert {line.get("rpc_method") for line in membership} >= {
        "/brandclub.membership.v1.MembershipService/FollowShop",
        "/brandclub.membership.v1.MembershipService/GetMemberCard",
    }


async def test_sigterm_stops_every_service_cleanly(stack: Stack) -> None:
    """SIGTERM drains each service and it exits with status 0."""
    stack.stop()
    codes = {name: stack.processes[name].returncode for name in SERVICES}
    assert codes == dict.fromkeys(SERVICES, 0)
    assert stack.log_dir is not None
    for service in SERVICES:
        events = {line["event"] for line in log_lines(stack.log_dir, service)}
        assert {"server_draining", "server_stopped"} <= events, service

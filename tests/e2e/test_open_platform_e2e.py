"""The open platform end to end on real processes: an ISV set up with the operator CLI calls
the gateway with the official SDK and through the OAuth endpoints."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jd
import pytest
from jd.api.base import RestApi

from tools.stack import ROOT, Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def isv_stack(tmp_path_factory: pytest.TempPathFactory, postgres_server_url: str,
                    redis_server_url: str) -> AsyncIterator[Stack]:
    """All six services as processes on free ports, on their own database and Redis db."""
    import asyncpg

    from tests.conftest import database_url

    name = f"e2e_isv_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_server_url)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    root = tmp_path_factory.mktemp("isv-stack")
    running = Stack.on_free_ports(root, database_url=database_url(postgres_server_url, name),
                                  redis_url=redis_server_url.replace("/0", "/2"),
                                  log_dir=root / "logs",
                                  extra_env={"DRAIN_SECONDS": "2", "LOG_LEVEL": "info"})
    try:
        await running.start()
        yield running
    finally:
        running.stop()


async def admin(stack: Stack, *args: str) -> dict[str, Any]:
    """Runs `python -m tools.admin ...` the way `./dev admin` does, and parses its JSON."""
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tools.admin", *args], cwd=ROOT,
                              env=stack.operator_env(), capture_output=True, text=True,
                              timeout=60, check=False)

    done = await asyncio.to_thread(run)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


class PointsGrant(RestApi):  # type: ignore[misc]
    def __init__(self, domain: str, port: int) -> None:
        RestApi.__init__(self, domain, port)
        self.account_id: str | None = None
        self.points: int | None = None
        self.businessId: str | None = None

    def getapiname(self) -> str:
        return "brandclub.points.grant"


async def test_isv_setup_by_cli_then_sdk_grant_and_oauth_refresh(isv_stack: Stack) -> None:
    """The CLI creates brand, shop, merchant and app and authorises it; the SDK grants points
    through the gateway; the merchant's console sees the authorisation; a refresh works."""
    brand = await admin(isv_stack, "create-brand", "--name", "ISV Brand")
    shop = await admin(isv_stack, "create-shop", "--brand-id", brand["brand_id"],
                       "--name", "ISV Store")
    merchant = await admin(isv_stack, "create-merchant", "--brand-id", brand["brand_id"],
                           "--login", "isv-ops")
    app = await admin(isv_stack, "create-app", "--name", "Loyalty Pro", "--redirect-uri",
                      "https://isv.example/cb", "--scopes", "member.read,points.read,points.write")
    assert len(app["app_key"]) == 32 and app["app_secret"]
    grant = await admin(isv_stack, "authorize", "--app-key", app["app_key"], "--shop-id",
                        shop["shop_id"])
    assert grant["expires_in"] == 24 * 3600
    seed = await isv_stack.seed("isv-e2e-shopper")
    async with aiohttp.ClientSession(base_url=isv_stack.gateway_url) as http:
        async with http.post(f"/storefront/v1/shops/{shop['shop_id']}/follow",
                             headers={"Authorization": f"Bearer {seed.shopper_token}"}
                             ) as response:
            assert response.status == 200, await response.text()

        def sdk_grant() -> Any:
            url = urlsplit(isv_stack.gateway_url)
            assert url.hostname is not None and url.port is not None
            request = PointsGrant(url.hostname, url.port)
            request.set_app_info(jd.appinfo(app["app_key"], app["app_secret"]))
            request.account_id, request.points, request.businessId = (
                seed.account_id, 25, "e2e-order-1")
            return request.getResponse(access_token=grant["access_token"])

        answer = await asyncio.to_thread(sdk_grant)
        granted = answer["brandclub_points_grant_responce"]["grant_result"]
        assert granted["success"] is True and granted["data"]["available_points"] == 25
        async with http.get("/console/v1/isv-authorizations", headers={
                "Authorization": f"Bearer {merchant['token']}"}) as response:
            assert response.status == 200
            listed = (await response.json())["authorizations"]
        assert [a["app_key"] for a in listed] == [app["app_key"]]
        async with http.post("/oauth2/refresh_token", data={
                "app_key": app["app_key"], "app_secret": app["app_secret"],
                "grant_type": "refresh_token", "refresh_token": grant["refresh_token"]}
                ) as response:
            assert response.status == 200
    audit = await admin(isv_stack, "audit", "--app-key", app["app_key"])
    assert audit["calls"][0]["method"] == "brandclub.points.grant"
    assert audit["calls"][0]["outcome"] == "ok"

"""Gateway hot paths over HTTP, beside a bare aiohttp server measured in the same run:
the member card read (storefront) and a signed open-platform points grant."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone

import aiohttp
from aiohttp import web

from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from brandclub.identity.v1 import isv_service_pb2 as isv_pb
from brandclub.identity.v1 import isv_service_pb2_grpc as isv_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from libs.ports import report_ports, wait_for_ports
from tools.bench_core import SEED_BATCH, SEED_TIMEOUT, BenchContext, Result
from tools.bench_cpu import one
from tools.stack import ROOT

BEIJING = timezone(timedelta(hours=8))


async def _bare_server(port: int, port_file: str) -> None:
    async def hello(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    report_ports(port_file, http=site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    await asyncio.Event().wait()


async def _wait_http(url: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {within} s")
            await asyncio.sleep(0.1)


def _sign(secret: str, params: dict[str, str]) -> str:
    text = secret + "".join(f"{k}{params[k]}" for k in sorted(params)) + secret
    return hashlib.md5(text.encode()).hexdigest().upper()


async def scenarios(ctx: BenchContext) -> list[Result]:
    results: list[Result] = []
    port_file = ctx.stack.data_dir / "run" / "bench-bare.ports"
    bare = subprocess.Popen([sys.executable, "-m", "tools.bench_scenarios.gateway",
                             "--serve", "0", "--port-file", str(port_file)], cwd=ROOT)
    connector = aiohttp.TCPConnector(limit=ctx.options.concurrency)
    try:
        port = (await wait_for_ports(port_file, bare, within_seconds=15))["http"]
        await _wait_http(f"http://127.0.0.1:{port}/hello")
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}",
                                         connector=connector) as http:
            async def hello(_: int) -> None:
                async with http.get("/hello") as response:
                    await response.read()
                    assert response.status == 200

            ctx.cpu.add("bare-http", one(bare.pid))
            results += await ctx.measure("baseline/aiohttp-hello", hello)
    finally:
        ctx.cpu.remove("bare-http")
        bare.terminate()
        bare.wait(10)

    stack = ctx.stack
    members = min(ctx.options.members, 1000)
    seed = await stack.seed("bench-gateway-shopper")
    async with stack.channel("identity") as identity_channel, \
            stack.channel("membership") as membership_channel:
        identity = identity_grpc.IdentityServiceStub(identity_channel)
        isv = isv_grpc.IsvServiceStub(identity_channel)
        membership = membership_grpc.MembershipServiceStub(membership_channel)
        tokens: list[str] = []
        accounts: list[str] = []
        for start in range(0, members, SEED_BATCH):
            batch = range(start, min(start + SEED_BATCH, members))
            ensured = await asyncio.gather(*(identity.EnsureAccount(
                identity_pb.EnsureAccountRequest(request_id=f"bench:gw:acct:{i}",
                                                 marketplace_account_id=f"bench-gw-{i}"),
                timeout=SEED_TIMEOUT) for i in batch))
            accounts += [reply.account.account_id for reply in ensured]
            await asyncio.gather(*(membership.FollowShop(membership_pb.FollowShopRequest(
                request_id=f"bench:gw:follow:{reply.account.account_id}", shop_id=seed.shop_id,
                account_id=reply.account.account_id, channel="bench"), timeout=SEED_TIMEOUT)
                for reply in ensured))
            issued = await asyncio.gather(*(identity.IssueShopperToken(
                identity_pb.IssueShopperTokenRequest(account_id=reply.account.account_id),
                timeout=SEED_TIMEOUT) for reply in ensured))
            tokens += [reply.token for reply in issued]
        app = await isv.CreateApp(isv_pb.CreateAppRequest(
            request_id="bench:gw:app", name="bench", status=isv_pb.APP_STATUS_PRODUCTION,
            scopes=["member.read", "points.write"], redirect_uri="https://bench.example/cb",
            calls_per_minute=1_000_000, calls_per_day=100_000_000), timeout=SEED_TIMEOUT)
        code = await isv.AuthorizeApp(isv_pb.AuthorizeAppRequest(
            app_key=app.app.app_key, brand_id=seed.brand_id, shop_id=seed.shop_id,
            granted_by="bench"), timeout=SEED_TIMEOUT)
        access_token = (await isv.ExchangeCode(isv_pb.ExchangeCodeRequest(
            app_key=app.app.app_key, app_secret=app.app_secret, code=code.code),
            timeout=SEED_TIMEOUT)).grant.access_token

    connector = aiohttp.TCPConnector(limit=ctx.options.concurrency)
    async with aiohttp.ClientSession(stack.gateway_url, connector=connector) as http:
        card_counter = itertools.count()

        async def read_card(_: int) -> None:
            token = tokens[next(card_counter) % len(tokens)]
            async with http.get(f"/storefront/v1/brands/{seed.brand_id}/card",
                                headers={"Authorization": f"Bearer {token}"}) as response:
                await response.read()
                assert response.status == 200

        # Steady state of a storefront: every shopper's token and card has been seen once.
        for _ in range(0, len(tokens), ctx.options.concurrency):
            await asyncio.gather(*(read_card(0) for _ in range(ctx.options.concurrency)))
        results += await ctx.measure("gateway/member-card-http", read_card)
        grant_counter = itertools.count()
        run_id = datetime.now(UTC).strftime("%H%M%S")

        async def grant_points(_: int) -> None:
            n = next(grant_counter)
            params = {
                "app_key": app.app.app_key, "method": "brandclub.points.grant", "v": "2.0",
                "timestamp": datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S.000%z"),
                "access_token": access_token,
                "360buy_param_json": json.dumps({"account_id": accounts[n % len(accounts)],
                                                 "points": 1,
                                                 "businessId": f"bench-{run_id}-{n}"}),
            }
            params["sign"] = _sign(app.app_secret, params)
            async with http.post("/routerjson", params=params) as response:
                body = await response.json()
                result = body["brandclub_points_grant_responce"]["grant_result"]
                assert result["success"], result

        results += await ctx.measure("gateway/openplatform-grant", grant_points)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="bare aiohttp server for the bench baseline")
    parser.add_argument("--serve", type=int, required=True, help="port; 0: any free port")
    parser.add_argument("--port-file", default="", help="report the bound port here (libs/ports)")
    args = parser.parse_args()
    asyncio.run(_bare_server(args.serve, args.port_file))


if __name__ == "__main__":
    main()

"""`./dev up`: the whole suite on this machine until Ctrl-C.

Embedded PostgreSQL and Redis keep their data under .data/ (DATA_DIR) between runs;
DATABASE_URL and REDIS_URL point the suite at external servers instead.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from libs.config import SERVICE_PORTS
from libs.embedded import env_or_none
from tools.stack import ROOT, Stack


def banner(stack: Stack, seed_brand: str, seed_shop: str, token: str) -> str:
    lines = [
        "Brandclub is up.",
        f"  storefront API   {stack.gateway_url}/storefront/v1/brands/{seed_brand}/card",
        f"  health           {stack.gateway_url}/healthz",
        *(f"  {name:<16} grpc://{stack.address(name)}" for name in stack.ports),
        f"  database         {stack.database_url}",
        f"  redis            {stack.redis_url}",
        "Demo seed:",
        f"  brand {seed_brand}  shop {seed_shop}",
        f"  shopper token    {token}",
        "Try:",
        f"  curl -X POST -H 'Authorization: Bearer {token}' "
        f"{stack.gateway_url}/storefront/v1/shops/{seed_shop}/follow",
        f"  curl -H 'Authorization: Bearer {token}' "
        f"{stack.gateway_url}/storefront/v1/brands/{seed_brand}/card",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)


async def run() -> None:
    data_dir = Path(os.environ.get("DATA_DIR", ROOT / ".data"))
    # PORT_OFFSET moves every port at once, to run a second suite beside a first one.
    offset = int(os.environ.get("PORT_OFFSET", "0"))
    stack = Stack(data_dir, database_url=env_or_none("DATABASE_URL"),
                  redis_url=env_or_none("REDIS_URL"),
                  ports={name: port + offset for name, port in SERVICE_PORTS.items()},
                  http_port=int(os.environ.get("HTTP_PORT", "8080")) + offset)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stack.start()
        seed = await stack.seed()
        print(banner(stack, seed.brand_id, seed.shop_id, seed.shopper_token), flush=True)
        waiter = asyncio.create_task(stop.wait())
        while not stop.is_set():
            crashed = [name for name, p in stack.processes.items() if p.poll() is not None]
            if crashed:
                print(f"dev: {', '.join(crashed)} exited; stopping the suite", flush=True)
                break
            await asyncio.wait([waiter], timeout=1.0)
        waiter.cancel()
    finally:
        print("dev: stopping", flush=True)
        stack.stop()


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()

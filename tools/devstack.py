"""`./dev up`: the whole suite on this machine until Ctrl-C.

A service that exits is restarted with backoff while the others keep running (Restarter).

Embedded PostgreSQL and Redis keep their data under .data/ (DATA_DIR) between runs;
DATABASE_URL and REDIS_URL point the suite at external servers instead.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from libs.config import SERVICE_PORTS, port_offset
from libs.db import DatabaseUnreachable
from libs.embedded import env_or_none
from libs.migrations import MigrationError
from tools.stack import ROOT, RedisUnreachable, ServiceDidNotStart, Stack


def service_ports(offset: int) -> dict[str, int]:
    """The gRPC port of every service under `./dev up` with this PORT_OFFSET."""
    return {name: port + offset for name, port in SERVICE_PORTS.items()}


class Restarter:
    """Keeps every service of a local stack running: one that exits (a crash, kill -9) is
    started again after a backoff, while the others keep serving.

    The backoff starts at `initial` seconds, doubles with each exit up to `maximum`, and
    returns to `initial` once the service has stayed up for `stable` seconds, so a service
    that crashes at start-up does not spin, and one that crashed once comes back quickly.
    """

    def __init__(self, stack: Stack, *, initial: float = 1.0, maximum: float = 30.0,
                 stable: float = 60.0) -> None:
        self.stack = stack
        self.initial = initial
        self.maximum = maximum
        self.stable = stable
        self.restarts: dict[str, int] = {}
        self._backoff: dict[str, float] = {}
        self._due: dict[str, float] = {}
        self._launched: dict[str, float] = {}

    def check(self, now: float) -> list[str]:
        """Look at every process once; relaunch those whose backoff is over. Returns what
        happened, one line per event, for the terminal."""
        events: list[str] = []
        for name, process in list(self.stack.processes.items()):
            if process.poll() is None:
                if now - self._launched.get(name, now) >= self.stable:
                    self._backoff.pop(name, None)
                continue
            due = self._due.get(name)
            if due is None:
                delay = self._backoff.get(name, self.initial)
                self._backoff[name] = min(delay * 2, self.maximum)
                self._due[name] = now + delay
                events.append(f"{name} exited with code {process.returncode}; "
                              f"restarting it in {delay:g} s (the rest keeps running)")
            elif now >= due:
                del self._due[name]
                self.stack.launch(name)
                self._launched[name] = now
                self.restarts[name] = self.restarts.get(name, 0) + 1
                events.append(f"{name} restarted (pid {self.stack.processes[name].pid})")
        return events


def say(step: str) -> None:
    """One start-up step on the terminal, as it begins."""
    print(f"dev: {step}", file=sys.stderr, flush=True)


def banner(stack: Stack, seed_brand: str, seed_shop: str, token: str) -> str:
    lines = [
        "Brandclub is up.",
        f"  storefront API   {stack.gateway_url}/storefront/v1/brands/{seed_brand}/card",
        f"  health           {stack.gateway_url}/healthz",
        *(f"  {name:<16} grpc://{stack.address(name)}" for name in stack.ports),
        f"  mutual TLS       certificates in {stack.pki_dir} (operator/: for grpcurl, "
        "see docs/deploy.md)",
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
    offset = port_offset(os.environ)
    stack = Stack(data_dir, database_url=env_or_none("DATABASE_URL"),
                  redis_url=env_or_none("REDIS_URL"), ports=service_ports(offset),
                  http_port=int(os.environ.get("HTTP_PORT", "8080")) + offset, progress=say)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stack.start()
        seed = await stack.seed()
        print(banner(stack, seed.brand_id, seed.shop_id, seed.shopper_token), flush=True)
        waiter = asyncio.create_task(stop.wait())
        restarter = Restarter(stack)
        while not stop.is_set():
            for message in restarter.check(time.monotonic()):
                print(f"dev: {message}", flush=True)
            await asyncio.wait([waiter], timeout=0.25)
        waiter.cancel()
    finally:
        print("dev: stopping", flush=True)
        stack.stop()


def main() -> None:
    # What an operator can fix (a database that does not answer, a migration that fails) is
    # one line naming it, not a traceback through the driver.
    try:
        asyncio.run(run())
    except (DatabaseUnreachable, RedisUnreachable, MigrationError, ServiceDidNotStart) as exc:
        raise SystemExit(f"dev: cannot start: {exc}") from None


if __name__ == "__main__":
    main()

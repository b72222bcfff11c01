"""`./dev bench`: throughput and latency of named scenarios beside same-run baselines.

The machines are small and noisy, so absolute numbers mean little; each scenario is reported
with its ratio to baselines measured in the same run on the same machine:
  - baseline/grpc-echo: a bare grpc.aio unary echo server in its own process;
  - baseline/asyncpg-update: a bare asyncpg single-row UPDATE through a pool.
Prints a table and writes JSON (bench-results/ by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc

from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from libs.embedded import free_port
from tools.bench_echo import METHOD as ECHO_METHOD
from tools.stack import ROOT, Stack

Operation = Callable[[int], Awaitable[None]]


@dataclass
class Result:
    name: str
    concurrency: int
    operations: int
    errors: int
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float
    vs_grpc_echo: float | None = None
    vs_asyncpg_update: float | None = None


async def measure(name: str, operation: Operation, *, concurrency: int, seconds: float,
                  warmup: float) -> Result:
    """Run `concurrency` workers in a closed loop; latencies after the warm-up count."""
    latencies: list[float] = []
    errors = 0
    recording = False
    stop_at = time.monotonic() + warmup + seconds

    async def worker(index: int) -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                await operation(index)
            except Exception:
                errors += 1
                continue
            if recording:
                latencies.append(time.perf_counter() - started)

    async def start_recording() -> float:
        nonlocal recording
        await asyncio.sleep(warmup)
        recording = True
        return time.monotonic()

    recorder = asyncio.create_task(start_recording())
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.monotonic() - await recorder
    latencies.sort()
    count = len(latencies)
    return Result(
        name=name, concurrency=concurrency, operations=count, errors=errors,
        seconds=round(elapsed, 3), throughput=round(count / elapsed, 1) if elapsed else 0.0,
        p50_ms=round(statistics.median(latencies) * 1000, 3) if count else 0.0,
        p99_ms=round(latencies[min(count - 1, int(count * 0.99))] * 1000, 3) if count else 0.0,
    )


async def bench_grpc_echo(concurrency: int, seconds: float, warmup: float) -> Result:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tools.bench_echo", "--port", str(port)],
                              cwd=ROOT)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await asyncio.wait_for(channel.channel_ready(), 15)
            echo = channel.unary_unary(ECHO_METHOD)
            payload = b"x" * 64

            async def call(_: int) -> None:
                await echo(payload, timeout=5)

            return await measure("baseline/grpc-echo", call, concurrency=concurrency,
                                 seconds=seconds, warmup=warmup)
    finally:
        server.terminate()
        server.wait(10)


async def bench_asyncpg_update(database_url: str, concurrency: int, seconds: float,
                               warmup: float) -> Result:
    pool = await asyncpg.create_pool(database_url, min_size=4, max_size=20)
    try:
        await pool.execute("CREATE TABLE IF NOT EXISTS public.bench_counter "
                           "(id int PRIMARY KEY, n bigint NOT NULL)")
        await pool.execute("INSERT INTO public.bench_counter SELECT g, 0 "
                           "FROM generate_series(0, $1) g ON CONFLICT DO NOTHING", concurrency)

        async def update(index: int) -> None:
            await pool.execute("UPDATE public.bench_counter SET n = n + 1 WHERE id = $1", index)

        return await measure("baseline/asyncpg-update", update, concurrency=concurrency,
                             seconds=seconds, warmup=warmup)
    finally:
        await pool.close()


async def bench_member_card(stack: Stack, concurrency: int, seconds: float,
                            warmup: float, members: int) -> Result:
    """GetMemberCard over gRPC against the membership process, over many members."""
    async with grpc.aio.insecure_channel(stack.address("membership")) as channel:
        membership = membership_grpc.MembershipServiceStub(channel)
        seed = await stack.seed("bench-shopper")
        accounts = [f"acc_bench_{i}" for i in range(members)]
        for start in range(0, members, 200):
            await asyncio.gather(*(membership.FollowShop(membership_pb.FollowShopRequest(
                request_id=f"bench:follow:{account}", shop_id=seed.shop_id, account_id=account,
                channel="bench"), timeout=30) for account in accounts[start:start + 200]))
        counter = 0

        async def read_card(_: int) -> None:
            nonlocal counter
            counter += 1
            await membership.GetMemberCard(membership_pb.GetMemberCardRequest(
                brand_id=seed.brand_id, account_id=accounts[counter % members]), timeout=5)

        return await measure("membership/get-member-card", read_card, concurrency=concurrency,
                             seconds=seconds, warmup=warmup)


def with_ratios(results: list[Result]) -> list[Result]:
    by_name = {r.name: r for r in results}
    echo, update = by_name.get("baseline/grpc-echo"), by_name.get("baseline/asyncpg-update")
    for result in results:
        if echo and echo.throughput:
            result.vs_grpc_echo = round(result.throughput / echo.throughput, 3)
        if update and update.throughput:
            result.vs_asyncpg_update = round(result.throughput / update.throughput, 3)
    return results


def table(results: list[Result]) -> str:
    header = (f"{'scenario':<30} {'conc':>5} {'ops':>8} {'err':>5} {'ops/s':>10} "
              f"{'p50 ms':>9} {'p99 ms':>9} {'x echo':>7} {'x pg-upd':>8}")
    rows = [header, "-" * len(header)]
    for r in results:
        rows.append(f"{r.name:<30} {r.concurrency:>5} {r.operations:>8} {r.errors:>5} "
                    f"{r.throughput:>10.1f} {r.p50_ms:>9.3f} {r.p99_ms:>9.3f} "
                    f"{r.vs_grpc_echo or 0:>7.3f} {r.vs_asyncpg_update or 0:>8.3f}")
    return "\n".join(rows)


async def run(options: argparse.Namespace) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="brandclub-bench-") as scratch:
        stack = Stack.on_free_ports(Path(scratch), log_dir=Path(scratch) / "logs",
                                    extra_env={"LOG_LEVEL": "warning"})
        try:
            await stack.start()
            assert stack.database_url is not None
            args = (options.concurrency, options.seconds, options.warmup)
            results = [
                await bench_grpc_echo(*args),
                await bench_asyncpg_update(stack.database_url, *args),
                await bench_member_card(stack, *args, members=options.members),
            ]
        finally:
            stack.stop()
    return with_ratios(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per scenario")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    options = parser.parse_args()
    results = asyncio.run(run(options))
    print(table(results))
    path = options.json or ROOT / "bench-results" / (
        datetime.now(UTC).strftime("bench-%Y%m%dT%H%M%SZ.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": {"cpus": _cpus()},
                                "results": [asdict(r) for r in results]}, indent=2))
    print(f"bench: wrote {path}")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()

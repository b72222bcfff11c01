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
import importlib
import json
import pkgutil
import subprocess
import sys
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import asyncpg

from libs.ports import wait_for_ports
from libs.tls import TlsFiles, load_identity, secure_channel
from tools import bench_scenarios
from tools.bench_core import BenchContext, Result, measure
from tools.bench_echo import METHOD as ECHO_METHOD
from tools.stack import ROOT, Stack


async def bench_grpc_echo(pki: Path, concurrency: int, seconds: float,
                          warmup: float) -> Result:
    """The echo server over mutual TLS, as the services are called (server: a gateway
    certificate, client: operator)."""
    port_file = pki.parent / "run" / "bench-echo.ports"
    server = subprocess.Popen([sys.executable, "-m", "tools.bench_echo", "--port", "0",
                               "--port-file", str(port_file), "--tls-dir", str(pki / "gateway")],
                              cwd=ROOT)
    try:
        port = (await wait_for_ports(port_file, server, within_seconds=15))["grpc"]
        identity = load_identity(TlsFiles.in_dir(pki / "operator"))
        async with secure_channel(f"127.0.0.1:{port}", identity, peer="gateway") as channel:
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


def scenario_modules(only: str | None) -> list[ModuleType]:
    names = sorted(info.name for info in pkgutil.iter_modules(bench_scenarios.__path__))
    return [importlib.import_module(f"tools.bench_scenarios.{name}") for name in names
            if only is None or name == only]


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
                await bench_grpc_echo(stack.pki_dir, *args),
                await bench_asyncpg_update(stack.database_url, *args),
            ]
            context = BenchContext(stack, options)
            for module in scenario_modules(options.only):
                results += await module.scenarios(context)
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
    parser.add_argument("--only", default=None, help="run one scenario module (and baselines)")
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

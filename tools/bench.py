"""`./dev bench`: throughput and latency of named scenarios beside same-run baselines.

The machines are small and noisy, so absolute numbers mean little; each scenario is reported
with its ratio to baselines measured in the same run on the same machine:
  - baseline/grpc-echo: a bare grpc.aio unary echo server in its own process;
  - baseline/asyncpg-update: a bare asyncpg single-row UPDATE through a pool.
Beside them, the CPU milliseconds each process spent per operation in the timed window
(tools/bench_cpu.py): the figure that survives a noisy machine. Every closed-loop scenario
runs once per log level of `--log-levels` (default info, as production runs, then warning).
Prints two tables and writes JSON (bench-results/ by default).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import pkgutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import asyncpg
import redis.asyncio as aioredis

from libs.ports import wait_for_ports
from libs.tls import TlsFiles, load_identity, secure_channel
from tools import bench_scenarios
from tools.bench_core import BenchContext, Result, measure
from tools.bench_cpu import PROC, CpuMeter, one, with_children
from tools.bench_echo import METHOD as ECHO_METHOD
from tools.bench_echo import Message as EchoMessage
from tools.stack import ROOT, Stack


async def bench_grpc_echo(pki: Path, concurrency: int, seconds: float,
                          warmup: float, cpu: CpuMeter) -> Result:
    """The echo server over mutual TLS, as the services are called (server: a gateway
    certificate, client: operator)."""
    port_file = pki.parent / "run" / "bench-echo.ports"
    server = subprocess.Popen([sys.executable, "-m", "tools.bench_echo", "--port", "0",
                               "--port-file", str(port_file), "--tls-dir", str(pki / "gateway")],
                              cwd=ROOT)
    cpu.add("echo", one(server.pid))
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
                                 seconds=seconds, warmup=warmup, cpu=cpu)
    finally:
        cpu.remove("echo")
        server.terminate()
        server.wait(10)


async def bench_framework_echo(pki: Path, options: argparse.Namespace,
                               cpu: CpuMeter) -> list[Result]:
    """The same echo as a method of a ServiceHost (tools/bench_echo.py --framework), once per
    log level: its server's CPU per call beside the bare echo's is the framework's tax."""
    port_file = pki.parent / "run" / "bench-framework-echo.ports"
    server = subprocess.Popen([sys.executable, "-m", "tools.bench_echo", "--framework",
                               "--port", "0", "--port-file", str(port_file),
                               "--tls-dir", str(pki / "gateway"),
                               "--log-level", options.log_levels[0]],
                              cwd=ROOT, stdout=subprocess.DEVNULL)
    cpu.add("echo", one(server.pid))
    results = []
    try:
        port = (await wait_for_ports(port_file, server, within_seconds=15))["grpc"]
        identity = load_identity(TlsFiles.in_dir(pki / "operator"))
        async with secure_channel(f"127.0.0.1:{port}", identity, peer="gateway") as channel:
            await asyncio.wait_for(channel.channel_ready(), 15)
            echo = channel.unary_unary(ECHO_METHOD)
            payload = EchoMessage(service="x" * 60).SerializeToString()

            async def call(_: int) -> None:
                await echo(payload, timeout=5)

            for level in options.log_levels:
                server.send_signal(LOG_LEVEL_SIGNALS[level])
                await asyncio.sleep(0.2)
                result = await measure("baseline/framework-echo", call,
                                       concurrency=options.concurrency,
                                       seconds=options.seconds, warmup=options.warmup, cpu=cpu)
                result.log_level = level
                results.append(result)
            return results
    finally:
        cpu.remove("echo")
        server.terminate()
        server.wait(10)


async def bench_asyncpg_update(database_url: str, concurrency: int, seconds: float,
                               warmup: float, cpu: CpuMeter) -> Result:
    pool = await asyncpg.create_pool(database_url, min_size=4, max_size=20)
    try:
        await pool.execute("CREATE TABLE IF NOT EXISTS public.bench_counter "
                           "(id int PRIMARY KEY, n bigint NOT NULL)")
        await pool.execute("INSERT INTO public.bench_counter SELECT g, 0 "
                           "FROM generate_series(0, $1) g ON CONFLICT DO NOTHING", concurrency)

        async def update(index: int) -> None:
            await pool.execute("UPDATE public.bench_counter SET n = n + 1 WHERE id = $1", index)

        return await measure("baseline/asyncpg-update", update, concurrency=concurrency,
                             seconds=seconds, warmup=warmup, cpu=cpu)
    finally:
        await pool.close()


def scenario_modules(only: str | None) -> list[ModuleType]:
    """Every module of tools/bench_scenarios, or those `--only` names (comma-separated);
    `--only baselines`: none (the baselines and the framework echo alone)."""
    names = sorted(info.name for info in pkgutil.iter_modules(bench_scenarios.__path__))
    wanted = None if only is None else {name.strip() for name in only.split(",")} - {"baselines"}
    unknown = (wanted or set()) - set(names)
    if unknown:
        raise SystemExit(f"bench: no scenario module {sorted(unknown)}; there are {names}")
    return [importlib.import_module(f"tools.bench_scenarios.{name}") for name in names
            if wanted is None or name in wanted]


def with_ratios(results: list[Result]) -> list[Result]:
    """Each result's throughput over the baselines' (the first baseline of each name)."""
    echo = next((r for r in results if r.name == "baseline/grpc-echo"), None)
    update = next((r for r in results if r.name == "baseline/asyncpg-update"), None)
    for result in results:
        if echo and echo.throughput:
            result.vs_grpc_echo = round(result.throughput / echo.throughput, 3)
        if update and update.throughput:
            result.vs_asyncpg_update = round(result.throughput / update.throughput, 3)
    return results


# Columns of the CPU table: the load generator, the baselines' servers, the services in
# call order, then the stores.
PROCESS_ORDER = ["bench", "echo", "bare-http", "gateway", "identity", "membership", "benefits",
                 "engagement", "messaging", "postgres", "redis"]


def table(results: list[Result]) -> str:
    header = (f"{'scenario':<40} {'log':<7} {'conc':>5} {'ops':>8} {'err':>5} {'ops/s':>10} "
              f"{'p50 ms':>9} {'p99 ms':>9} {'x echo':>7} {'x pg-upd':>8} {'cpu ms/op':>9}")
    rows = [header, "-" * len(header)]
    for r in results:
        rows.append(f"{r.name:<40} {r.log_level:<7} {r.concurrency:>5} {r.operations:>8} "
                    f"{r.errors:>5} {r.throughput:>10.1f} {r.p50_ms:>9.3f} {r.p99_ms:>9.3f} "
                    f"{r.vs_grpc_echo or 0:>7.3f} {r.vs_asyncpg_update or 0:>8.3f} "
                    f"{r.cpu_ms_per_op_total:>9.3f}")
    return "\n".join(rows)


def cpu_table(results: list[Result]) -> str:
    """CPU ms per operation by process: one column per process any scenario spent time in."""
    spent = {name for r in results for name, ms in r.cpu_ms_per_op.items() if ms > 0}
    processes = sorted(spent, key=lambda name: (PROCESS_ORDER.index(name)
                                                if name in PROCESS_ORDER else len(PROCESS_ORDER),
                                                name))
    header = f"{'cpu ms/op by process':<40} {'log':<7} " + " ".join(
        f"{name[:10]:>10}" for name in processes)
    rows = [header, "-" * len(header)]
    for r in results:
        if r.cpu_ms_per_op:
            rows.append(f"{r.name:<40} {r.log_level:<7} " + " ".join(
                f"{r.cpu_ms_per_op.get(name, 0.0):>10.3f}" for name in processes))
    return "\n".join(rows)


async def stack_meter(stack: Stack) -> CpuMeter:
    """Every process of the run: the bench client, each service, PostgreSQL (the postmaster
    and its backends) and Redis, when they run on this machine."""
    meter = CpuMeter()
    meter.add("bench", one(os.getpid()))
    for service, process in stack.processes.items():
        meter.add(service, one(process.pid))
    assert stack.database_url is not None and stack.redis_url is not None
    conn = await asyncpg.connect(stack.database_url)
    try:  # the backend is read while it lives: its parent is the postmaster
        postmaster = _local_parent(await conn.fetchval("SELECT pg_backend_pid()"), "postgres")
    finally:
        await conn.close()
    if postmaster is not None:
        meter.add("postgres", with_children(postmaster))
    redis = aioredis.from_url(stack.redis_url)
    try:
        redis_pid = int((await redis.info("server"))["process_id"])
    finally:
        await redis.aclose()
    if _local_command(redis_pid).startswith("redis"):
        meter.add("redis", one(redis_pid))
    return meter


def _local_command(pid: int) -> str:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""  # not a process of this machine (a remote server)


def _local_parent(pid: int, command: str) -> int | None:
    """The parent of a local process whose command starts with `command`, if there is one."""
    if not _local_command(pid).startswith(command):
        return None
    stat = (PROC / str(pid) / "stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[1])


# The signals a service (libs.logging.install_log_level_signals) takes to switch its level.
LOG_LEVEL_SIGNALS = {"info": signal.SIGUSR1, "warning": signal.SIGUSR2}


def log_level_switch(stack: Stack) -> Callable[[str], Awaitable[None]]:
    """Set every service's log level by signal."""

    async def switch(level: str) -> None:
        for process in stack.processes.values():
            process.send_signal(LOG_LEVEL_SIGNALS[level])
        await asyncio.sleep(0.2)  # the handlers run on each service's loop

    return switch


async def run(options: argparse.Namespace) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="brandclub-bench-") as scratch:
        data_dir = options.data_dir or Path(scratch)
        stack = Stack.on_free_ports(data_dir, log_dir=data_dir / "logs",
                                    extra_env={"LOG_LEVEL": options.log_levels[0]})
        try:
            await stack.start()
            assert stack.database_url is not None
            cpu = await stack_meter(stack)
            args = (options.concurrency, options.seconds, options.warmup, cpu)
            results = [
                await bench_grpc_echo(stack.pki_dir, *args),
                *await bench_framework_echo(stack.pki_dir, options, cpu),
                await bench_asyncpg_update(stack.database_url, *args),
                await idle(cpu, max(options.seconds, 3.0)),
            ]
            context = BenchContext(stack, options, cpu, log_level_switch(stack))
            for module in scenario_modules(options.only):
                results += await module.scenarios(context)
        finally:
            stack.stop()
    return with_ratios(results)


async def idle(cpu: CpuMeter, seconds: float) -> Result:
    """The stack doing nothing but its background loops: CPU ms per second of each process
    (one "operation" per second), the floor under every scenario's CPU figures."""
    before = cpu.read()
    await asyncio.sleep(seconds)
    after = cpu.read()
    per_second = {name: round(max(0.0, after[name] - before[name]) * 1000 / seconds, 3)
                  for name in before if name in after and name != "bench"}
    return Result(name="idle/cpu-ms-per-second", concurrency=0, operations=0, errors=0,
                  seconds=seconds, throughput=0.0, p50_ms=0.0, p99_ms=0.0,
                  cpu_ms_per_op=per_second)


def log_levels(text: str) -> list[str]:
    levels = [level.strip() for level in text.split(",") if level.strip()]
    wrong = [level for level in levels if level not in ("info", "warning")]
    if not levels or wrong:
        raise argparse.ArgumentTypeError(
            f"--log-levels takes info and/or warning, comma-separated; got {text!r}")
    return levels


def main() -> None:
    if "--scale" in sys.argv[1:]:  # the ten-million-member bench has its own options
        from tools import bench_scale
        bench_scale.main([arg for arg in sys.argv[1:] if arg != "--scale"])
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per scenario")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--members", type=int, default=2000,
                        help="members the scenarios act for (up to 5,000 seeded through the "
                             "services) and the dashboard brand's size (1000000: the 1M figure)")
    parser.add_argument("--only", default=None,
                        help="run these scenario modules (comma-separated) beside the baselines; "
                             "baselines: the baselines alone")
    parser.add_argument("--log-levels", type=log_levels, default=["info", "warning"],
                        help="services' LOG_LEVEL per timed window: info,warning (default), "
                             "info or warning")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the stack's data here between runs (the million-member "
                             "brands are seeded once); default: a fresh temporary directory")
    options = parser.parse_args()
    results = asyncio.run(run(options))
    print(table(results))
    print()
    print(cpu_table(results))
    path = options.json or ROOT / "bench-results" / (
        datetime.now(UTC).strftime("bench-%Y%m%dT%H%M%SZ.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": {"cpus": os.cpu_count() or 0},
                                "results": [asdict(r) for r in results]}, indent=2))
    print(f"bench: wrote {path}")


if __name__ == "__main__":
    main()

"""Measurement core of `./dev bench`: closed-loop workers, latency percentiles, CPU per
operation per process, results."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from tools.bench_cpu import CpuMeter, ms_per_operation
from tools.stack import Stack

Operation = Callable[[int], Awaitable[None]]
# Deadline of the calls that seed a scenario (hundreds in flight at once): generous, because a
# machine busy with other work must slow the seeding down, not fail the run.
SEED_TIMEOUT = 120.0
# Seeding calls in flight at once: enough to seed quickly, few enough to finish within
# SEED_TIMEOUT when other work shares the machine (200 at once did not).
SEED_BATCH = 50
# Switches the services' log level between passes (tools.bench: a signal to every service).
LogLevelSwitch = Callable[[str], Awaitable[None]]


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
    # The services' LOG_LEVEL during the timed window ("" where it does not apply).
    log_level: str = ""
    # CPU milliseconds per operation in each process group during the timed window.
    cpu_ms_per_op: dict[str, float] = field(default_factory=dict)

    @property
    def cpu_ms_per_op_total(self) -> float:
        return round(sum(self.cpu_ms_per_op.values()), 4)


async def measure(name: str, operation: Operation, *, concurrency: int, seconds: float,
                  warmup: float, cpu: CpuMeter | None = None) -> Result:
    """Run `concurrency` workers in a closed loop; latencies after the warm-up count, and
    so does the CPU every process of `cpu` spends from then until the last worker stops."""
    latencies: list[float] = []
    errors = 0
    recording = False
    stop_at = time.monotonic() + warmup + seconds
    cpu_before: dict[str, float] = {}

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
        nonlocal recording, cpu_before
        await asyncio.sleep(warmup)
        recording = True
        cpu_before = cpu.read() if cpu else {}
        return time.monotonic()

    recorder = asyncio.create_task(start_recording())
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    cpu_after = cpu.read() if cpu else {}
    elapsed = time.monotonic() - await recorder
    latencies.sort()
    count = len(latencies)
    return Result(
        name=name, concurrency=concurrency, operations=count, errors=errors,
        seconds=round(elapsed, 3), throughput=round(count / elapsed, 1) if elapsed else 0.0,
        p50_ms=round(statistics.median(latencies) * 1000, 3) if count else 0.0,
        p99_ms=round(latencies[min(count - 1, int(count * 0.99))] * 1000, 3) if count else 0.0,
        cpu_ms_per_op=ms_per_operation(cpu_before, cpu_after, count),
    )


@dataclass
class CpuWindow:
    """The CPU read around a block that is not a closed loop (a bulk import, a fan-out)."""

    meter: CpuMeter
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)

    def per_operation(self, operations: int) -> dict[str, float]:
        return ms_per_operation(self.before, self.after, operations)


async def _ignore_level(_: str) -> None:
    return None


@dataclass
class BenchContext:
    """What a scenario module gets: the running stack, the command-line options, the CPU
    meter over every process of the run, and the services' log-level switch."""

    stack: Stack
    options: argparse.Namespace
    cpu: CpuMeter = field(default_factory=CpuMeter)
    set_log_level: LogLevelSwitch = _ignore_level

    @property
    def log_levels(self) -> list[str]:
        return list(getattr(self.options, "log_levels", None) or ["warning"])

    async def measure(self, name: str, operation: Operation,
                      concurrency: int | None = None) -> list[Result]:
        """One timed window per log level asked for (`--log-levels`), back to back on the
        same data, so the cost of the access log shows beside the quiet run."""
        results = []
        for level in self.log_levels:
            await self.set_log_level(level)
            result = await measure(name, operation,
                                   concurrency=concurrency or self.options.concurrency,
                                   seconds=self.options.seconds, warmup=self.options.warmup,
                                   cpu=self.cpu)
            result.log_level = level
            results.append(result)
        return results

    @asynccontextmanager
    async def cpu_window(self) -> AsyncIterator[CpuWindow]:
        """CPU read before and after the block, at the first log level asked for."""
        await self.set_log_level(self.log_levels[0])
        window = CpuWindow(self.cpu, before=self.cpu.read())
        try:
            yield window
        finally:
            window.after = self.cpu.read()

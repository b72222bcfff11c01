"""Measurement core of `./dev bench`: closed-loop workers, latency percentiles, results."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tools.stack import Stack

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



@dataclass
class BenchContext:
    """What a scenario module gets: the running stack and the command-line options."""

    stack: Stack
    options: argparse.Namespace

    async def measure(self, name: str, operation: Operation,
                      concurrency: int | None = None) -> Result:
        return await measure(name, operation,
                             concurrency=concurrency or self.options.concurrency,
                             seconds=self.options.seconds, warmup=self.options.warmup)

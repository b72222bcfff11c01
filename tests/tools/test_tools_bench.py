"""tools.bench: closed-loop measurement, percentiles and ratios to same-run baselines."""

from __future__ import annotations

import asyncio

from tools.bench import table, with_ratios
from tools.bench_core import Result, measure


async def test_measure_counts_operations_and_errors() -> None:
    """Every completed operation after warm-up is counted; failures are counted apart."""
    calls = 0

    async def sometimes_fails(worker: int) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.001)
        if calls % 5 == 0:
            raise RuntimeError("injected")

    result = await measure("t", sometimes_fails, concurrency=4, seconds=0.3, warmup=0.05)
    assert result.operations > 0
    assert result.errors > 0
    assert result.p50_ms <= result.p99_ms
    assert result.throughput > 0


def test_ratios_are_relative_to_the_baselines() -> None:
    """A scenario's ratios divide its throughput by each baseline's."""
    results = with_ratios([
        Result("baseline/grpc-echo", 1, 100, 0, 1.0, 1000.0, 1.0, 2.0),
        Result("baseline/asyncpg-update", 1, 100, 0, 1.0, 500.0, 1.0, 2.0),
        Result("x/y", 1, 100, 0, 1.0, 250.0, 1.0, 2.0),
    ])
    scenario = results[2]
    assert scenario.vs_grpc_echo == 0.25
    assert scenario.vs_asyncpg_update == 0.5
    assert "x/y" in table(results)

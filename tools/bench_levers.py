"""`./dev python -m tools.bench_levers`: the per-call cost of each framework lever, measured
in one process with its own CPU clock, so a busy machine blurs it far less than the end-to-end
bench (docs/performance.md, issue 13).

Each figure is the CPU microseconds this process spends per operation (time.process_time over
thousands of operations, `--rounds` interleaved rounds, median reported):
  - asyncpg `SELECT $1` and a Redis GET, on asyncio's loop and on uvloop;
  - a Redis GET with hiredis's parser and with redis-py's pure-Python one;
  - a second deadline: asyncio.timeout around an awaited call, against none;
  - the access log: one line through structlog's chain, through libs.logging's
    write_access_line, and either at warning level (not written).
PostgreSQL and Redis are the embedded servers, started in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis
import uvloop
from redis._parsers import _AsyncRESP2Parser

from libs import logging as brandclub_logging
from libs.embedded import start_postgres, start_redis

Step = Callable[[], Awaitable[object]]
CONCURRENCY = 16


async def cpu_us_per_op(step: Step, operations: int) -> float:
    """CPU microseconds of this process per `step`, run `operations` times by 16 workers
    after a quarter as many untimed (connections opened, statements prepared)."""
    per_worker = operations // CONCURRENCY

    async def worker(count: int) -> None:
        for _ in range(count):
            await step()

    await asyncio.gather(*(worker(per_worker // 4 + 1) for _ in range(CONCURRENCY)))
    started = time.process_time()
    await asyncio.gather(*(worker(per_worker) for _ in range(CONCURRENCY)))
    return (time.process_time() - started) * 1e6 / (per_worker * CONCURRENCY)


async def store_costs(database_url: str, redis_url: str, operations: int) -> dict[str, float]:
    pool = await asyncpg.create_pool(database_url, min_size=CONCURRENCY, max_size=CONCURRENCY)
    hiredis = aioredis.from_url(redis_url, max_connections=CONCURRENCY)
    python_parser = aioredis.from_url(redis_url, max_connections=CONCURRENCY,
                                      parser_class=_AsyncRESP2Parser)
    try:
        await hiredis.set("bench:lever", "x" * 200)
        return {
            "asyncpg SELECT": await cpu_us_per_op(lambda: pool.fetchval("SELECT $1::int", 1),
                                                  operations),
            "redis GET (hiredis)": await cpu_us_per_op(lambda: hiredis.get("bench:lever"),
                                                       operations),
            "redis GET (python parser)": await cpu_us_per_op(
                lambda: python_parser.get("bench:lever"), operations),
        }
    finally:
        await pool.close()
        await hiredis.aclose()
        await python_parser.aclose()


async def deadline_costs(operations: int) -> dict[str, float]:
    async def call() -> None:
        await asyncio.sleep(0)

    async def with_timer() -> None:
        async with asyncio.timeout(30):
            await call()

    return {"call, no timer": await cpu_us_per_op(call, operations),
            "call inside asyncio.timeout": await cpu_us_per_op(with_timer, operations)}


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Log lines go to a buffer that is emptied as it fills, like a pipe that is read."""
    real, sys.stdout = sys.stdout, io.StringIO()
    try:
        yield
    finally:
        sys.stdout = real


def log_costs(operations: int) -> dict[str, float]:
    def per_line(write: Callable[[], None]) -> float:
        started = time.process_time()
        for n in range(operations):
            write()
            if n % 1000 == 0:
                sys.stdout.seek(0)
                sys.stdout.truncate()
        return (time.process_time() - started) * 1e6 / operations

    def access_line() -> None:  # as libs.grpc_server writes it
        if brandclub_logging.access_log_enabled():
            brandclub_logging.write_access_line("rpc", rpc_method="/a.B/C", request_id="req_1",
                                                code="OK", duration_ms=1.234)

    log = brandclub_logging.get_logger("rpc")
    costs = {}
    with quiet_stdout():
        for level in ("info", "warning"):
            brandclub_logging.configure_logging("bench", level)
            costs[f"access line via structlog ({level})"] = per_line(
                lambda: log.info("rpc", code="OK", duration_ms=1.234))
            costs[f"access line via write_access_line ({level})"] = per_line(access_line)
    return costs


def on_loop(loop_name: str, coroutine: Coroutine[Any, Any, dict[str, float]]
            ) -> dict[str, float]:
    figures = uvloop.run(coroutine) if loop_name == "uvloop" else asyncio.run(coroutine)
    return {f"{name} [{loop_name}]": value for name, value in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operations", type=int, default=8000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="brandclub-levers-") as scratch:
        postgres = start_postgres(Path(scratch) / "postgres")
        redis_server = start_redis(Path(scratch) / "redis", persist=False)
        try:
            rounds: dict[str, list[float]] = {}
            for _ in range(options.rounds):  # interleaved: a load swing hits every lever
                for loop_name in ("asyncio", "uvloop"):
                    figures = {
                        **on_loop(loop_name, store_costs(postgres.url(), redis_server.url,
                                                         options.operations)),
                        **on_loop(loop_name, deadline_costs(options.operations)),
                    }
                    for name, value in figures.items():
                        rounds.setdefault(name, []).append(value)
                for name, value in log_costs(options.operations).items():
                    rounds.setdefault(name, []).append(value)
        finally:
            redis_server.stop()
            postgres.stop()
    width = max(len(name) for name in rounds)
    print(f"{'lever':<{width}}  {'CPU µs/op (median)':>18}  {'min':>7}  {'max':>7}")
    for name, values in rounds.items():
        print(f"{name:<{width}}  {statistics.median(values):>18.1f}  {min(values):>7.1f}  "
              f"{max(values):>7.1f}")


if __name__ == "__main__":
    main()

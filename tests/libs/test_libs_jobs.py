"""libs.jobs: background loops drain backlogs at once, wait when idle, survive errors."""

from __future__ import annotations

import asyncio

from libs.jobs import background_loop
from libs.service import cancel_all


async def test_full_batches_run_again_at_once_and_errors_do_not_end_the_loop() -> None:
    """Passes reporting a full batch repeat without waiting; a failing pass is retried."""
    reports: list[int | Exception] = [10, 10, 3, RuntimeError("outage"), 0, 10, 1]
    calls = 0

    async def step() -> int:
        nonlocal calls
        value = reports[min(calls, len(reports) - 1)]
        calls += 1
        if isinstance(value, Exception):
            raise value
        return value

    task = asyncio.create_task(background_loop("t", step, interval_seconds=0.05, batch=10)())
    await asyncio.sleep(0.02)
    assert calls == 3  # two full batches drained at once, then a partial one: wait
    await asyncio.sleep(0.2)
    await cancel_all([task])
    assert calls >= 6  # the error did not end the loop


async def test_wait_first_delays_the_first_pass() -> None:
    """With wait_first nothing runs before the first interval has passed."""
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1

    task = asyncio.create_task(background_loop("t", step, interval_seconds=0.2,
                                               wait_first=True)())
    await asyncio.sleep(0.05)
    assert calls == 0
    await asyncio.sleep(0.25)
    await cancel_all([task])
    assert calls == 1

"""libs.service: background loops always stop, even when a cancellation is swallowed."""

from __future__ import annotations

import asyncio

from libs.service import cancel_all


async def test_cancel_all_stops_a_loop_that_swallows_the_first_cancellation() -> None:
    """A task that eats one CancelledError is cancelled again until it ends."""
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_all([task], retry_seconds=0.05), 5)
    assert task.cancelled()
    assert swallowed == 1


async def test_cancel_all_returns_for_tasks_already_done() -> None:
    """Finished and failed tasks are accepted without raising."""

    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await cancel_all([task])
    assert task.done()

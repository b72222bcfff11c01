"""Background loops for `Composition.background`: the one shape every periodic job shares."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from libs.logging import get_logger

log = get_logger(__name__)

Loop = Callable[[], Coroutine[Any, Any, None]]


def background_loop(name: str, step: Callable[[], Awaitable[int | None]], *,
                    interval_seconds: float, batch: int = 0,
                    wait_first: bool = False) -> Loop:
    """Run `step` for ever.

    When `batch` is set and a pass reports at least that much work done, the next pass runs
    at once (a backlog drains without waiting); otherwise the loop waits `interval_seconds`.
    An error is logged with the loop's name and the pass is retried after the wait: an outage
    must never end a background job. With `wait_first`, the first pass waits too (jobs that
    need not run at start-up).
    """

    async def run() -> None:
        if wait_first:
            await asyncio.sleep(interval_seconds)
        while True:
            try:
                while True:
                    done = await step()
                    if not batch or (done or 0) < batch:
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("background_job_error", job=name, error=repr(exc))
            await asyncio.sleep(interval_seconds)

    return run

"""Background loops for `Composition.background`: the one shape every periodic job shares, and
the supervisor that keeps every one of them running."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from libs.logging import get_logger
from libs.tracing import traced_poll

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
    need not run at start-up). A pass's trace is exported only when `step` reports work (a
    count above 0; None counts as none), so an idle service traces nothing.
    """

    async def run() -> None:
        if wait_first:
            await asyncio.sleep(interval_seconds)
        while True:
            try:
                while True:
                    # Traced only when the pass did something: idle polls make no spans.
                    with traced_poll(name) as poll:
                        done = await step()
                        poll.did(done)
                    if not batch or (done or 0) < batch:
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("background_job_error", job=name, error=repr(exc))
            await asyncio.sleep(interval_seconds)

    run.__name__ = run.__qualname__ = name
    return run


def loop_name(loop: Loop) -> str:
    """A readable name for a background loop: its job name, or owner and method."""
    owner = getattr(loop, "__self__", None)
    if owner is not None:
        detail = getattr(owner, "group", None) or getattr(owner, "name", None)
        base = f"{type(owner).__name__}.{getattr(loop, '__name__', 'run')}"
        return f"{base}[{detail}]" if isinstance(detail, str) else base
    return str(getattr(loop, "__name__", repr(loop)))


class Supervisor:
    """Runs every background loop of a service and restarts the ones that end.

    A loop is meant to run until cancelled; one that raises (or returns) is logged, reported
    down, and started again after a backoff that doubles from `initial_backoff` up to
    `max_backoff` and resets once a run lasted `stable_seconds`. While any loop is down,
    `probe` raises, so the service's health says NOT_SERVING; `on_change` is awaited whenever
    the set of down loops changes, so health follows at once instead of at the next poll.
    """

    def __init__(self, *, initial_backoff: float = 0.5, max_backoff: float = 30.0,
                 stable_seconds: float = 60.0,
                 on_change: Callable[[], Awaitable[object]] | None = None) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.stable_seconds = stable_seconds
        self.on_change = on_change
        self.down: dict[str, str] = {}
        self.restarts: dict[str, int] = {}
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, loops: Sequence[Loop]) -> list[asyncio.Task[None]]:
        names = [loop_name(loop) for loop in loops]
        for index, (name, loop) in enumerate(zip(names, loops, strict=True)):
            unique = name if names.count(name) == 1 else f"{name}#{index}"
            self.tasks.append(asyncio.create_task(self._supervise(unique, loop), name=unique))
        return self.tasks

    async def probe(self) -> None:
        """Raise while a background loop is down (a health probe: no I/O)."""
        if self.down:
            raise RuntimeError("background loops down: " + ", ".join(sorted(self.down)))

    async def _changed(self) -> None:
        if self.on_change is not None:
            try:
                await self.on_change()
            except Exception as exc:  # reporting must never stop supervising
                log.warning("supervisor_report_failed", error=repr(exc))

    async def _supervise(self, name: str, loop: Loop) -> None:
        backoff = self.initial_backoff
        while True:
            started = time.monotonic()
            try:
                await loop()
                error = "returned"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = repr(exc)
            if time.monotonic() - started >= self.stable_seconds:
                backoff = self.initial_backoff
            self.down[name] = error
            self.restarts[name] = self.restarts.get(name, 0) + 1
            log.error("background_loop_died", job=name, error=error, restart_in_s=backoff)
            await self._changed()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)
            del self.down[name]
            log.info("background_loop_restarted", job=name)
            await self._changed()

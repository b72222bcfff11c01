"""How a use case makes its change exactly once per request_id.

A mutating use case hands its transactional step to a `CommitOnce` the caller made for the
request: the step runs in one transaction that also claims the request_id
(libs.idempotency), and a retry of the same request gets the first run's result back without
running the step again. The use case keeps its whole flow (what comes before, the step, the
after-commit work); the caller decides only how an answer is stored and read back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from libs.db import Connection

Result = TypeVar("Result")


class CommitOnce(Protocol[Result]):
    async def __call__(self, step: Callable[[Connection], Awaitable[Result]]) -> Result:
        """`step`'s result, run in a transaction once per request_id (a retry gets the first
        run's result, read back from what was stored)."""
        ...

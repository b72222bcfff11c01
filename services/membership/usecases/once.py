"""One commit per request id: how a membership mutation is made idempotent (AIP-155).

A use case hands its transaction to a `CommitOnce`; the first call with a request id runs it
and stores the reply, a replay answers that reply without running the transaction again. The
use case owns the flow around it (checks and remote calls before, cache drops after); the api
layer only supplies how a result becomes the reply that is stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf.message import Message

from libs.db import Connection, Database
from libs.idempotency import IdempotentExecutor

Result = TypeVar("Result")
Reply = TypeVar("Reply")
Response = TypeVar("Response", bound=Message)

CommitOnce = Callable[[Callable[[Connection], Awaitable[Result]]], Awaitable[Reply]]
"""Runs a mutation's transaction once per request id and answers its reply."""


def commit_once(db: Database, method: str, request: Message, response_type: type[Response],
                translate: Callable[[Result], Response]) -> CommitOnce[Result, Response]:
    """`request`'s transaction run once per its request id, the result translated to the
    reply that a replay answers again."""
    executor = IdempotentExecutor(db)

    async def run_once(run: Callable[[Connection], Awaitable[Result]]) -> Response:
        async def work(conn: Connection) -> Response:
            return translate(await run(conn))

        return await executor.run(method, request, response_type, work)

    return run_once

"""The answers of mutating RPCs, stored as their protobuf responses (libs.idempotency).

`StoredAnswers.once(...)` makes the `CommitOnce` a use case runs its transactional step with:
the step runs in the transaction that claims the request_id, its result is stored as the RPC's
response, and a retry reads that response back into the result the use case returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from google.protobuf.message import Message

from libs.db import Connection, Database
from libs.idempotency import IdempotentExecutor
from services.engagement.usecases.once import CommitOnce

Result = TypeVar("Result")
Response = TypeVar("Response", bound=Message)


class _Once(Generic[Result, Response]):
    def __init__(self, executor: IdempotentExecutor, method: str, request: Message,
                 response_type: type[Response], encode: Callable[[Result], Response],
                 decode: Callable[[Response], Result]) -> None:
        self._executor = executor
        self._method = method
        self._request = request
        self._response_type = response_type
        self._encode = encode
        self._decode = decode

    async def __call__(self, step: Callable[[Connection], Awaitable[Result]]) -> Result:
        first: list[Result] = []

        async def work(conn: Connection) -> Response:
            result = await step(conn)
            first.append(result)
            return self._encode(result)

        response = await self._executor.run(self._method, self._request, self._response_type,
                                            work)
        # The first run answers its own result; a retry, the stored one read back.
        return first[0] if first else self._decode(response)


class StoredAnswers:
    def __init__(self, db: Database) -> None:
        self._executor = IdempotentExecutor(db)

    def once(self, method: str, request: Message, response_type: type[Response],
             encode: Callable[[Result], Response],
             decode: Callable[[Response], Result]) -> CommitOnce[Result]:
        """Run a use case's step once per `request.request_id` for `method`."""
        return _Once(self._executor, method, request, response_type, encode, decode)

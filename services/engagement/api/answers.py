"""The answers of mutating RPCs, stored as their protobuf responses (libs.idempotency).

`StoredAnswers.once(...)` makes the `CommitOnce` a use case runs its transactional step with:
the step runs in the transaction that claims the request_id, its result is stored as the RPC's
response, and a retry reads that response back into the result the use case returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from google.protobuf.message import Message

from libs.db import Database
from libs.idempotency import CommitOnce, IdempotentExecutor

Result = TypeVar("Result")
Response = TypeVar("Response", bound=Message)


class StoredAnswers:
    def __init__(self, db: Database) -> None:
        self._executor = IdempotentExecutor(db)

    def once(self, method: str, request: Message, response_type: type[Response],
             encode: Callable[[Result], Response],
             decode: Callable[[Response], Result]) -> CommitOnce[Result, Result]:
        """Run a use case's step once per `request.request_id` for `method`: the first run
        answers the step's own result, a retry the stored response decoded."""
        return self._executor.commit_once(method, request, response_type, encode, decode)

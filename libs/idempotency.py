"""Idempotent mutations keyed by `request_id` (AIP-155).

The key is claimed with an INSERT in the same transaction as the mutation. A concurrent call
with the same key blocks on that row until the first commits (then reads its answer) or rolls
back (then runs itself), so two racing calls never both apply.

`IdempotentExecutor.commit_once` is the one way a use case makes its change once per request
id: the use case hands it the work to do in that transaction and owns the flow around it.
What the use case gets back is chosen by the caller: the stored reply (first run and replay
alike), or, when the caller also passes a `decode`, the work's own result on the first run
(after-commit work may need more than the reply holds) and the stored reply decoded on a replay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

from google.protobuf.message import Message

from libs.db import Connection, Database
from libs.errors import FailedPrecondition, InvalidArgument

Response = TypeVar("Response", bound=Message)
Result = TypeVar("Result")
Reply = TypeVar("Reply")

CommitOnce = Callable[[Callable[[Connection], Awaitable[Result]]], Awaitable[Reply]]
"""Runs a mutation's transaction once per request id and answers `Reply`: a use case hands it
the work to do in the transaction and owns the flow around it (checks and remote calls before,
after-commit work after); the api layer only supplies how the work's result becomes the reply
that is stored (and, for `CommitOnce[Result, Result]`, how a stored reply is read back)."""


def fingerprint(request: Message) -> bytes:
    """Hash of the request's parameters, everything but its request_id."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")  # type: ignore[arg-type]
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).digest()


class IdempotentExecutor:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def run(
        self,
        method: str,
        request: Message,
        response_type: type[Response],
        work: Callable[[Connection], Awaitable[Response]],
    ) -> Response:
        request_id = getattr(request, "request_id", "")
        if not request_id:
            raise InvalidArgument("request_id is required for this call", field="request_id",
                                  reason="REQUEST_ID_REQUIRED")
        if len(request_id) > 128:
            raise InvalidArgument("request_id must be at most 128 characters",
                                  field="request_id", reason="REQUEST_ID_TOO_LONG")
        digest = fingerprint(request)
        async with self._db.transaction() as conn:
            claimed = await conn.fetchval(
                "INSERT INTO idempotency_keys (method, request_id, fingerprint) "
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
                method, request_id, digest,
            )
            if not claimed:
                row = await conn.fetchrow(
                    "SELECT fingerprint, response FROM idempotency_keys "
                    "WHERE method = $1 AND request_id = $2",
                    method, request_id,
                )
                assert row is not None  # the conflicting row is committed and visible
                if bytes(row["fingerprint"]) != digest:
                    raise FailedPrecondition(
                        f"request_id {request_id!r} was already used with different parameters",
                        reason="REQUEST_ID_REUSED",
                        metadata={"request_id": request_id, "method": method},
                    )
                return response_type.FromString(bytes(row["response"]))
            response = await work(conn)
            await conn.execute(
                "UPDATE idempotency_keys SET response = $3 WHERE method = $1 AND request_id = $2",
                method, request_id, response.SerializeToString(),
            )
            return response

    @overload
    def commit_once(self, method: str, request: Message, response_type: type[Response],
                    encode: Callable[[Result], Response]) -> CommitOnce[Result, Response]: ...

    @overload
    def commit_once(self, method: str, request: Message, response_type: type[Response],
                    encode: Callable[[Result], Response],
                    decode: Callable[[Response], Result]) -> CommitOnce[Result, Result]: ...

    def commit_once(self, method: str, request: Message, response_type: type[Response],
                    encode: Callable[[Result], Response],
                    decode: Callable[[Response], Result] | None = None,
                    ) -> CommitOnce[Result, Response] | CommitOnce[Result, Result]:
        """`request`'s transaction run once per its request id (see `run`); the work's result
        is encoded to the reply that is stored. Without `decode` every call answers that reply;
        with it, the first run answers the work's own result and a replay the stored reply
        decoded."""

        async def run(work: Callable[[Connection], Awaitable[Result]],
                      ) -> tuple[list[Result], Response]:
            first_run: list[Result] = []

            async def answer(conn: Connection) -> Response:
                result = await work(conn)
                first_run.append(result)
                return encode(result)

            return first_run, await self.run(method, request, response_type, answer)

        if decode is None:
            async def stored_reply(work: Callable[[Connection], Awaitable[Result]]) -> Response:
                return (await run(work))[1]

            return stored_reply

        async def own_result(work: Callable[[Connection], Awaitable[Result]]) -> Result:
            first_run, reply = await run(work)
            return first_run[0] if first_run else decode(reply)

        return own_result

"""libs.idempotency against a real PostgreSQL: a request_id applies its work at most once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from brandclub.membership.v1 import membership_service_pb2 as pb
from libs.db import Connection, Database
from libs.errors import FailedPrecondition, InvalidArgument
from libs.idempotency import IdempotentExecutor

METHOD = "/brandclub.membership.v1.MembershipService/CreateBrand"
Work = Callable[[Connection], Awaitable[pb.CreateBrandResponse]]


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(db_url, "membership", min_size=1, max_size=6)
    await database.execute(
        "CREATE TABLE applied_work (brand_id text NOT NULL, display_name text NOT NULL)")
    yield database
    await database.close()


def request(request_id: str, name: str = "Acme") -> pb.CreateBrandRequest:
    return pb.CreateBrandRequest(request_id=request_id, display_name=name,
                                 mode=pb.PROGRAM_MODE_CONNECTED, time_zone="Asia/Shanghai")


def create_brand(req: pb.CreateBrandRequest, *, pause: float = 0.0,
                 fail: bool = False) -> Work:
    """Work that records one application and answers with a brand id nobody could guess."""

    async def work(conn: Connection) -> pb.CreateBrandResponse:
        brand_id = f"brd_{uuid.uuid4().hex}"
        await conn.execute("INSERT INTO applied_work VALUES ($1, $2)", brand_id,
                           req.display_name)
        if pause:
            await asyncio.sleep(pause)
        if fail:
            raise RuntimeError("work failed")
        return pb.CreateBrandResponse(brand=pb.Brand(brand_id=brand_id,
                                                     display_name=req.display_name))

    return work


async def run(executor: IdempotentExecutor, req: pb.CreateBrandRequest,
              work: Work | None = None) -> pb.CreateBrandResponse:
    return await executor.run(METHOD, req, pb.CreateBrandResponse, work or create_brand(req))


async def applications(db: Database) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM applied_work")
    return count


async def test_repeat_returns_first_answer_and_applies_once(db: Database) -> None:
    """The same request_id twice returns the first response and applies the work once."""
    executor = IdempotentExecutor(db)
    req = request("req-1")
    first = await run(executor, req)
    again = await run(executor, request("req-1"))
    assert again == first
    assert first.brand.brand_id.startswith("brd_")
    assert await applications(db) == 1


async def test_distinct_request_ids_each_apply(db: Database) -> None:
    """Different request_ids are different operations, each applied."""
    executor = IdempotentExecutor(db)
    one, two = await run(executor, request("req-a")), await run(executor, request("req-b"))
    assert one.brand.brand_id != two.brand.brand_id
    assert await applications(db) == 2


async def test_reused_request_id_with_other_parameters_is_refused(db: Database) -> None:
    """A request_id reused with different parameters fails with REQUEST_ID_REUSED."""
    executor = IdempotentExecutor(db)
    await run(executor, request("req-2", name="Acme"))
    with pytest.raises(FailedPrecondition) as caught:
        await run(executor, request("req-2", name="Other"))
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert caught.value.metadata["request_id"] == "req-2"
    assert await applications(db) == 1


async def test_racing_calls_with_one_request_id_apply_once(db: Database) -> None:
    """Two concurrent calls with one request_id apply the work once and get the same answer."""
    executor = IdempotentExecutor(db)
    req = request("req-race")
    first, second = await asyncio.gather(
        run(executor, req, create_brand(req, pause=0.3)),
        run(executor, req, create_brand(req, pause=0.3)),
    )
    assert first == second
    assert await applications(db) == 1


async def test_failed_work_releases_the_request_id(db: Database) -> None:
    """Work that fails rolls its claim back, so a retry with the same request_id applies."""
    executor = IdempotentExecutor(db)
    req = request("req-retry")
    with pytest.raises(RuntimeError, match="work failed"):
        await run(executor, req, create_brand(req, fail=True))
    assert await applications(db) == 0
    answer = await run(executor, req)
    assert await run(executor, req) == answer
    assert await applications(db) == 1


async def test_waiting_call_runs_when_the_first_rolls_back(db: Database) -> None:
    """A call blocked behind a failing call with its request_id applies the work itself once."""
    executor = IdempotentExecutor(db)
    req = request("req-handover")
    failing = asyncio.create_task(run(executor, req, create_brand(req, pause=0.3, fail=True)))
    await asyncio.sleep(0.1)  # let the failing call claim the key first
    answer = await run(executor, req)
    with pytest.raises(RuntimeError, match="work failed"):
        await failing
    assert answer.brand.brand_id
    assert await applications(db) == 1


@pytest.mark.parametrize(
    ("request_id", "reason"),
    [("", "REQUEST_ID_REQUIRED"), ("x" * 129, "REQUEST_ID_TOO_LONG")],
)
async def test_missing_or_oversized_request_id_is_invalid(
        db: Database, request_id: str, reason: str) -> None:
    """An empty or over-long request_id is InvalidArgument on request_id, with no work done."""
    executor = IdempotentExecutor(db)
    with pytest.raises(InvalidArgument) as caught:
        await run(executor, request(request_id))
    assert caught.value.reason == reason
    assert caught.value.field == "request_id"
    assert await applications(db) == 0


class Created:
    """A use case's own result: the brand it made and what only the first run knows."""

    def __init__(self, brand_id: str, first_run: bool) -> None:
        self.brand_id = brand_id
        self.first_run = first_run


def create_brand_result(req: pb.CreateBrandRequest, *,
                        pause: float = 0.0) -> Callable[[Connection], Awaitable[Created]]:
    async def work(conn: Connection) -> Created:
        answer = await create_brand(req, pause=pause)(conn)
        return Created(answer.brand.brand_id, first_run=True)

    return work


def encode(created: Created) -> pb.CreateBrandResponse:
    return pb.CreateBrandResponse(brand=pb.Brand(brand_id=created.brand_id))


def decode(reply: pb.CreateBrandResponse) -> Created:
    return Created(reply.brand.brand_id, first_run=False)


async def test_commit_once_answers_the_stored_reply_every_time(db: Database) -> None:
    """Without a decoder, the first run and a replay both answer the encoded, stored reply."""
    executor = IdempotentExecutor(db)
    req = request("req-reply")
    first = await executor.commit_once(METHOD, req, pb.CreateBrandResponse, encode)(
        create_brand_result(req))
    again = await executor.commit_once(METHOD, req, pb.CreateBrandResponse, encode)(
        create_brand_result(req))
    assert isinstance(first, pb.CreateBrandResponse)
    assert again == first
    assert await applications(db) == 1


async def test_commit_once_with_a_decoder_answers_the_first_runs_own_result(
        db: Database) -> None:
    """With a decoder, the first run answers the work's own result (what the reply does not
    hold survives) and a replay the stored reply decoded; the work applies once."""
    executor = IdempotentExecutor(db)
    req = request("req-result")

    def once() -> Callable[[Callable[[Connection], Awaitable[Created]]], Awaitable[Created]]:
        return executor.commit_once(METHOD, req, pb.CreateBrandResponse, encode, decode)

    first = await once()(create_brand_result(req))
    again = await once()(create_brand_result(req))
    assert first.first_run and not again.first_run
    assert again.brand_id == first.brand_id
    assert await applications(db) == 1


async def test_commit_once_racing_calls_one_runs_the_other_reads_back(db: Database) -> None:
    """Two concurrent calls with one request_id: exactly one runs the work and answers its
    own result, the other waits and answers the decoded reply of the same brand."""
    executor = IdempotentExecutor(db)
    req = request("req-result-race")
    results = await asyncio.gather(*(
        executor.commit_once(METHOD, req, pb.CreateBrandResponse, encode, decode)(
            create_brand_result(req, pause=0.3)) for _ in range(2)))
    assert sorted(r.first_run for r in results) == [False, True]
    assert results[0].brand_id == results[1].brand_id
    assert await applications(db) == 1


async def test_commit_once_refuses_a_reused_request_id_before_decoding(db: Database) -> None:
    """A request_id reused with other parameters is REQUEST_ID_REUSED for the decoding form
    too, and nothing is applied again."""
    executor = IdempotentExecutor(db)
    await executor.commit_once(METHOD, request("req-3"), pb.CreateBrandResponse, encode,
                               decode)(create_brand_result(request("req-3")))
    other = request("req-3", name="Other")
    with pytest.raises(FailedPrecondition) as caught:
        await executor.commit_once(METHOD, other, pb.CreateBrandResponse, encode, decode)(
            create_brand_result(other))
    assert caught.value.reason == "REQUEST_ID_REUSED"
    assert await applications(db) == 1

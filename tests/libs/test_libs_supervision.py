"""libs.jobs.Supervisor and libs.outages: background loops never die for good, health tells the
truth while one is down, and a dependency outage answers UNAVAILABLE (gRPC) / 503 (HTTP).

The same classes are swept over every service: each composition's background loops all run
under the supervisor, and each exception type of an outage maps to UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import grpc
import pytest
import redis.exceptions
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from grpc_health.v1 import health_pb2

from libs.grpc_server import RequestInterceptor
from libs.jobs import Supervisor, background_loop, loop_name
from libs.outages import is_outage
from libs.service import Compose
from libs.testing import running_service, service_settings
from services.benefits.main import compose as benefits_compose
from services.engagement.main import compose as engagement_compose
from services.identity.main import compose as identity_compose
from services.membership.main import compose as membership_compose
from services.messaging.main import compose as messaging_compose

Request = health_pb2.HealthCheckRequest
Reply = health_pb2.HealthCheckResponse


async def wait_for(predicate: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# --- the supervisor ---------------------------------------------------------------------------


async def test_a_loop_that_raises_is_restarted_and_reported_down_meanwhile() -> None:
    """A crashing loop is down (probe raises, on_change told) until it is started again."""
    runs = 0
    changes: list[bool] = []
    crashed = asyncio.Event()
    release = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            crashed.set()
            raise ConnectionResetError("postgres went away")
        await release.wait()
        await asyncio.sleep(3600)

    supervisor = Supervisor(initial_backoff=0.2)

    async def on_change() -> None:
        changes.append(bool(supervisor.down))

    supervisor.on_change = on_change
    supervisor.start([flaky])
    try:
        await crashed.wait()
        await wait_for(lambda: bool(supervisor.down))
        with pytest.raises(RuntimeError, match="flaky"):
            await supervisor.probe()
        await wait_for(lambda: runs == 2)
        await supervisor.probe()  # up again
        assert changes == [True, False]
        assert supervisor.restarts == {"flaky": 1}
    finally:
        for task in supervisor.tasks:
            task.cancel()
        await asyncio.gather(*supervisor.tasks, return_exceptions=True)


async def test_a_loop_that_returns_is_restarted_with_doubling_backoff() -> None:
    """A loop that ends is run again, each time after a wait that doubles (up to the cap)."""
    starts: list[float] = []

    async def ends_at_once() -> None:
        starts.append(time.monotonic())

    supervisor = Supervisor(initial_backoff=0.05, max_backoff=0.2)
    supervisor.start([ends_at_once])
    try:
        await wait_for(lambda: len(starts) >= 6, within=10)
    finally:
        for task in supervisor.tasks:
            task.cancel()
        await asyncio.gather(*supervisor.tasks, return_exceptions=True)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2 and gaps[3] >= 0.2
    assert supervisor.restarts["ends_at_once"] >= len(starts) - 1


async def test_a_cancelled_supervisor_task_ends_without_restarting() -> None:
    """Shutdown cancels supervised loops: cancellation is not a crash to restart."""
    runs = 0

    async def forever() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(3600)

    supervisor = Supervisor(initial_backoff=0.01)
    [task] = supervisor.start([forever])
    await wait_for(lambda: runs == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert runs == 1 and not supervisor.down


def test_loop_names_say_which_job_it_is() -> None:
    """Names in logs and health: a background_loop's job name, or Class.method[group]."""

    async def step() -> int:
        return 0

    class Consumer:
        group = "readers"

        async def run(self) -> None:
            return None

    assert loop_name(background_loop("expire", step, interval_seconds=1)) == "expire"
    assert loop_name(Consumer().run) == "Consumer.run[readers]"


SERVICE_COMPOSITIONS: dict[str, Compose] = {
    "identity": identity_compose,
    "membership": membership_compose,
    "benefits": benefits_compose,
    "engagement": engagement_compose,
    "messaging": messaging_compose,
}


@pytest.mark.parametrize("service", sorted(SERVICE_COMPOSITIONS))
async def test_every_background_loop_of_every_service_runs_supervised(
        service: str, db_url: str, redis_url: str) -> None:
    """Each service's background loops all run as supervisor tasks, and the supervisor's
    probe is one of the health probes (a dead loop would be NOT_SERVING)."""
    settings = service_settings(service, db_url, redis_url)
    async with running_service(settings, SERVICE_COMPOSITIONS[service]) as running:
        loops = list(running.composition.background)
        assert loops, f"{service} has no background loop"
        # Every task the service runs is a supervised one, the composition's loops included
        # (libs.service may add loops of its own, such as pruning).
        assert running.tasks == running.supervisor.tasks
        supervised = collections.Counter(task.get_name().split("#")[0] for task in running.tasks)
        wanted = collections.Counter(loop_name(loop) for loop in loops)
        assert not wanted - supervised, f"not supervised: {wanted - supervised}"
        await asyncio.sleep(0.3)
        assert not running.supervisor.down, running.supervisor.down
        assert all(not task.done() for task in running.tasks)
        assert running.supervisor.probe in running.host._probes


async def test_health_is_not_serving_while_a_background_loop_is_down(
        db_url: str, redis_url: str) -> None:
    """A service whose loop crashed reports NOT_SERVING until the loop runs again."""
    go = asyncio.Event()
    back = asyncio.Event()
    runs = 0

    async def crashes_once() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            await go.wait()
            raise RuntimeError("relay died")
        back.set()
        await asyncio.sleep(3600)

    async def compose(resources: Any) -> Any:
        from libs.service import Composition
        return Composition(service_names=["test.Loops"], register=lambda server: None,
                           background=[crashes_once])

    async def status() -> int:
        # What the health service answers (asked in-process: transport is not the point).
        reply = await running.host.health.Check(Request(), None)
        return int(reply.status)

    settings = service_settings("membership", db_url, redis_url)
    async with running_service(settings, compose) as running:
        running.supervisor.initial_backoff = 3.0
        deadline = time.monotonic() + 5
        while await status() != Reply.SERVING:
            assert time.monotonic() < deadline, "never SERVING"
            await asyncio.sleep(0.02)
        go.set()
        seen = []
        while not back.is_set():
            seen.append(await status())
            await asyncio.sleep(0.02)
        assert Reply.NOT_SERVING in seen
        deadline = time.monotonic() + 2
        while await status() != Reply.SERVING:
            assert time.monotonic() < deadline, "not SERVING again after the restart"
            await asyncio.sleep(0.02)


# --- outages answer UNAVAILABLE ---------------------------------------------------------------

OUTAGES: list[BaseException] = [
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
    asyncpg.exceptions.ConnectionFailureError("connection failure"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.TooManyConnectionsError("too many clients"),
    asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"),
    ConnectionRefusedError(111, "Connection refused"),
    OSError(113, "No route to host"),
    OSError(101, "Network is unreachable"),
    BrokenPipeError(32, "Broken pipe"),
    socket.gaierror(-2, "Name or service not known"),
    TimeoutError(),  # pool acquire / command_timeout / asyncio.timeout
    redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
    redis.exceptions.TimeoutError("Timeout reading from socket"),
    redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
    ExceptionGroup("both", [ConnectionResetError(), redis.exceptions.ConnectionError()]),
]
NOT_OUTAGES: list[BaseException] = [
    RuntimeError("a bug"),
    FileNotFoundError(2, "No such file or directory"),
    PermissionError(13, "Permission denied"),
    KeyError("missing"),
    asyncpg.exceptions.UniqueViolationError("duplicate key"),
    asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    redis.exceptions.ResponseError("WRONGTYPE"),
    ExceptionGroup("mixed", [ConnectionResetError(), ValueError("bad")]),
]


@pytest.mark.parametrize("error", OUTAGES, ids=lambda e: type(e).__name__)
def test_connection_level_failures_are_outages(error: BaseException) -> None:
    """Every kind of lost or refused connection to PostgreSQL, Redis or a socket is an outage."""
    assert is_outage(error)


@pytest.mark.parametrize("error", NOT_OUTAGES, ids=lambda e: type(e).__name__)
def test_other_failures_are_not_outages(error: BaseException) -> None:
    """Bugs and bad data stay INTERNAL: they must not be retried as if transient."""
    assert not is_outage(error)


@pytest.fixture
async def raising_server() -> AsyncIterator[tuple[int, list[BaseException]]]:
    """A server with the shared RequestInterceptor whose one method raises whatever the test
    put in the list (plaintext on loopback: the mapping, not the transport, is under test)."""
    to_raise: list[BaseException] = []

    async def handler(request: Any, context: Any) -> Any:
        raise to_raise[0]

    server = grpc.aio.server(interceptors=[RequestInterceptor("test")])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("test.Raise", {
        "Do": grpc.unary_unary_rpc_method_handler(
            handler, request_deserializer=Request.FromString,
            response_serializer=Reply.SerializeToString)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port, to_raise
    await server.stop(0)


@pytest.mark.parametrize("error, expected", [
    *[(error, grpc.StatusCode.UNAVAILABLE) for error in OUTAGES],
    *[(error, grpc.StatusCode.INTERNAL) for error in NOT_OUTAGES],
    (NotImplementedError("Method not implemented!"), grpc.StatusCode.UNIMPLEMENTED),
], ids=lambda value: type(value).__name__)
async def test_server_maps_every_outage_to_unavailable_and_bugs_to_internal(
        raising_server: tuple[int, list[BaseException]], error: BaseException,
        expected: grpc.StatusCode) -> None:
    """The shared interceptor answers UNAVAILABLE for each outage type, UNIMPLEMENTED for a
    method a servicer does not implement, INTERNAL otherwise."""
    port, to_raise = raising_server
    to_raise.append(error)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/test.Raise/Do", request_serializer=Request.SerializeToString,
                                   response_deserializer=Reply.FromString)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(Request(), timeout=5)
    assert caught.value.code() is expected
    assert "Error" not in (caught.value.details() or "")  # no internals leak


@pytest.mark.parametrize("error, expected", [
    *[(error, 503) for error in OUTAGES],
    *[(error, 500) for error in NOT_OUTAGES],
], ids=lambda value: type(value).__name__)
async def test_gateway_maps_every_outage_to_503_and_bugs_to_500(
        error: BaseException, expected: int) -> None:
    """The gateway's error middleware answers 503 for an outage of Redis or PostgreSQL."""
    from services.gateway.api.http_common import error_middleware

    async def handler(request: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/x", handler)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/x")
        body = await response.json()
    assert response.status == expected
    assert body["error"]["code"] == ("UNAVAILABLE" if expected == 503 else "INTERNAL")


async def test_an_outage_in_a_handler_never_dead_letters_the_event(
        db_url: str, redis_url: str) -> None:
    """A handler failing with a connection error leaves the entry pending however often it
    happens (no dead letter after max_deliveries); once the outage ends it is applied once."""
    from brandclub.events.v1 import membership_events_pb2
    from libs.db import Database
    from libs.eventbus import EventConsumer
    from libs.outbox import OutboxRelay, add_event, stream_name
    from libs.redis import connect_redis

    database = await Database.connect(db_url, "membership", min_size=1, max_size=4)
    redis = connect_redis(redis_url)
    failures_left = 5
    applied: list[str] = []

    async def handler(conn: Any, envelope: Any) -> None:
        nonlocal failures_left
        if failures_left:
            failures_left -= 1
            raise ConnectionResetError(104, "Connection reset by peer")
        applied.append(envelope.event_id)

    try:
        async with database.transaction() as conn:
            envelope = await add_event(
                conn, topic="outage-dlq", brand_id="brd_1", producer="membership",
                payload=membership_events_pb2.MemberFollowed(brand_id="brd_1"))
        await OutboxRelay(database, redis).publish_once()
        consumer = EventConsumer(db=database, redis=redis, group="outage-dlq-readers",
                                 topics=["outage-dlq"], handler=handler, consumer_name="c1",
                                 block_ms=10, max_deliveries=2)
        await consumer.ensure_groups()
        for _ in range(10):
            with contextlib.suppress(ConnectionResetError):
                await consumer.poll_once()
        assert applied == [envelope.event_id]
        dead = f"{stream_name('outage-dlq')}:dead:outage-dlq-readers"
        assert await redis.exists(dead) == 0
        assert int((await redis.xpending(stream_name("outage-dlq"),
                                         "outage-dlq-readers"))["pending"]) == 0
    finally:
        await redis.aclose()
        await database.close()

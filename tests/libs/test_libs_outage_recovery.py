"""Outages of PostgreSQL and Redis under load, on servers of the test's own (restarted, hung).

A service with an outbox relay and an event consumer keeps committing events while PostgreSQL
restarts, then while Redis restarts: events flow again afterwards, every committed event is
delivered and applied exactly once, and nothing stays in the outbox. While PostgreSQL hangs
(every process SIGSTOPped), health turns NOT_SERVING instead of hanging with it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import cast

import asyncpg
import psutil
import pytest

from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from libs.db import Connection
from libs.embedded import EmbeddedPostgres, EmbeddedRedis, start_postgres, start_redis
from libs.eventbus import EventConsumer
from libs.migrations import migrate, service_migrations
from libs.outbox import OutboxRelay, add_event
from libs.service import Composition, Resources, RunningService
from libs.testing import running_service, service_settings

TOPIC = "outagetest"
GROUP = "outagetest-readers"
SERVING = 1  # grpc.health.v1 HealthCheckResponse.ServingStatus
NOT_SERVING = 2


# --- servers of our own: these tests stop and restart them ------------------------------------


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[EmbeddedPostgres]:
    root = Path(tempfile.mkdtemp(prefix="brandclub-outage-pg-"))
    server = start_postgres(root / "data")
    try:
        yield server
    finally:
        resume_postgres(server)
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def restart_postgres(server: EmbeddedPostgres) -> None:
    """`pg_ctl restart -m fast`: every connection is cut, the server comes back on the same
    socket (the options of the last start are reused)."""
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.server.pgdata,
           user=server.server.system_user, timeout=60)


def postgres_processes(server: EmbeddedPostgres) -> list[psutil.Process]:
    # postmaster.pid, not pgserver's cached pid: a restart above started a new postmaster.
    pid_file = Path(server.server.pgdata) / "postmaster.pid"
    postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
    return [postmaster, *postmaster.children(recursive=True)]


def hang_postgres(server: EmbeddedPostgres) -> None:
    for process in postgres_processes(server):
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGSTOP)


def resume_postgres(server: EmbeddedPostgres) -> None:
    with contextlib.suppress(Exception):
        for process in postgres_processes(server):
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGCONT)


@pytest.fixture
async def outage_db_url(own_postgres: EmbeddedPostgres) -> AsyncIterator[str]:
    """A fresh database on our own PostgreSQL with membership's schema and a `handled` table
    that the consumer writes, to count how often each event was applied."""
    name = f"o_{os.urandom(6).hex()}"
    admin = await asyncpg.connect(own_postgres.url("postgres"))
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(own_postgres.url(name))
    try:
        await migrate(conn, "membership", service_migrations("membership"))
        await conn.execute("CREATE TABLE membership.handled (event_id text NOT NULL)")
    finally:
        await conn.close()
    yield own_postgres.url(name)


@pytest.fixture
def own_redis() -> Iterator[tuple[list[EmbeddedRedis], Path]]:
    """A persistent (append-only file) Redis of our own: the processes it ran (the current
    one last) and its data directory."""
    root = Path(tempfile.mkdtemp(prefix="brandclub-outage-redis-"))
    servers = [start_redis(root, persist=True)]
    try:
        yield servers, root
    finally:
        servers[-1].stop()
        shutil.rmtree(root, ignore_errors=True)


def restart_redis(servers: list[EmbeddedRedis], data_dir: Path) -> None:
    """Stop Redis (it writes its append-only file) and start it again on the same port."""
    current = servers[-1]
    current.stop()
    deadline = time.monotonic() + 10
    while True:  # the port is free again once the old process has closed it
        try:
            servers.append(start_redis(data_dir, current.port, persist=True))
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --- the service under test -------------------------------------------------------------------


async def record_handled(conn: Connection, envelope: envelope_pb2.EventEnvelope) -> None:
    await conn.execute("INSERT INTO handled (event_id) VALUES ($1)", envelope.event_id)


async def compose(resources: Resources) -> Composition:
    relay = OutboxRelay(resources.db, resources.redis, poll_seconds=0.2)
    consumer = EventConsumer(db=resources.db, redis=resources.redis, group=GROUP,
                             topics=[TOPIC], handler=record_handled, consumer_name="c1",
                             block_ms=200, claim_idle_ms=5_000)
    return Composition(service_names=["test.Outages"], register=lambda server: None,
                       background=[relay.run, consumer.run])


class Producer:
    """Commits one event after another; knows which commits were acknowledged and which
    failed (a commit cut by the outage may or may not have happened: "uncertain")."""

    def __init__(self, running: RunningService) -> None:
        self.db = running.resources.db
        self.acknowledged: list[str] = []
        self.uncertain: list[str] = []
        self.failures = 0
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            envelope_id = ""
            try:
                async with asyncio.timeout(5):
                    async with self.db.transaction() as conn:
                        envelope = await add_event(
                            conn, topic=TOPIC, brand_id="brd_1", producer="membership",
                            payload=membership_events_pb2.MemberFollowed(
                                brand_id="brd_1", shop_id="shp_1", account_id="acc_1"))
                        envelope_id = envelope.event_id
                self.acknowledged.append(envelope_id)
                await asyncio.sleep(0.01)
            except Exception:
                self.failures += 1
                if envelope_id:
                    self.uncertain.append(envelope_id)
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self._stop.set()
        await self._task


async def applied(running: RunningService) -> collections.Counter[str]:
    rows = await running.resources.db.fetch("SELECT event_id FROM handled")
    return collections.Counter(str(row["event_id"]) for row in rows)


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(Exception):
            if await check():
                return
        assert time.monotonic() < deadline, f"{what} within {within:.0f} s"
        await asyncio.sleep(0.1)


async def health(running: RunningService) -> int:
    from grpc_health.v1 import health_pb2

    reply = await running.host.health.Check(health_pb2.HealthCheckRequest(), None)
    return int(reply.status)


async def run_outage(running: RunningService, outage: Callable[[], None]) -> Producer:
    """Load before, during and after `outage` (run in a thread); then every acknowledged
    event must be applied exactly once, and the outbox must be empty."""
    producer = Producer(running)
    await eventually(lambda: _applied_some(running), 20, "events flow before the outage")
    await asyncio.to_thread(outage)
    before = len(producer.acknowledged)
    await eventually(lambda: _more_acknowledged(producer, before + 20), 20,
                     "commits succeed again after the outage")
    await producer.stop()
    acknowledged = set(producer.acknowledged)

    async def all_applied() -> bool:
        return acknowledged <= set(await applied(running))

    # "Within seconds": the relay and the consumer come back on their own.
    await eventually(all_applied, 20, "every acknowledged event applied after the outage")
    await eventually(lambda: _outbox_empty(running), 10, "outbox drained")
    counts = await applied(running)
    assert all(count == 1 for count in counts.values()), "an event was applied twice"
    assert set(counts) <= acknowledged | set(producer.uncertain), "an unknown event applied"
    await eventually(lambda: _serving(running), 10, "health SERVING again")
    assert not running.supervisor.down
    return producer


async def _applied_some(running: RunningService) -> bool:
    return len(await applied(running)) >= 10


async def _more_acknowledged(producer: Producer, count: int) -> bool:
    return len(producer.acknowledged) >= count


async def _outbox_empty(running: RunningService) -> bool:
    return int(await running.resources.db.fetchval("SELECT count(*) FROM outbox")) == 0


async def _serving(running: RunningService) -> bool:
    return await health(running) == SERVING


# --- the tests --------------------------------------------------------------------------------


async def test_events_flow_again_after_postgres_restarts_with_none_lost_or_doubled(
        own_postgres: EmbeddedPostgres, outage_db_url: str, redis_url: str) -> None:
    """PostgreSQL restarted under load: the relay and the consumer recover by themselves;
    every acknowledged event is published and applied exactly once."""
    settings = service_settings("membership", outage_db_url, redis_url)
    async with running_service(settings, compose) as running:
        producer = await run_outage(running, lambda: restart_postgres(own_postgres))
    assert producer.failures > 0, "the restart did not interrupt the load"


async def test_the_relay_itself_survives_a_postgres_restart_without_supervision(
        own_postgres: EmbeddedPostgres, outage_db_url: str, redis_url: str) -> None:
    """Unsupervised, the relay loop still outlives a restart (its listener release must not
    raise inside its own error handling) and publishes what was committed afterwards."""
    from libs.db import Database
    from libs.outbox import stream_name
    from libs.redis import connect_redis

    database = await Database.connect(outage_db_url, "membership", min_size=1, max_size=4)
    redis = connect_redis(redis_url)
    relay = asyncio.create_task(OutboxRelay(database, redis, poll_seconds=0.2).run())
    try:
        await asyncio.sleep(0.5)  # listening
        await asyncio.to_thread(restart_postgres, own_postgres)
        await asyncio.sleep(1.0)  # the relay meets the dead connections
        assert not relay.done(), relay
        envelope_ids = set()

        async def commit_one() -> bool:
            async with database.transaction() as conn:
                envelope = await add_event(
                    conn, topic=TOPIC, brand_id="brd_1", producer="membership",
                    payload=membership_events_pb2.MemberFollowed(brand_id="brd_1"))
            envelope_ids.add(envelope.event_id)
            return True

        await eventually(commit_one, 20, "a commit after the restart")

        async def published() -> bool:
            entries = cast(list[tuple[bytes, dict[bytes, bytes]]],
                           await redis.xrange(stream_name(TOPIC)))
            found = {envelope_pb2.EventEnvelope.FromString(fields[b"envelope"]).event_id
                     for _, fields in entries}
            return envelope_ids <= found

        await eventually(published, 20, "the event published after the restart")
        assert not relay.done()
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        await redis.aclose()
        await database.close()


async def test_events_flow_again_after_redis_restarts_with_none_lost_or_doubled(
        outage_db_url: str, own_redis: tuple[list[EmbeddedRedis], Path]) -> None:
    """Redis restarted under load: relay and consumer reconnect; every acknowledged event is
    published and applied exactly once, none waits in the outbox."""
    servers, data_dir = own_redis
    settings = service_settings("membership", outage_db_url, servers[0].url)

    def outage() -> None:
        restart_redis(servers, data_dir)
        time.sleep(0.5)

    async with running_service(settings, compose) as running:
        await run_outage(running, outage)
    assert len(servers) == 2


async def test_health_turns_not_serving_while_postgres_hangs_and_recovers(
        own_postgres: EmbeddedPostgres, outage_db_url: str, redis_url: str) -> None:
    """Every PostgreSQL process stopped (SIGSTOP): the bounded health check reports
    NOT_SERVING instead of hanging; after SIGCONT it reports SERVING again."""
    settings = service_settings("membership", outage_db_url, redis_url)
    async with running_service(settings, compose) as running:
        await eventually(lambda: _serving(running), 10, "SERVING at first")
        hang_postgres(own_postgres)
        try:
            await eventually(lambda: _not_serving(running), 15, "NOT_SERVING while hung")
        finally:
            resume_postgres(own_postgres)
        await eventually(lambda: _serving(running), 30, "SERVING again after SIGCONT")


async def _not_serving(running: RunningService) -> bool:
    return await health(running) == NOT_SERVING


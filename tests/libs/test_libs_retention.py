"""libs.retention against a real PostgreSQL and Redis: idempotency keys and processed events
are kept for the retention window, then pruned.

Old records go, recent ones stay; a replay inside the window is still answered from the first
result (a request_id) or skipped (an event); every service with a database runs the pruning job.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from brandclub.membership.v1 import membership_service_pb2 as pb
from libs.config import ConfigError, load_settings
from libs.db import Connection, Database
from libs.eventbus import EventConsumer
from libs.idempotency import IdempotentExecutor
from libs.outbox import new_envelope
from libs.redis import Redis, connect_redis
from libs.retention import DEFAULT_RETENTION_DAYS, prune_once
from libs.service import Composition, Resources
from libs.testing import running_service, service_settings

WINDOW = timedelta(days=DEFAULT_RETENTION_DAYS)
HOUR = timedelta(hours=1)
METHOD = "/brandclub.membership.v1.MembershipService/CreateBrand"


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(db_url, "membership", min_size=1, max_size=4)
    yield database
    await database.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect_redis(redis_url)
    yield client
    await client.aclose()


async def age(db: Database, table: str, column: str, key: str, value: str,
              by: timedelta) -> None:
    await db.execute(f"UPDATE {table} SET {column} = now() - $2::interval WHERE {key} = $1",
                     value, by)


async def keys(db: Database) -> set[str]:
    return {r["request_id"] for r in await db.fetch("SELECT request_id FROM idempotency_keys")}


async def events(db: Database) -> set[str]:
    return {r["event_id"] for r in await db.fetch("SELECT event_id FROM processed_events")}


async def test_old_records_go_and_recent_ones_stay(db: Database) -> None:
    """Records older than the window are pruned from both tables; one an hour inside the
    window, and fresh ones, stay."""
    for request_id in ("old", "inside", "fresh"):
        await db.execute("INSERT INTO idempotency_keys (method, request_id, fingerprint) "
                         "VALUES ($1, $2, '\\x00')", METHOD, request_id)
        await db.execute("INSERT INTO processed_events (consumer_group, event_id) "
                         "VALUES ('g', $1)", request_id)
    for table, column, key in (("idempotency_keys", "created_at", "request_id"),
                               ("processed_events", "processed_at", "event_id")):
        await age(db, table, column, key, "old", WINDOW + HOUR)
        await age(db, table, column, key, "inside", WINDOW - HOUR)
    assert await prune_once(db, WINDOW) == 1
    assert await keys(db) == {"inside", "fresh"}
    assert await events(db) == {"inside", "fresh"}
    assert await prune_once(db, WINDOW) == 0


async def test_pruning_works_in_batches_until_done(db: Database) -> None:
    """A backlog larger than one batch is pruned batch by batch; each pass reports its work."""
    await db.execute(
        "INSERT INTO idempotency_keys (method, request_id, fingerprint, created_at) "
        "SELECT $1, 'r' || i, '\\x00', now() - interval '30 days' "
        "FROM generate_series(1, 25) AS i", METHOD)
    assert [await prune_once(db, WINDOW, batch=10) for _ in range(4)] == [10, 10, 5, 0]
    assert await keys(db) == set()


async def test_replay_inside_the_window_is_answered_from_the_first_result(
        db: Database) -> None:
    """A request_id replayed after pruning, while still inside the window, gets the first
    answer and the work does not run again; past the window the key is gone."""
    executor = IdempotentExecutor(db)
    runs: list[str] = []

    async def work(conn: Connection) -> pb.CreateBrandResponse:
        runs.append("ran")
        return pb.CreateBrandResponse(brand=pb.Brand(brand_id=f"brd_{uuid.uuid4().hex}"))

    request = pb.CreateBrandRequest(request_id="req-1", display_name="Acme")
    first = await executor.run(METHOD, request, pb.CreateBrandResponse, work)
    await age(db, "idempotency_keys", "created_at", "request_id", "req-1", WINDOW - HOUR)
    await prune_once(db, WINDOW)
    again = await executor.run(METHOD, request, pb.CreateBrandResponse, work)
    assert (again, runs) == (first, ["ran"])
    await age(db, "idempotency_keys", "created_at", "request_id", "req-1", WINDOW + HOUR)
    await prune_once(db, WINDOW)
    assert await keys(db) == set()


async def test_redelivered_event_inside_the_window_is_applied_once(db: Database,
                                                                  redis: Redis) -> None:
    """An event delivered again after pruning, inside the window, is not applied again."""
    applied: list[str] = []

    async def handler(conn: Connection, envelope: envelope_pb2.EventEnvelope) -> None:
        applied.append(envelope.event_id)

    consumer = EventConsumer(db=db, redis=redis, group="retention-test", topics=["t"],
                             handler=handler, consumer_name="c1")
    envelope = new_envelope(brand_id="brd_1", producer="membership",
                            payload=membership_events_pb2.MemberFollowed(brand_id="brd_1"))
    fields = {b"envelope": envelope.SerializeToString()}
    await consumer.handle("t", b"1-0", fields)
    await age(db, "processed_events", "processed_at", "event_id", envelope.event_id,
              WINDOW - HOUR)
    await prune_once(db, WINDOW)
    await consumer.handle("t", b"1-0", fields)
    assert applied == [envelope.event_id]


def test_retention_setting_defaults_to_seven_days_and_refuses_less_than_a_day() -> None:
    """DEDUP_RETENTION_DAYS: 7 by default; below one day stops the service, naming it."""
    base = {"BRANDCLUB_ENV": "development"}
    assert load_settings("membership", base).dedup_retention_days == 7.0
    assert load_settings("membership", {**base, "DEDUP_RETENTION_DAYS": "30"}
                         ).dedup_retention_days == 30.0
    with pytest.raises(ConfigError, match="DEDUP_RETENTION_DAYS"):
        load_settings("membership", {**base, "DEDUP_RETENTION_DAYS": "0.5"})


async def test_every_service_runs_the_pruning_job(db_url: str, redis_url: str) -> None:
    """start_service adds the pruning job to every service's supervised loops."""
    async def compose(resources: Resources) -> Composition:
        return Composition(service_names=["test.Nothing"], register=lambda server: None)

    async with running_service(service_settings("membership", db_url, redis_url),
                               compose) as service:
        names = {task.get_name() for task in service.tasks}
        assert "prune_dedup_records" in names
        assert not any(task.done() for task in service.tasks)

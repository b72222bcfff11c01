"""libs.outbox and libs.eventbus against real PostgreSQL and Redis.

Nothing uncommitted is published, everything committed is published, and consumers apply each
event once however often it is delivered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import cast

import pytest

from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from libs.db import Connection, Database
from libs.eventbus import EventConsumer, Handler, event_type
from libs.outbox import OutboxRelay, add_event, new_envelope, stream_name
from libs.redis import Redis, connect_redis

TOPIC = "libtest"
GROUP = "libtest-readers"
STREAM = stream_name(TOPIC)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(db_url, "membership", min_size=1, max_size=6)
    # A side effect that consumers write, to count how often a handler really applied.
    await database.execute("CREATE TABLE handled (event_id text NOT NULL)")
    yield database
    await database.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect_redis(redis_url)
    yield client
    await client.aclose()


async def write_event(db: Database, account_id: str) -> envelope_pb2.EventEnvelope:
    async with db.transaction() as conn:
        return await add_event(
            conn, topic=TOPIC, brand_id="brd_1", producer="membership",
            payload=membership_events_pb2.MemberFollowed(brand_id="brd_1", shop_id="shp_1",
                                              account_id=account_id))


async def stream_envelopes(redis: Redis, stream: str = STREAM) -> list[envelope_pb2.EventEnvelope]:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(stream))
    return [envelope_pb2.EventEnvelope.FromString(fields[b"envelope"]) for _, fields in entries]


async def stream_event_ids(redis: Redis, stream: str = STREAM) -> list[str]:
    return [envelope.event_id for envelope in await stream_envelopes(redis, stream)]


async def record_handled(conn: Connection, envelope: envelope_pb2.EventEnvelope) -> None:
    await conn.execute("INSERT INTO handled (event_id) VALUES ($1)", envelope.event_id)


async def handled_ids(db: Database) -> list[str]:
    rows = await db.fetch("SELECT event_id FROM handled ORDER BY event_id")
    return [str(row["event_id"]) for row in rows]


async def pending_count(redis: Redis, group: str = GROUP) -> int:
    summary = await redis.xpending(STREAM, group)
    return int(summary["pending"])


def consumer(db: Database, redis: Redis, handler: Handler, *, name: str = "c1",
             group: str = GROUP, claim_idle_ms: int = 30_000,
             max_deliveries: int = 10) -> EventConsumer:
    return EventConsumer(db=db, redis=redis, group=group, topics=[TOPIC], handler=handler,
                         consumer_name=name, block_ms=10, claim_idle_ms=claim_idle_ms,
                         max_deliveries=max_deliveries)


async def test_rolled_back_event_is_never_published(db: Database, redis: Redis) -> None:
    """An event added in a transaction that rolls back never reaches the stream."""

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon):
        async with db.transaction() as conn:
            await add_event(conn, topic=TOPIC, brand_id="brd_1", producer="membership",
                            payload=membership_events_pb2.MemberFollowed(account_id="acc_rollback"))
            raise Abandon
    assert await OutboxRelay(db, redis).publish_once() == 0
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0
    assert await redis.exists(STREAM) == 0


def test_the_event_type_is_the_payloads_type_url_and_has_no_second_copy() -> None:
    """The envelope names its payload's type once, in the Any; field 2 (the old copy) is
    reserved so it can never come back with another meaning."""
    envelope = new_envelope(brand_id="b_1", producer="membership",
                            payload=membership_events_pb2.MemberJoined(account_id="acc_1"))
    assert event_type(envelope) == "brandclub.events.v1.MemberJoined"
    assert envelope.payload.type_url == "type.googleapis.com/brandclub.events.v1.MemberJoined"
    fields = envelope_pb2.EventEnvelope.DESCRIPTOR.fields_by_name
    assert "event_type" not in fields
    assert 2 not in {field.number for field in fields.values()}
    assert event_type(envelope_pb2.EventEnvelope()) == ""


async def test_committed_event_is_published_exactly_once(db: Database, redis: Redis) -> None:
    """A committed event is published once, intact, and leaves the outbox."""
    envelope = await write_event(db, "acc_commit")
    relay = OutboxRelay(db, redis)
    assert await relay.publish_once() == 1
    assert await relay.publish_once() == 0
    [published] = await stream_envelopes(redis)
    assert published == envelope
    assert event_type(published) == "brandclub.events.v1.MemberFollowed"
    payload = membership_events_pb2.MemberFollowed()
    assert published.payload.Unpack(payload)
    assert payload.account_id == "acc_commit"
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0


async def test_events_are_published_oldest_first_in_batches(db: Database, redis: Redis) -> None:
    """The relay publishes in the order events were written, one batch per call."""
    written = [(await write_event(db, f"acc_{n}")).event_id for n in range(5)]
    relay = OutboxRelay(db, redis, batch_size=2)
    assert [await relay.publish_once() for _ in range(4)] == [2, 2, 1, 0]
    assert await stream_event_ids(redis) == written


async def test_two_relays_at_once_publish_each_event_once(db: Database, redis: Redis) -> None:
    """Relays running side by side never publish the same outbox row twice."""
    written = {(await write_event(db, f"acc_{n}")).event_id for n in range(40)}

    async def drain(relay: OutboxRelay) -> int:
        total = 0
        while published := await relay.publish_once():
            total += published
        return total

    totals = await asyncio.gather(drain(OutboxRelay(db, redis, batch_size=5)),
                                  drain(OutboxRelay(db, redis, batch_size=5)))
    assert sum(totals) == 40
    ids = await stream_event_ids(redis)
    assert len(ids) == 40
    assert set(ids) == written


async def test_crash_between_xadd_and_delete_republishes_and_is_applied_once(
        db: Database, redis: Redis) -> None:
    """A relay that dies after XADD publishes again; the consumer still applies the event once."""
    envelope = await write_event(db, "acc_crash")
    # Make the relay's DELETE fail, as if the process died between the stream write and commit.
    await db.execute(
        "CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'relay crashed'; END $$")
    await db.execute("CREATE TRIGGER crash_before_delete BEFORE DELETE ON outbox "
                     "FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete()")
    relay = OutboxRelay(db, redis)
    with pytest.raises(Exception, match="relay crashed"):
        await relay.publish_once()
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1  # nothing committed is lost

    await db.execute("DROP TRIGGER crash_before_delete ON outbox")
    assert await relay.publish_once() == 1
    assert await stream_event_ids(redis) == [envelope.event_id, envelope.event_id]

    reader = consumer(db, redis, record_handled)
    await reader.ensure_groups()
    assert await reader.poll_once() == 2
    assert await handled_ids(db) == [envelope.event_id]
    assert await pending_count(redis) == 0


async def test_same_envelope_delivered_twice_is_handled_once(db: Database, redis: Redis) -> None:
    """Two stream entries carrying one event id run the handler once; both are acknowledged."""
    envelope = await write_event(db, "acc_dup")
    raw = envelope.SerializeToString()
    await redis.xadd(STREAM, {"envelope": raw})
    await redis.xadd(STREAM, {"envelope": raw})
    reader = consumer(db, redis, record_handled)
    await reader.ensure_groups()
    await reader.poll_once()
    await reader.poll_once()
    assert await handled_ids(db) == [envelope.event_id]
    assert await db.fetchval(
        "SELECT count(*) FROM processed_events WHERE consumer_group = $1 AND event_id = $2",
        GROUP, envelope.event_id) == 1
    assert await pending_count(redis) == 0


async def test_each_consumer_group_applies_the_event_once(db: Database, redis: Redis) -> None:
    """De-duplication is per consumer group: every group handles the event, each once."""
    envelope = await write_event(db, "acc_groups")
    await OutboxRelay(db, redis).publish_once()
    for group in ("group-a", "group-b"):
        reader = consumer(db, redis, record_handled, group=group)
        await reader.ensure_groups()
        await reader.poll_once()
        await reader.poll_once()
    assert await handled_ids(db) == [envelope.event_id, envelope.event_id]


async def test_failed_handler_leaves_entry_pending_and_next_poll_applies_once(
        db: Database, redis: Redis) -> None:
    """A handler that raises rolls back and leaves the entry pending; the next poll applies it."""
    envelope = await write_event(db, "acc_retry")
    await OutboxRelay(db, redis).publish_once()
    calls = 0

    async def flaky(conn: Connection, event: envelope_pb2.EventEnvelope) -> None:
        nonlocal calls
        calls += 1
        await record_handled(conn, event)
        if calls == 1:
            raise RuntimeError("killed mid-way")

    reader = consumer(db, redis, flaky)
    await reader.ensure_groups()
    assert await reader.poll_once() == 0
    assert await handled_ids(db) == []  # the half-done work was rolled back
    assert await db.fetchval("SELECT count(*) FROM processed_events") == 0
    assert await pending_count(redis) == 1

    assert await reader.poll_once() == 1
    assert await reader.poll_once() == 0
    assert await handled_ids(db) == [envelope.event_id]
    assert await pending_count(redis) == 0
    assert calls == 2


async def start_and_kill_mid_handler(db: Database, redis: Redis, name: str) -> None:
    """Run a consumer until its handler has written, then cancel it before it commits."""
    entered = asyncio.Event()

    async def stuck(conn: Connection, event: envelope_pb2.EventEnvelope) -> None:
        await record_handled(conn, event)
        entered.set()
        await asyncio.Event().wait()  # never finishes on its own

    reader = consumer(db, redis, stuck, name=name)
    await reader.ensure_groups()
    task = asyncio.create_task(reader.poll_once())
    await asyncio.wait_for(entered.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_consumer_cancelled_before_ack_gets_entry_again_on_restart(
        db: Database, redis: Redis) -> None:
    """A consumer cancelled mid-handler re-reads its pending entry on restart, applies it once."""
    envelope = await write_event(db, "acc_cancel")
    await OutboxRelay(db, redis).publish_once()
    await start_and_kill_mid_handler(db, redis, "c1")
    assert await handled_ids(db) == []
    assert await pending_count(redis) == 1

    restarted = consumer(db, redis, record_handled, name="c1")
    assert await restarted.poll_once() == 1
    assert await restarted.poll_once() == 0
    assert await handled_ids(db) == [envelope.event_id]
    assert await pending_count(redis) == 0


async def test_entries_of_a_dead_consumer_are_claimed_after_idle_time(
        db: Database, redis: Redis) -> None:
    """Another consumer claims a dead consumer's entry once it has idled and applies it once."""
    envelope = await write_event(db, "acc_claim")
    await OutboxRelay(db, redis).publish_once()
    await start_and_kill_mid_handler(db, redis, "dead")

    survivor = consumer(db, redis, record_handled, name="alive", claim_idle_ms=100)
    await asyncio.sleep(0.15)
    assert await survivor.poll_once() == 1
    assert await survivor.poll_once() == 0
    assert await handled_ids(db) == [envelope.event_id]
    assert await pending_count(redis) == 0


async def test_poison_entry_goes_to_dead_letter_after_max_deliveries(
        db: Database, redis: Redis) -> None:
    """An entry whose handler fails max_deliveries times moves to the dead-letter stream."""
    envelope = await write_event(db, "acc_poison")
    await OutboxRelay(db, redis).publish_once()
    calls = 0

    async def always_fails(conn: Connection, event: envelope_pb2.EventEnvelope) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("cannot handle this")

    reader = consumer(db, redis, always_fails, max_deliveries=3)
    await reader.ensure_groups()
    dead_stream = f"{STREAM}:dead:{GROUP}"
    for _ in range(2):
        await reader.poll_once()
    assert await redis.exists(dead_stream) == 0  # not before the limit
    assert await pending_count(redis) == 1

    await reader.poll_once()
    assert calls == 3
    assert await stream_event_ids(redis, dead_stream) == [envelope.event_id]
    assert await pending_count(redis) == 0
    await reader.poll_once()
    assert calls == 3  # dead-lettered entries are not retried
    assert await db.fetchval("SELECT count(*) FROM processed_events") == 0


async def test_relay_loop_publishes_on_commit_and_releases_its_connection_when_cancelled(
        db_url: str, redis: Redis) -> None:
    """run() publishes a commit without waiting to poll, and frees its connection when cancelled."""
    database = await Database.connect(db_url, "membership", min_size=1, max_size=4)
    try:
        # A poll interval far longer than the test: only the commit's NOTIFY can wake the relay.
        task = asyncio.create_task(OutboxRelay(database, redis, poll_seconds=60).run())
        await asyncio.sleep(0.2)
        envelope = await write_event(database, "acc_loop")
        for _ in range(100):
            if await redis.exists(STREAM):
                break
            await asyncio.sleep(0.02)
        assert await stream_event_ids(redis) == [envelope.event_id]

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert database.pool.get_idle_size() == database.pool.get_size()
    finally:
        started = time.monotonic()
        await database.close()
        elapsed = time.monotonic() - started
    assert elapsed < 1.0

"""Transactional outbox and its relay to Redis Streams.

`add_event` writes the event in the caller's transaction, so an event exists exactly when the
change it describes was committed. The relay moves committed rows to the topic's stream and
deletes them in one database transaction; a crash between the stream write and the delete
publishes the event again on restart, which consumers absorb by de-duplicating on the event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime

from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message

from brandclub.events.v1 import envelope_pb2
from libs.db import Connection, Database
from libs.logging import get_logger
from libs.redis import Redis, key
from libs.tracing import current_traceparent, traced_poll

# Every topic's stream carries the hash tag {events}: a consumer reads all its topics in one
# XREADGROUP, which Redis Cluster allows only within one slot (see libs.redis.key). The whole
# bus thus lives on one cluster node; docs/scale.md says when it should move on.
STREAM_TAG = "events"
# Streams are trimmed approximately to this length; consumer groups read far behind it.
STREAM_MAX_LEN = 1_000_000

log = get_logger(__name__)


def stream_name(topic: str) -> str:
    return key("brandclub", tag=STREAM_TAG, rest=[topic])


def new_envelope(*, brand_id: str, producer: str, payload: Message) -> envelope_pb2.EventEnvelope:
    packed = any_pb2.Any()
    packed.Pack(payload)
    occurred = timestamp_pb2.Timestamp()
    occurred.FromDatetime(datetime.now(UTC))
    return envelope_pb2.EventEnvelope(
        event_id=str(uuid.uuid4()),
        brand_id=brand_id,
        producer=producer,
        occur_time=occurred,
        traceparent=current_traceparent(),
        payload=packed,
    )


async def add_event(
    conn: Connection, *, topic: str, brand_id: str, producer: str, payload: Message
) -> envelope_pb2.EventEnvelope:
    """Record an event in the current transaction; it is published only if that commits."""
    envelope = new_envelope(brand_id=brand_id, producer=producer, payload=payload)
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, envelope) VALUES ($1, $2, $3)",
        envelope.event_id,
        topic,
        envelope.SerializeToString(),
    )
    # Delivered at commit only: wakes the relay without polling delay.
    await conn.execute("SELECT pg_notify('outbox_' || current_schema(), '')")
    return envelope


class OutboxRelay:
    """Publishes committed outbox rows to Redis Streams, oldest first."""

    def __init__(self, db: Database, redis: Redis, *, batch_size: int = 200,
                 poll_seconds: float = 1.0) -> None:
        self._db = db
        self._redis = redis
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    async def publish_once(self) -> int:
        """Move one batch; return how many events were published."""
        async with self._db.transaction() as conn:
            rows = await conn.fetch(
                "SELECT id, topic, envelope FROM outbox ORDER BY id LIMIT $1 "
                "FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            if not rows:
                return 0
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(stream_name(row["topic"]), {"envelope": bytes(row["envelope"])},
                              maxlen=STREAM_MAX_LEN, approximate=True)
                await pipe.execute()
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])",
                               [row["id"] for row in rows])
            return len(rows)

    async def _publish_backlog(self) -> None:
        """Publish batches until the outbox is empty; traced only when there was something
        to publish (an idle poll makes no spans)."""
        with traced_poll("outbox relay") as poll:
            published = batch = await self.publish_once()
            while batch == self._batch_size:
                batch = await self.publish_once()
                published += batch
            poll.did(published)

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Relay until cancelled; survives database and Redis outages by retrying."""
        listener: Connection | None = None
        try:
            while True:
                try:
                    if listener is not None and listener.is_closed():
                        # PostgreSQL dropped the LISTEN connection: listen on a fresh one.
                        await self._release(listener)
                        listener = None
                    if listener is None:
                        listener = await self._db.pool.acquire()
                        await listener.add_listener(self._channel, self._notified)
                    await self._publish_backlog()
                except Exception as exc:  # an outage must not kill the relay; it retries
                    log.warning("outbox_relay_error", error=str(exc))
                    if listener is not None:
                        await self._release(listener)
                        listener = None
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that races with its own timeout, and the relay would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_seconds):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            if listener is not None:
                await self._release(listener)

    @property
    def _channel(self) -> str:
        return f"outbox_{self._db.schema}"

    async def _release(self, listener: Connection) -> None:
        """Give the listening connection back; never raises.

        Runs inside the relay's error handling, so it must not fail there: after a PostgreSQL
        restart the connection is dead, UNLISTEN fails, and the pool's release terminates a
        connection it cannot reset by itself. Touching the connection after release (the old
        `terminate()` here) raised InterfaceError and ended the relay for good.
        """
        with contextlib.suppress(Exception):
            if not listener.is_closed():
                async with asyncio.timeout(self._poll_seconds):
                    await listener.remove_listener(self._channel, self._notified)
        try:
            await self._db.pool.release(listener, timeout=self._poll_seconds)
        except Exception as exc:  # the pool has terminated it; nothing else to do
            log.warning("outbox_listener_release_failed", error=repr(exc))

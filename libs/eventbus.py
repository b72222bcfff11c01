"""Consumers of the event streams: consumer groups, at-least-once, idempotent.

A handler runs inside a database transaction that also records the event id for its consumer
group; a redelivered event finds its id recorded and is skipped. The stream entry is acknowledged
only after that transaction commits, so a consumer killed mid-way gets the entry again: entries
it left pending are re-read on restart, and entries of a dead consumer are claimed after
`claim_idle_ms`. An entry that keeps failing goes to a dead-letter stream after `max_deliveries`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from brandclub.events.v1 import envelope_pb2
from libs.db import Connection, Database
from libs.logging import get_logger
from libs.outages import is_outage
from libs.outbox import stream_name
from libs.redis import Redis
from libs.tracing import traced_poll

Handler = Callable[[Connection, envelope_pb2.EventEnvelope], Awaitable[None]]
log = get_logger(__name__)


def event_type(envelope: envelope_pb2.EventEnvelope) -> str:
    """The payload's full message name (e.g. "brandclub.events.v1.MemberFollowed"), read from
    the Any's type URL: the envelope keeps no second copy that could disagree with it."""
    return envelope.payload.TypeName()


class EventConsumer:
    def __init__(
        self,
        *,
        db: Database,
        redis: Redis,
        group: str,
        topics: Sequence[str],
        handler: Handler,
        consumer_name: str,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        max_deliveries: int = 10,
    ) -> None:
        self._db = db
        self._redis = redis
        self.group = group
        self.topics = tuple(topics)  # read by libs.metrics.ProductSampler
        self._streams = [stream_name(topic) for topic in topics]
        self._handler = handler
        self._consumer = consumer_name
        self._block_ms = block_ms
        self._claim_idle_ms = claim_idle_ms
        self._max_deliveries = max_deliveries

    async def ensure_groups(self) -> None:
        for stream in self._streams:
            try:
                await self._redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def handle(self, stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        """Apply one entry exactly once to the database, then acknowledge it."""
        envelope = envelope_pb2.EventEnvelope.FromString(fields[b"envelope"])
        async with self._db.transaction() as conn:
            first_time = await conn.fetchval(
                "INSERT INTO processed_events (consumer_group, event_id) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING RETURNING true",
                self.group,
                envelope.event_id,
            )
            if first_time:
                await self._handler(conn, envelope)
        await self._redis.xack(stream, self.group, entry_id)

    async def _process(self, batches: Any) -> int:
        count = 0
        for stream, entries in batches or []:
            name = stream.decode() if isinstance(stream, bytes) else stream
            for entry_id, fields in entries:
                if not fields:  # deleted by trimming while pending
                    await self._redis.xack(name, self.group, entry_id)
                    continue
                try:
                    await self.handle(name, entry_id, fields)
                    count += 1
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if is_outage(exc):
                        # Not the entry's fault: it stays pending and is retried once the
                        # outage ends; it must not count towards the dead letter.
                        raise
                    log.error("event_handler_failed", stream=name, entry=entry_id.decode(),
                              group=self.group, error=repr(exc))
                    await self._dead_letter_if_exhausted(name, entry_id, fields)
        return count

    async def _dead_letter_if_exhausted(self, stream: str, entry_id: bytes,
                                        fields: dict[bytes, bytes]) -> None:
        pending = await self._redis.xpending_range(stream, self.group, min=entry_id,
                                                   max=entry_id, count=1)
        if pending and int(pending[0]["times_delivered"]) >= self._max_deliveries:
            dead: dict[Any, Any] = dict(fields)
            await self._redis.xadd(f"{stream}:dead:{self.group}", dead)
            await self._redis.xack(stream, self.group, entry_id)
            log.error("event_dead_lettered", stream=stream, entry=entry_id.decode(),
                      group=self.group)

    async def poll_once(self, block_ms: int | None = None) -> int:
        """Handle own pending entries, stale ones of others, then new ones."""
        handled = await self._process(await self._redis.xreadgroup(
            self.group, self._consumer, dict.fromkeys(self._streams, "0"), count=100))
        for stream in self._streams:
            claimed = await self._redis.xautoclaim(stream, self.group, self._consumer,
                                                   min_idle_time=self._claim_idle_ms,
                                                   start_id="0-0", count=100)
            handled += await self._process([(stream, claimed[1])])
        handled += await self._process(await self._redis.xreadgroup(
            self.group, self._consumer, dict.fromkeys(self._streams, ">"), count=100,
            block=self._block_ms if block_ms is None else block_ms))
        return handled

    async def run(self) -> None:
        recovering = False
        while True:
            try:
                if recovering:
                    # Redelivering pending entries into a database outage would count each
                    # attempt towards the dead letter: wait until PostgreSQL answers.
                    await self._db.ping()
                await self.ensure_groups()
                recovering = False
                while True:
                    # Traced only when the poll handled something: idle polls make no spans.
                    with traced_poll(f"consume {self.group}") as poll:
                        poll.did(await self.poll_once())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an outage must not kill the consumer; it retries
                log.warning("event_consumer_error", group=self.group, error=repr(exc))
                recovering = True
                await asyncio.sleep(1.0)

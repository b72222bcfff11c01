"""Many events into the outbox in one round trip (libs.outbox.add_event writes one).

A dispatcher batch changes the status of hundreds of messages; one INSERT per event would
cost a round trip each inside the batch's transaction.
"""

from __future__ import annotations

from brandclub.events.v1 import envelope_pb2
from libs.db import Connection


async def add_envelopes(conn: Connection, topic: str,
                        envelopes: list[envelope_pb2.EventEnvelope]) -> None:
    """Record the events in the caller's transaction; published only if it commits."""
    if not envelopes:
        return
    await conn.executemany("INSERT INTO outbox (event_id, topic, envelope) VALUES ($1, $2, $3)",
                           [(e.event_id, topic, e.SerializeToString()) for e in envelopes])
    # Delivered at commit only: wakes the relay without polling delay.
    await conn.execute("SELECT pg_notify('outbox_' || current_schema(), '')")

"""How long the runtime's de-duplication records are kept, and the job that prunes them.

`idempotency_keys` (the first answer of every request_id) and `processed_events` (every event a
consumer group handled) would otherwise grow for ever. Both are kept for
`DEDUP_RETENTION_DAYS` (7 by default): a retry with the same request_id, or a redelivered
event, inside that window is answered from the first result and applied once; after it the
record is gone. Clients and sagas retry within minutes, event redelivery within the stream's
retention, so a week leaves a wide margin. Every service with a database runs the pruning job
(`libs.service.start_service`) in small batches on an index, so it never holds long locks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from libs.db import Database
from libs.jobs import Loop, background_loop

DEFAULT_RETENTION_DAYS = 7.0
PRUNE_INTERVAL_SECONDS = 600.0
PRUNE_BATCH = 5_000

# (table, timestamp column, primary key): the records this module prunes.
_TABLES = (
    ("idempotency_keys", "created_at", "method, request_id"),
    ("processed_events", "processed_at", "consumer_group, event_id"),
)


async def prune_once(db: Database, retention: timedelta, *, now: datetime | None = None,
                     batch: int = PRUNE_BATCH) -> int:
    """Delete up to `batch` records older than `retention` from each table; the most deleted
    from one table (a full batch means there is more)."""
    cutoff = (now or datetime.now(UTC)) - retention
    most = 0
    async with db.connection() as conn:
        for table, stamp, key in _TABLES:
            deleted = await conn.fetchval(
                f"WITH gone AS (DELETE FROM {table} WHERE ({key}) IN ("
                f"SELECT {key} FROM {table} WHERE {stamp} < $1 ORDER BY {stamp} LIMIT $2) "
                "RETURNING 1) SELECT count(*) FROM gone", cutoff, batch)
            most = max(most, int(deleted))
    return most


def prune_loop(db: Database, retention_days: float) -> Loop:
    """The background job: prune every PRUNE_INTERVAL_SECONDS, at once again while behind."""
    retention = timedelta(days=retention_days)

    async def step() -> int:
        return await prune_once(db, retention)

    return background_loop("prune_dedup_records", step, interval_seconds=PRUNE_INTERVAL_SECONDS,
                           batch=PRUNE_BATCH)

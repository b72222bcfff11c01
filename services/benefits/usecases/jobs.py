"""Background jobs: expiry, release of pending points, recovery of redemptions.

Each pass works account by account in short transactions under the account's row lock and
only acts on what is due and not yet done, so passes are idempotent, several replicas may run
them at once, and a restart simply carries on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from libs.clock import system_clock
from libs.db import Database
from libs.jobs import Loop, background_loop
from services.benefits.adapters.points_repository import PointsRepository
from services.benefits.usecases import mall
from services.benefits.usecases.ledger import Ledger


async def expire_once(db: Database, now: datetime | None = None, batch: int = 200) -> int:
    """Write expiry entries for lots that are due; returns the accounts touched."""
    now = now or system_clock()
    async with db.connection() as conn:
        accounts = await PointsRepository(conn).accounts_with_due_lots(now, batch)
    for brand_id, account_id in accounts:
        async with db.transaction() as conn:
            await Ledger(conn).expire_due(brand_id, account_id, now)
    return len(accounts)


async def release_once(db: Database, now: datetime | None = None, batch: int = 200) -> int:
    """Make pending points whose time has come available; returns how many grants."""
    now = now or system_clock()
    async with db.connection() as conn:
        due = await PointsRepository(conn).due_pending(now, batch)
    released = 0
    for brand_id, account_id, entry_id in due:
        async with db.transaction() as conn:
            if await Ledger(conn).release(brand_id, account_id, entry_id, now) is not None:
                released += 1
    return released


async def recover_once(db: Database, older_than_seconds: float = 30.0) -> int:
    return await mall.recover(db, older_than_seconds=older_than_seconds)


def loop(name: str, job: Callable[[], Awaitable[int]], interval_seconds: float) -> Loop:
    """A background loop for Composition.background: run the job, wait, repeat."""
    return background_loop(f"benefits-{name}", job, interval_seconds=interval_seconds)

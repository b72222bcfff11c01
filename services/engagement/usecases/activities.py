"""Activities: create, change, publish, close, read and list an activity definition.

`ActivityDefinitions` holds the RPCs' whole flows (the coupon checks, the transaction run once
per request_id, the cache and the lottery's Redis after commit); the functions above it are
the steps that run inside the transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from libs.db import Connection
from libs.errors import FailedPrecondition, InvalidArgument, require
from libs.idempotency import CommitOnce
from libs.paging import decode_time_and_id, keyset_page, page_size, time_and_id
from services.engagement.adapters.postgres import ActivityRepository, ParticipationRepository
from services.engagement.domain.activities import (
    Activity,
    ActivitySpec,
    ActivityState,
    Owner,
    OwnerKind,
    check_actor,
)
from services.engagement.domain.activity_kinds import ActivityKind, LotteryConfig, LotteryMode
from services.engagement.domain.changes import ChangeContext, check_change
from services.engagement.domain.participation import commitment, new_seed
from services.engagement.usecases.context import get_activity, new_id
from services.engagement.usecases.lottery import LotteryDraws


async def write_new_activity(conn: Connection, brand_id: str, owner: Owner, spec: ActivitySpec,
                          publish: bool, now: datetime) -> Activity:
    brand_id = require(brand_id, "brand_id")
    if owner.kind is OwnerKind.ISV_APP:
        require(owner.owner_id, "owner.id")
    else:
        owner = Owner(OwnerKind.BRAND, brand_id)
    if publish and spec.ends_at <= now:
        raise InvalidArgument("spec.end_time is in the past: nothing to publish",
                              field="spec.end_time", reason="END_TIME_IN_PAST")
    activity = Activity(
        activity_id=new_id("act"), brand_id=brand_id, kind=spec.kind,
        state=ActivityState.SCHEDULED if publish else ActivityState.DRAFT, title=spec.title,
        starts_at=spec.starts_at, ends_at=spec.ends_at, created_at=now, owner=owner,
        spec=spec, version=1, updated_at=now)
    await ActivityRepository(conn).add(activity)
    await _after_definition(conn, activity)
    return activity


async def _after_definition(conn: Connection, activity: Activity) -> None:
    """Keep the per-kind tables in step with the definition."""
    config = activity.definition.config
    repo = ParticipationRepository(conn)
    if isinstance(config, LotteryConfig):
        await repo.add_prizes(activity.brand_id, activity.activity_id,
                              [(p.prize_id, p.stock) for p in config.prizes])
        if config.mode is LotteryMode.KOI:
            seed = new_seed()
            await repo.add_koi(activity.brand_id, activity.activity_id, seed, commitment(seed))


async def write_update(conn: Connection, brand_id: str, activity_id: str,
                          actor: Owner | None, spec: ActivitySpec, now: datetime) -> Activity:
    activity = await get_activity(conn, brand_id, activity_id, for_update=True)
    check_actor(activity, actor)
    counts = await ParticipationRepository(conn).prize_counts(activity.activity_id)
    check_change(activity, spec, ChangeContext(now, {k: v[1] for k, v in counts.items()}))
    updated = replace(activity, spec=spec, title=spec.title, starts_at=spec.starts_at,
                      ends_at=spec.ends_at, version=activity.version + 1, updated_at=now)
    await ActivityRepository(conn).save(updated)
    await _after_definition(conn, updated)
    return updated


async def write_publish(conn: Connection, brand_id: str, activity_id: str,
                           actor: Owner | None, now: datetime) -> Activity:
    activity = await get_activity(conn, brand_id, activity_id, for_update=True)
    check_actor(activity, actor)
    if activity.state is not ActivityState.DRAFT:
        raise FailedPrecondition(f"activity {activity_id} is not a draft",
                                 reason="ACTIVITY_NOT_DRAFT",
                                 metadata={"state": activity.state_at(now).value})
    if activity.ends_at <= now:
        raise FailedPrecondition("the activity's end time has passed",
                                 reason="END_TIME_IN_PAST", metadata={"field": "spec.end_time"})
    updated = replace(activity, state=ActivityState.SCHEDULED, version=activity.version + 1,
                      updated_at=now)
    await ActivityRepository(conn).save(updated)
    return updated


async def write_close(conn: Connection, brand_id: str, activity_id: str,
                         actor: Owner | None, now: datetime) -> Activity:
    activity = await get_activity(conn, brand_id, activity_id, for_update=True)
    check_actor(activity, actor)
    if activity.state_at(now) is ActivityState.CLOSED:
        raise FailedPrecondition(f"activity {activity_id} is already closed",
                                 reason="ACTIVITY_CLOSED")
    updated = replace(activity, state=ActivityState.CLOSED, version=activity.version + 1,
                      updated_at=now, closed_at=now)
    await ActivityRepository(conn).save(updated)
    return updated


async def read_page(conn: Connection, brand_id: str, requested_size: int, token: str, *,
                    now: datetime, state: ActivityState | None = None,
                    kind: ActivityKind | None = None, window_start: datetime | None = None,
                    window_end: datetime | None = None) -> tuple[list[Activity], str]:
    brand_id = require(brand_id, "brand_id")
    size = page_size(requested_size)
    if window_start and window_end and window_end <= window_start:
        raise InvalidArgument("window_end_time must be after window_start_time",
                              field="window_end_time")
    # A token goes on only with the filters of the request that issued it.
    filters = {"brand_id": brand_id, "state": state, "kind": kind,
               "window_start": window_start, "window_end": window_end}
    after = decode_time_and_id(token, filters=filters)
    rows = await ActivityRepository(conn).page(brand_id, size + 1, after, now=now, state=state,
                                               kind=kind, window_start=window_start,
                                               window_end=window_end)
    return keyset_page(rows, size, lambda a: time_and_id(a.created_at, a.activity_id),
                       filters=filters)


@dataclass(frozen=True)
class ActivityPage:
    """A page of activities, their states told at `at`."""
    activities: list[Activity]
    next_page_token: str
    at: datetime


class ActivityDefinitions(LotteryDraws):
    """The activity RPCs, each one whole flow: checks that need other services first, then
    the change in one transaction (once per request_id), then this process's cache forgets
    the activity (and a lottery's Redis stock is rebuilt)."""

    async def create_activity(self, brand_id: str, owner: Owner, spec: ActivitySpec, publish: bool,
                     once: CommitOnce[Activity, Activity]) -> Activity:
        """CreateActivity: every coupon template the spec names is the brand's, then the
        activity and its per-kind rows are written."""
        now = self.clock()
        await self.check_references(brand_id, spec)
        return await once(lambda conn: write_new_activity(conn, brand_id, owner, spec, publish,
                                                       now))

    async def update_activity(self, brand_id: str, activity_id: str, actor: Owner | None,
                     spec: ActivitySpec, once: CommitOnce[Activity, Activity]) -> Activity:
        """UpdateActivity: the change the activity's state allows; a lottery's Redis takes
        PostgreSQL's stock again (it may have moved)."""
        now = self.clock()
        await self.check_references(brand_id, spec)
        updated = await once(lambda conn: write_update(conn, brand_id, activity_id, actor,
                                                          spec, now))
        self.forget(brand_id, activity_id)
        if updated.kind is ActivityKind.LOTTERY:
            await self.reconcile(brand_id, activity_id)
        return updated

    async def publish_activity(self, brand_id: str, activity_id: str, actor: Owner | None,
                      once: CommitOnce[Activity, Activity]) -> Activity:
        """PublishActivity: a draft becomes scheduled (live from its start time)."""
        return await self._change(brand_id, activity_id, once, lambda conn, now: (
            write_publish(conn, brand_id, activity_id, actor, now)))

    async def close_activity(self, brand_id: str, activity_id: str, actor: Owner | None,
                    once: CommitOnce[Activity, Activity]) -> Activity:
        """CloseActivity: ends the activity now, before its end time."""
        return await self._change(brand_id, activity_id, once, lambda conn, now: (
            write_close(conn, brand_id, activity_id, actor, now)))

    async def _change(self, brand_id: str, activity_id: str, once: CommitOnce[Activity, Activity],
                      step: Callable[[Connection, datetime], Awaitable[Activity]]) -> Activity:
        now = self.clock()
        changed = await once(lambda conn: step(conn, now))
        self.forget(brand_id, activity_id)
        return changed

    async def read_activity(self, brand_id: str, activity_id: str) -> tuple[Activity, datetime]:
        """GetActivity: the activity, and the moment its state is told at."""
        now = self.clock()
        async with self.db.connection() as conn:
            return await get_activity(conn, brand_id, activity_id), now

    async def list_activities(self, brand_id: str, requested_size: int, token: str, *,
                   state: ActivityState | None, kind: ActivityKind | None,
                   window_start: datetime | None,
                   window_end: datetime | None) -> ActivityPage:
        """ListActivities: the brand's activities, newest first, filtered and paged."""
        now = self.clock()
        async with self.db.connection() as conn:
            page, next_token = await read_page(
                conn, brand_id, requested_size, token, now=now, state=state, kind=kind,
                window_start=window_start, window_end=window_end)
        return ActivityPage(page, next_token, now)

"""Activities: create, change, publish, close, read and list an activity definition."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from libs.db import Connection
from libs.errors import FailedPrecondition, InvalidArgument, found, require
from libs.paging import decode_page_token, encode_page_token, page_size
from services.engagement.adapters.postgres import ActivityRepository, ParticipationRepository
from services.engagement.domain.activities import (
    Activity,
    ActivityKind,
    ActivitySpec,
    ActivityState,
    ChangeContext,
    LotteryConfig,
    LotteryMode,
    Owner,
    OwnerKind,
    check_actor,
    check_change,
)
from services.engagement.domain.participation import commitment, new_seed


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


async def get_activity(conn: Connection, brand_id: str, activity_id: str, *,
                       for_update: bool = False) -> Activity:
    activity = await ActivityRepository(conn).get(require(brand_id, "brand_id"),
                                                  require(activity_id, "activity_id"),
                                                  for_update=for_update)
    return found(activity, f"activity {activity_id}", reason="ACTIVITY_NOT_FOUND",
                 activity_id=activity_id)


async def create_activity(conn: Connection, brand_id: str, owner: Owner, spec: ActivitySpec,
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


async def update_activity(conn: Connection, brand_id: str, activity_id: str,
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


async def publish_activity(conn: Connection, brand_id: str, activity_id: str,
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


async def close_activity(conn: Connection, brand_id: str, activity_id: str,
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


async def list_activities(conn: Connection, brand_id: str, requested_size: int, token: str, *,
                          now: datetime, state: ActivityState | None = None,
                          kind: ActivityKind | None = None,
                          window_start: datetime | None = None,
                          window_end: datetime | None = None) -> tuple[list[Activity], str]:
    brand_id = require(brand_id, "brand_id")
    size = page_size(requested_size)
    if window_start and window_end and window_end <= window_start:
        raise InvalidArgument("window_end_time must be after window_start_time",
                              field="window_end_time")
    position = decode_page_token(token, ("t", "id"))
    after = (datetime.fromisoformat(position["t"]), position["id"]) if position else None
    rows = await ActivityRepository(conn).page(brand_id, size + 1, after, now=now, state=state,
                                               kind=kind, window_start=window_start,
                                               window_end=window_end)
    page, more = rows[:size], len(rows) > size
    next_token = (encode_page_token({"t": page[-1].created_at.isoformat(),
                                     "id": page[-1].activity_id}) if more else "")
    return page, next_token

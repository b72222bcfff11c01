"""The context every engagement use case shares: the participant of an activity, the one
read of an activity by id, and the ports, cache and clock the orchestrating use cases hold."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

from libs.clock import Clock
from libs.db import Connection, Database
from libs.errors import InvalidArgument, found, require
from services.engagement.adapters.postgres import ActivityRepository
from services.engagement.adapters.redis_lottery import LotteryCache
from services.engagement.domain.activities import Activity, ActivitySpec
from services.engagement.domain.activity_kinds import ActivityKind
from services.engagement.domain.audience import MemberInfo, check_audience
from services.engagement.domain.spec_form import coupon_references
from services.engagement.ports import BenefitsPort, MembershipPort
from services.engagement.usecases.caches import ActivityCache

TOPIC = "engagement"
PRODUCER = "engagement"


def new_id(prefix: str) -> str:
    """A new random id with its kind as prefix (`act_…`, `drw_…`)."""
    return f"{prefix}_{uuid.uuid4().hex}"


async def get_activity(conn: Connection, brand_id: str, activity_id: str, *,
                       for_update: bool = False) -> Activity:
    """The brand's activity, or NotFound ACTIVITY_NOT_FOUND (another brand's reads as
    absent); `for_update` locks its row for the caller's transaction."""
    activity = await ActivityRepository(conn).get(require(brand_id, "brand_id"),
                                                  require(activity_id, "activity_id"),
                                                  for_update=for_update)
    return found(activity, f"activity {activity_id}", reason="ACTIVITY_NOT_FOUND",
                 activity_id=activity_id)


@dataclass(frozen=True)
class Participant:
    activity: Activity
    account_id: str
    time_zone: str
    member: MemberInfo | None

    @property
    def brand_id(self) -> str:
        return self.activity.brand_id

    @property
    def activity_id(self) -> str:
        return self.activity.activity_id


class EngagementContext:
    """What every engagement use case works with: the database, the lottery's Redis, the
    benefits and membership ports, the clock, and the activities read through a cache."""

    def __init__(self, db: Database, cache: LotteryCache, benefits: BenefitsPort,
                 membership: MembershipPort, clock: Clock, *,
                 saga_grace_seconds: float = 10.0) -> None:
        self.db = db
        self.cache = cache
        self.benefits = benefits
        self.membership = membership
        self.clock = clock
        self.saga_grace_seconds = saga_grace_seconds
        self._reconcile_locks: dict[str, asyncio.Lock] = {}
        self._activities = ActivityCache(self._read_activity)
        self._tasks: set[asyncio.Task[None]] = set()

    async def activity(self, brand_id: str, activity_id: str) -> Activity:
        """An activity, cached for ACTIVITY_CACHE_SECONDS on the hot paths (this process
        forgets it at once when it changes it)."""
        return await self._activities.get(brand_id, activity_id)

    async def _read_activity(self, brand_id: str, activity_id: str) -> Activity:
        async with self.db.connection() as conn:
            return await get_activity(conn, brand_id, activity_id)

    async def check_references(self, brand_id: str, spec: ActivitySpec) -> None:
        """Every coupon template the spec names (prizes, rewards, gifts) is one of the brand's
        own in benefits, checked before it is saved; another brand's id reads as absent there
        and is refused the same way, naming the field."""
        brand_id = require(brand_id, "brand_id")
        checked: set[str] = set()
        for field_path, template_id in coupon_references(spec):
            if template_id in checked:
                continue
            if not await self.benefits.coupon_template_exists(brand_id, template_id):
                raise InvalidArgument(f"{field_path} names no coupon template of this brand",
                                      field=field_path, reason="COUPON_TEMPLATE_NOT_FOUND",
                                      metadata={"coupon_template_id": template_id})
            checked.add(template_id)

    def forget(self, brand_id: str, activity_id: str) -> None:
        self._activities.forget(brand_id, activity_id)

    async def participant(self, brand_id: str, activity_id: str, account_id: str,
                          kind: ActivityKind, now: datetime, *,
                          require_live: bool = True) -> Participant:
        account_id = require(account_id, "account_id")
        activity = await self.activity(require(brand_id, "brand_id"),
                                       require(activity_id, "activity_id"))
        activity.require_kind(kind)
        if require_live:
            activity.require_live(now)
        member = await self.membership.member(activity.brand_id, account_id)
        check_audience(activity.definition.audience_levels, member)
        return Participant(activity, account_id, await self.membership.time_zone(
            activity.brand_id), member)

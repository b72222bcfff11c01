"""Entering members into journeys: one entry under the journey's entry rule, and the
daily scheduler for scheduled triggers (birthday, repurchase due, points expiring)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from libs.clock import Clock
from libs.db import Connection, Database
from libs.errors import DomainError, InvalidArgument
from libs.jobs import background_loop
from libs.logging import get_logger
from services.messaging.adapters.journeys_repository import JourneysRepository
from services.messaging.adapters.member_facts_repository import MemberFactsRepository
from services.messaging.domain.channels import new_id
from services.messaging.domain.journeys import Journey, Trigger, TriggerFacts
from services.messaging.ports import AudienceSource, BenefitsPort, BrandDirectory

log = get_logger(__name__)


async def enter(conn: Connection, journey: Journey, account_id: str, event_id: str,
                facts: TriggerFacts, now: datetime) -> bool:
    """Start a run for the member unless the journey's entry rule refuses it."""
    repo = JourneysRepository(conn)
    if journey.allow_reentry:
        allowed = not await repo.has_active_run(journey.journey_id, account_id)
    else:
        allowed = await repo.claim_first_entry(journey.journey_id, account_id)
    if not allowed:
        await repo.record_refusal(journey.journey_id, event_id)
        return False
    return await repo.add_run(new_id("run"), journey, account_id, event_id, facts, now)


class JourneyScheduler:
    """Once per local day per scheduled journey: select its members (a membership segment
    snapshot, or benefits' accounts with points expiring) and enter them. A journey is marked
    done for the day only after every page; a crash re-runs the day, and the entry keys make
    the re-run enter nobody twice."""

    def __init__(self, db: Database, *, audience: AudienceSource, brands: BrandDirectory,
                 clock: Clock, benefits: BenefitsPort | None = None,
                 idle_seconds: float = 60.0) -> None:
        self._db = db
        self._audience = audience
        self._brands = brands
        self._benefits = benefits
        self._clock = clock
        self._idle_seconds = idle_seconds

    async def run(self) -> None:
        await background_loop("journey_scheduler", self.run_once,
                              interval_seconds=self._idle_seconds)()

    async def run_once(self) -> int:
        """Run every scheduled journey not yet run today; returns the members entered."""
        now = self._clock()
        entered = 0
        async with self._db.connection() as conn:
            journeys = await JourneysRepository(conn).scheduled_journeys()
        for journey, done_until in journeys:
            brand = await self._brands.brand(journey.brand_id)
            zone = ZoneInfo(brand.time_zone)
            today = now.astimezone(zone).date()
            if done_until is not None and done_until >= today:
                continue
            try:
                if journey.trigger is Trigger.POINTS_EXPIRING:
                    entered += await self._enter_points_expiring(journey, zone, today, now)
                else:
                    entered += await self._enter_segment(journey, today, now)
            except DomainError as exc:  # one journey's failure must not hold up the others
                log.warning("journey_schedule_failed", journey_id=journey.journey_id,
                            reason=exc.reason)
                continue
            async with self._db.transaction() as conn:
                await JourneysRepository(conn).mark_scheduled(journey.journey_id, today)
        return entered

    async def _enter_segment(self, journey: Journey, today: date, now: datetime) -> int:
        entered = 0
        snapshot_id = await self._audience.snapshot_segment(
            request_id=f"journey:{journey.journey_id}:{today.isoformat()}",
            brand_id=journey.brand_id, segment_id=journey.segment_id)
        token = ""
        while True:
            page = await self._audience.snapshot_page(journey.brand_id, snapshot_id, token)
            async with self._db.transaction() as conn:
                cancelled = await MemberFactsRepository(conn).cancelled(
                    journey.brand_id, [m.account_id for m in page.members])
                for member in page.members:
                    if member.account_id in cancelled:
                        continue
                    entered += await enter(
                        conn, journey, member.account_id,
                        journey.entry_key(today.isoformat(), member.account_id),
                        TriggerFacts(level=member.level), now)
            token = page.next_page_token
            if not token:
                break
        return entered

    async def _enter_points_expiring(self, journey: Journey, zone: ZoneInfo, today: date,
                                     now: datetime) -> int:
        """Members with available points expiring within the journey's days, each once per
        local day of their soonest expiry."""
        if self._benefits is None:
            raise InvalidArgument("benefits is not reachable from this process",
                                  field="benefits", reason="BENEFITS_UNAVAILABLE")
        entered = 0
        token = ""
        while True:
            page = await self._benefits.points_expiring_page(journey.brand_id,
                                                              journey.trigger_days, token)
            async with self._db.transaction() as conn:
                cancelled = await MemberFactsRepository(conn).cancelled(
                    journey.brand_id, [a.account_id for a in page.accounts])
                for account in page.accounts:
                    if account.account_id in cancelled:
                        continue
                    expiry_day = account.earliest_expire_at.astimezone(zone).date().isoformat()
                    entered += await enter(
                        conn, journey, account.account_id,
                        journey.entry_key(today.isoformat(), account.account_id, expiry_day),
                        TriggerFacts(expiring_points=account.points, expire_date=expiry_day),
                        now)
            token = page.next_page_token
            if not token:
                return entered

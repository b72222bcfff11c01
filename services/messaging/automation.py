"""Journeys and the membership events messaging reacts to.

`handle_membership_event` runs inside the EventConsumer's transaction (which de-duplicates by
event id): it keeps the cancelled-member and order projections and enters members into active
journeys. `JourneyRunner` advances runs whose time has come; every step's effect is committed
together with the run's new position, and side effects outside messaging (coupons, points) use
request ids derived from (run, step), so a crash and a re-run never apply anything twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from libs.db import Connection, Database, Record
from libs.errors import DomainError, InvalidArgument, NotFound, require
from libs.jobs import background_loop
from libs.logging import get_logger
from libs.protoconv import from_timestamp
from libs.sagas import Outcome, RetryPolicy, decide, saga_step
from services.messaging.adapters.journeys_repository import JourneysRepository
from services.messaging.adapters.postgres import MessagingRepository
from services.messaging.domain.channels import new_id
from services.messaging.domain.governance import consents_from_join
from services.messaging.domain.journeys import (
    Condition,
    Journey,
    StepKind,
    Trigger,
    TriggerFacts,
    branch_taken,
    next_of,
    validate_steps,
    validate_trigger_days,
)
from services.messaging.domain.messages import MessageStatus
from services.messaging.domain.templates import (
    BRAND_VARIABLES,
    TRIGGER_VARIABLES,
    require_variables,
)
from services.messaging.events import message_status_events
from services.messaging.ports import AudienceSource, BenefitsPort, BrandDirectory
from services.messaging.usecases import (
    get_template,
    message_row,
    unknown_variables,
)

log = get_logger(__name__)
Clock = Callable[[], datetime]
# The consent record's source when the decision was made while opening the card.
CARD_OPENING_SOURCE = "card_opening"
MAX_STEPS_PER_RUN_PASS = 100
# A journey step another service does not answer: retried with backoff from a minute, about
# eight times over some four hours, then the run stops 'failed' (libs.sagas).
JOURNEY_RETRY = RetryPolicy(max_attempts=8, base_seconds=60.0, cap_seconds=3600.0)
# Failed runs a journey report shows.
REPORT_FAILED_RUNS = 20
for _step in ("send", "branch", "issue_coupon", "grant_points"):
    saga_step("journey", _step, where="services.messaging.automation:JourneyRunner._apply",
              on_permanent=Outcome.DEAD_LETTER, on_exhausted=Outcome.DEAD_LETTER,
              retry=JOURNEY_RETRY,
              visible_in="the run ends 'failed' at the step with its reason: GetJourneyReport "
                         "failed / recent_failures")


async def check_journey_references(audience: AudienceSource, benefits: BenefitsPort,
                                   draft: Journey) -> None:
    """Every id a journey step names in another service is the brand's own, checked before
    it is saved: a coupon template (ISSUE_COUPON) in benefits, a segment (an IN_SEGMENT
    branch) in membership. Another brand's id reads as absent there, so it is refused the
    same way, naming the step's field (templates of SEND steps are checked in the save)."""
    brand_id = require(draft.brand_id, "journey.brand_id")
    for index, step in enumerate(draft.steps):
        place = f"journey.steps[{index}]"
        if (step.kind is StepKind.ISSUE_COUPON and step.coupon_template_id.strip()
                and not await benefits.coupon_template_exists(brand_id,
                                                              step.coupon_template_id)):
            raise InvalidArgument(
                f"{place}.coupon_template_id names no coupon template of this brand",
                field=f"{place}.coupon_template_id", reason="COUPON_TEMPLATE_NOT_FOUND",
                metadata={"coupon_template_id": step.coupon_template_id})
        if (step.condition is Condition.IN_SEGMENT and step.segment_id.strip()
                and not await audience.segment_exists(brand_id, step.segment_id)):
            raise InvalidArgument(f"{place}.segment_id names no segment of this brand",
                                  field=f"{place}.segment_id", reason="SEGMENT_NOT_FOUND",
                                  metadata={"segment_id": step.segment_id})


async def create_journey(conn: Connection, audience: AudienceSource, request_id: str,
                         draft: Journey, now: datetime) -> Journey:
    brand_id = require(draft.brand_id, "journey.brand_id")
    require(draft.name, "journey.name")
    validate_trigger_days(draft.trigger, draft.trigger_days)
    validate_steps(draft.steps)
    if not 0 <= draft.conversion_window_days <= 90:
        raise InvalidArgument("conversion_window_days must be between 1 and 90 (0: 7)",
                              field="journey.conversion_window_days", reason="OUT_OF_RANGE")
    for index, step in enumerate(draft.steps):
        if step.kind is StepKind.SEND:
            try:
                template = await get_template(conn, brand_id, step.template_id)
            except NotFound as missing:
                missing.metadata["field"] = f"journey.steps[{index}].template_id"
                raise
            unknown_variables(template, step.variables, f"journey.steps[{index}].variables")
            require_variables(template, [*BRAND_VARIABLES, *TRIGGER_VARIABLES, *step.variables],
                              f"journey.steps[{index}].template_id")
    segment_id = ""
    if draft.segment_selected:
        segment_id = await audience.create_trigger_segment(
            request_id=f"journey-segment:{request_id}", brand_id=brand_id,
            name=f"journey {draft.name}: {draft.trigger.value} {draft.trigger_days}",
            trigger=draft.trigger.value, days=draft.trigger_days)
    journey = replace(draft, journey_id=new_id("jny"), brand_id=brand_id, active=False,
                      conversion_window_days=draft.conversion_window_days or 7, created_at=now,
                      segment_id=segment_id)
    await JourneysRepository(conn).add_journey(journey)
    return journey


async def get_journey(conn: Connection, brand_id: str, journey_id: str) -> Journey:
    found = await JourneysRepository(conn).journey(require(brand_id, "brand_id"),
                                                    require(journey_id, "journey_id"))
    if found is None:
        raise NotFound(f"journey {journey_id} does not exist", reason="JOURNEY_NOT_FOUND",
                       metadata={"journey_id": journey_id})
    return found


async def set_journey_active(conn: Connection, brand_id: str, journey_id: str,
                             active: bool) -> Journey:
    journey = await get_journey(conn, brand_id, journey_id)
    await JourneysRepository(conn).set_journey_active(journey_id, active)
    return replace(journey, active=active)


@dataclass(frozen=True)
class FailedRun:
    run_id: str
    account_id: str
    step_id: str
    reason: str
    failed_at: datetime | None


@dataclass(frozen=True)
class JourneyReport:
    entered: int
    at_step: dict[str, int]
    converted: int
    exited: int
    entry_refused: int
    failed: int = 0
    recent_failures: tuple[FailedRun, ...] = ()


async def journey_report(conn: Connection, brand_id: str, journey_id: str) -> JourneyReport:
    journey = await get_journey(conn, brand_id, journey_id)
    repo = JourneysRepository(conn)
    entered, exited = await repo.run_totals(journey_id)
    at_step = await repo.active_runs_by_step(journey_id)
    converted = await repo.converted_runs(journey_id, journey.conversion_window_days)
    refused = await repo.refused_entries(journey_id)
    failed, recent = await repo.failed_runs(journey_id, REPORT_FAILED_RUNS)
    return JourneyReport(entered, at_step, converted, exited, refused, failed,
                         tuple(FailedRun(r["run_id"], r["account_id"], r["current_step_id"],
                                         r["last_error"], r["exited_at"]) for r in recent))


# --- entering journeys from membership events ------------------------------------------


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


async def handle_membership_event(conn: Connection, envelope: envelope_pb2.EventEnvelope,
                                  now: datetime) -> None:
    repo = MessagingRepository(conn)
    payload = envelope.payload
    trigger: Trigger | None = None
    facts = TriggerFacts()
    account_id = ""
    brand_id = envelope.brand_id
    if payload.Is(membership_events_pb2.MemberCancelled.DESCRIPTOR):
        cancelled = membership_events_pb2.MemberCancelled()
        payload.Unpack(cancelled)
        await repo.mark_cancelled(cancelled.brand_id, cancelled.account_id,
                                  from_timestamp(envelope.occur_time))
        await JourneysRepository(conn).exit_member_runs(cancelled.brand_id,
                                                        cancelled.account_id, now)
        return
    if payload.Is(membership_events_pb2.MemberJoined.DESCRIPTOR):
        joined = membership_events_pb2.MemberJoined()
        payload.Unpack(joined)
        await repo.clear_cancelled(joined.brand_id, joined.account_id)
        joined_at = from_timestamp(envelope.occur_time)
        for channel, purpose, granted in consents_from_join(joined.consent_purposes,
                                                            joined.offered_purposes):
            await repo.set_consent_unless_newer(joined.brand_id, joined.account_id, channel,
                                                purpose, granted, CARD_OPENING_SOURCE,
                                                joined_at)
        trigger, account_id = Trigger.CARD_OPENED, joined.account_id
        facts = TriggerFacts(level=joined.level)
    elif payload.Is(membership_events_pb2.MemberFollowed.DESCRIPTOR):
        followed = membership_events_pb2.MemberFollowed()
        payload.Unpack(followed)
        if followed.became_lv0:
            await repo.clear_cancelled(followed.brand_id, followed.account_id)
        return
    elif payload.Is(membership_events_pb2.OrderPaid.DESCRIPTOR):
        order = membership_events_pb2.OrderPaid()
        payload.Unpack(order)
        paid_at = (from_timestamp(order.paid_time) if order.HasField("paid_time")
                   else from_timestamp(envelope.occur_time))
        await repo.add_order(order.brand_id, order.order_id, order.account_id,
                             order.paid_cents, paid_at)
        trigger, account_id = Trigger.ORDER_PAID, order.account_id
        facts = TriggerFacts(order_cents=order.paid_cents)
    elif payload.Is(membership_events_pb2.CartItemAdded.DESCRIPTOR):
        cart = membership_events_pb2.CartItemAdded()
        payload.Unpack(cart)
        trigger, account_id = Trigger.CART_ADDED, cart.account_id
    elif payload.Is(membership_events_pb2.MemberTierChanged.DESCRIPTOR):
        tier = membership_events_pb2.MemberTierChanged()
        payload.Unpack(tier)
        trigger, account_id = Trigger.TIER_CHANGED, tier.account_id
        facts = TriggerFacts(level=tier.to_level)
    if trigger is None or not account_id:
        return
    if await repo.cancelled(brand_id, [account_id]):
        return
    for journey in await JourneysRepository(conn).active_journeys(brand_id, trigger):
        await enter(conn, journey, account_id, envelope.event_id, facts, now)


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
                cancelled = await MessagingRepository(conn).cancelled(
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
                cancelled = await MessagingRepository(conn).cancelled(
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


class JourneyRunner:
    """Advances journey runs whose wake-up time has come."""

    def __init__(self, db: Database, *, benefits: BenefitsPort | None, clock: Clock,
                 audience: AudienceSource | None = None, batch_size: int = 100,
                 idle_seconds: float = 0.5) -> None:
        self._db = db
        self._benefits = benefits
        self._audience = audience
        self._clock = clock
        self._batch_size = batch_size
        self._idle_seconds = idle_seconds

    async def run(self) -> None:
        await background_loop("journey_runner", self.run_once,
                              interval_seconds=self._idle_seconds, batch=1)()

    async def run_once(self) -> int:
        now = self._clock()
        async with self._db.transaction() as conn:
            runs = await JourneysRepository(conn).lock_due_runs(now, self._batch_size)
            for run in runs:
                try:
                    async with conn.transaction():  # a savepoint: one run's failure its own
                        failure: Exception | None = None
                        try:
                            await self._advance(conn, run, now)
                        except Exception as exc:  # the steps done before it stay done
                            failure = exc
                        if failure is not None:
                            await self._failed_attempt(conn, run, failure, now)
                except Exception as exc:  # the database refused: the run's pass is undone
                    async with conn.transaction():
                        await self._failed_attempt(conn, run, exc, now)
        return len(runs)

    @staticmethod
    async def _failed_attempt(conn: Connection, run: Record, error: BaseException,
                              now: datetime) -> None:
        """A step failed: retried with backoff while transient and under JOURNEY_RETRY, else
        the run stops 'failed' with the reason (never retried every minute forever)."""
        decision = decide(error, int(run["attempts"]) + 1, JOURNEY_RETRY)
        repo = JourneysRepository(conn)
        if decision.retry:
            log.warning("journey_step_retry", run_id=run["run_id"], reason=decision.reason,
                        attempts=int(run["attempts"]) + 1)
            await repo.retry_run_later(run["run_id"], decision.reason,
                                       now + timedelta(seconds=decision.delay))
        else:
            log.error("journey_run_failed", run_id=run["run_id"], reason=decision.reason)
            await repo.fail_run(run["run_id"], decision.reason, now)

    async def _advance(self, conn: Connection, run: Record, now: datetime) -> None:
        repo = JourneysRepository(conn)
        journey = await repo.journey_by_id(run["journey_id"])
        assert journey is not None
        run_id, step_id = run["run_id"], run["current_step_id"]
        facts = TriggerFacts.from_json(json.loads(run["facts"]))
        retried = bool(run["attempts"])
        for _ in range(MAX_STEPS_PER_RUN_PASS):
            if not step_id:
                await repo.exit_run(run_id, "COMPLETED", now)
                return
            step = journey.step(step_id)
            done = await repo.step_outcome(run_id, step_id)
            taken: bool | None = None
            if step.kind is StepKind.WAIT:
                if done is None:
                    wake = now + timedelta(minutes=step.wait_minutes)
                    await repo.log_step(run_id, step_id, "waiting", now)
                    await repo.wait_at_step(run_id, step_id, wake)
                    return
            elif step.kind is StepKind.EXIT:
                await repo.log_step(run_id, step_id, "exit", now)
                await repo.exit_run(run_id, "EXIT_STEP", now)
                return
            elif done is None:
                taken = await self._apply(conn, journey, run, step_id, facts, now)
                if retried:  # the step that failed before went through
                    await repo.clear_run_attempts(run_id)
                    retried = False
                await repo.log_step(run_id, step_id,
                                    "true" if taken else "false" if taken is False else "done",
                                    now)
            else:
                taken = done == "true"
            step_id = next_of(step, taken)
            await repo.move_to_step(run_id, step_id)
        await repo.wake_at(run_id, now)

    async def _apply(self, conn: Connection, journey: Journey, run: Record, step_id: str,
                     facts: TriggerFacts, now: datetime) -> bool | None:
        step = journey.step(step_id)
        account_id, brand_id, run_id = run["account_id"], run["brand_id"], run["run_id"]
        request_id = f"journey:{run_id}:{step_id}"
        if step.kind is StepKind.BRANCH:
            ordered = await MessagingRepository(conn).ordered_between(
                brand_id, account_id, run["entered_at"], now + timedelta(microseconds=1))
            in_segment = False
            if step.condition is Condition.IN_SEGMENT:
                if self._audience is None:
                    raise InvalidArgument("membership is not reachable from this process",
                                          field="membership", reason="MEMBERSHIP_UNAVAILABLE")
                in_segment = await self._audience.member_in_segment(brand_id, step.segment_id,
                                                                    account_id)
            return branch_taken(step, facts, ordered, in_segment)
        if step.kind is StepKind.SEND:
            template = await get_template(conn, brand_id, step.template_id)
            repo = MessagingRepository(conn)
            await repo.add_messages([message_row(
                brand_id=brand_id, account_id=account_id, template=template,
                variables={**facts.variables(), **step.variables}, dedupe_key=request_id,
                not_before=now, now=now, journey_id=journey.journey_id)])
            message = await repo.message_by_dedupe(brand_id, request_id)
            assert message is not None
            await message_status_events(conn, [message], MessageStatus.QUEUED)
            return None
        if self._benefits is None:
            raise InvalidArgument("benefits is not reachable from this process",
                                  field="benefits", reason="BENEFITS_UNAVAILABLE")
        if step.kind is StepKind.ISSUE_COUPON:
            await self._benefits.issue_coupon(request_id=request_id, brand_id=brand_id,
                                              account_id=account_id,
                                              coupon_template_id=step.coupon_template_id)
        elif step.kind is StepKind.GRANT_POINTS:
            await self._benefits.grant_points(request_id=request_id, brand_id=brand_id,
                                              account_id=account_id, points=step.points)
        return None

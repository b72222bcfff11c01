"""The journey runner: advances runs whose wake-up time has come.

Every step's effect is committed together with the run's new position, and side effects
outside messaging (coupons, points) use request ids derived from (run, step), so a crash and a
re-run never apply anything twice. A step that fails is retried with backoff, then the run
stops 'failed' (libs.sagas)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from libs.clock import Clock
from libs.db import Connection, Database, Record
from libs.errors import InvalidArgument
from libs.jobs import background_loop
from libs.logging import get_logger
from libs.sagas import Outcome, RetryPolicy, decide, saga_step
from services.messaging.adapters.journeys_repository import JourneysRepository
from services.messaging.adapters.member_facts_repository import MemberFactsRepository
from services.messaging.adapters.messages_repository import MessagesRepository
from services.messaging.domain.journeys import (
    Condition,
    Journey,
    StepKind,
    TriggerFacts,
    branch_taken,
    next_of,
)
from services.messaging.domain.messages import MessageStatus
from services.messaging.ports import AudienceSource, BenefitsPort
from services.messaging.usecases.messages import message_row
from services.messaging.usecases.status_events import message_status_events
from services.messaging.usecases.templates import get_template

log = get_logger(__name__)
MAX_STEPS_PER_RUN_PASS = 100
# A journey step another service does not answer: retried with backoff from a minute, about
# eight times over some four hours, then the run stops 'failed' (libs.sagas).
JOURNEY_RETRY = RetryPolicy(max_attempts=8, base_seconds=60.0, cap_seconds=3600.0)
for _step in ("send", "branch", "issue_coupon", "grant_points"):
    saga_step("journey", _step,
              where="services.messaging.usecases.journey_runner:JourneyRunner._apply",
              on_permanent=Outcome.DEAD_LETTER, on_exhausted=Outcome.DEAD_LETTER,
              retry=JOURNEY_RETRY,
              visible_in="the run ends 'failed' at the step with its reason: GetJourneyReport "
                         "failed / recent_failures")


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
            ordered = await MemberFactsRepository(conn).ordered_between(
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
            await MessagesRepository(conn).add_messages([message_row(
                brand_id=brand_id, account_id=account_id, template=template,
                variables={**facts.variables(), **step.variables}, dedupe_key=request_id,
                not_before=now, now=now, journey_id=journey.journey_id)])
            message = await MessagesRepository(conn).message_by_dedupe(brand_id, request_id)
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

"""Journeys: checking and saving one, activating it, listing them and the report."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from libs.db import Connection
from libs.errors import InvalidArgument, NotFound, found, require
from libs.idempotency import CommitOnce, Reply
from libs.paging import decode_time_and_id, keyset_page, page_size, time_and_id
from services.messaging.adapters.journeys_repository import JourneysRepository
from services.messaging.domain.channels import new_id
from services.messaging.domain.journeys import (
    Condition,
    Journey,
    StepKind,
    validate_steps,
    validate_trigger_days,
)
from services.messaging.domain.templates import (
    BRAND_VARIABLES,
    TRIGGER_VARIABLES,
    require_variables,
)
from services.messaging.ports import AudienceSource, BenefitsPort
from services.messaging.usecases.context import MessagingContext
from services.messaging.usecases.templates import get_template, unknown_variables

# Failed runs a journey report shows.
REPORT_FAILED_RUNS = 20


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


async def create_journey(app: MessagingContext, commit_once: CommitOnce[Journey, Reply],
                         request_id: str, draft: Journey) -> Reply:
    """Check the ids the steps name in other services, then save the journey (inactive)."""
    await check_journey_references(app.audience, app.benefits, draft)
    return await commit_once(lambda conn: _create(conn, app.audience, request_id, draft,
                                                  app.clock()))


async def _create(conn: Connection, audience: AudienceSource, request_id: str,
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
    journey = await JourneysRepository(conn).journey(require(brand_id, "brand_id"),
                                                     require(journey_id, "journey_id"))
    return found(journey, f"journey {journey_id}", reason="JOURNEY_NOT_FOUND",
                 journey_id=journey_id)


async def read_journey(app: MessagingContext, brand_id: str, journey_id: str) -> Journey:
    async with app.db.connection() as conn:
        return await get_journey(conn, brand_id, journey_id)


async def set_journey_active(app: MessagingContext, commit_once: CommitOnce[Journey, Reply],
                             brand_id: str, journey_id: str, active: bool) -> Reply:
    async def switch(conn: Connection) -> Journey:
        journey = await get_journey(conn, brand_id, journey_id)
        await JourneysRepository(conn).set_journey_active(journey_id, active)
        return replace(journey, active=active)

    return await commit_once(switch)


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


async def journey_report(app: MessagingContext, brand_id: str, journey_id: str
                         ) -> JourneyReport:
    async with app.db.connection() as conn:
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


async def list_journeys(app: MessagingContext, brand_id: str, requested_size: int, token: str,
                        active: bool | None) -> tuple[list[Journey], str]:
    """One page of the brand's journeys (active or not, if given), newest first."""
    filters = {"brand_id": require(brand_id, "brand_id"),
               "active": "" if active is None else active}
    size = page_size(requested_size)
    after = decode_time_and_id(token, filters=filters)
    async with app.db.connection() as conn:
        rows = await JourneysRepository(conn).journeys_page(brand_id, size + 1, after, active)
    return keyset_page(rows, size, lambda j: time_and_id(j.created_at, j.journey_id),
                       filters=filters)

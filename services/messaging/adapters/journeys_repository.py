"""asyncpg repository for journeys: definitions, runs, the step log, entries and refusals."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime

from libs.db import Connection, Record
from services.messaging.domain.journeys import (
    SCHEDULED_TRIGGERS,
    Condition,
    Journey,
    RunStatus,
    Step,
    StepKind,
    Trigger,
    TriggerFacts,
)


def steps_to_json(steps: Sequence[Step]) -> str:
    return json.dumps([{
        "step_id": s.step_id, "kind": s.kind.value, "next_step_id": s.next_step_id,
        "wait_minutes": s.wait_minutes,
        "condition": s.condition.value if s.condition else None, "number": s.number,
        "on_true_step_id": s.on_true_step_id, "on_false_step_id": s.on_false_step_id,
        "template_id": s.template_id, "variables": s.variables,
        "coupon_template_id": s.coupon_template_id, "points": s.points,
        "segment_id": s.segment_id,
    } for s in steps])


def steps_from_json(raw: str) -> list[Step]:
    return [Step(d["step_id"], StepKind(d["kind"]), d["next_step_id"], d["wait_minutes"],
                 Condition(d["condition"]) if d["condition"] else None, d["number"],
                 d["on_true_step_id"], d["on_false_step_id"], d["template_id"],
                 dict(d["variables"]), d["coupon_template_id"], d["points"],
                 d.get("segment_id", ""))
            for d in json.loads(raw)]


def journey_from_row(r: Record) -> Journey:
    return Journey(r["journey_id"], r["brand_id"], r["name"], Trigger(r["trigger"]),
                   r["allow_reentry"], steps_from_json(r["steps"]), r["active"],
                   r["conversion_window_days"], r["created_at"], r["trigger_days"],
                   r["segment_id"])


class JourneysRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- definitions -------------------------------------------------------------------

    async def add_journey(self, j: Journey) -> None:
        await self.conn.execute(
            "INSERT INTO journeys (journey_id, brand_id, name, trigger, allow_reentry, steps, "
            "active, conversion_window_days, created_at, trigger_days, segment_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            j.journey_id, j.brand_id, j.name, j.trigger.value, j.allow_reentry,
            steps_to_json(j.steps), j.active, j.conversion_window_days, j.created_at,
            j.trigger_days, j.segment_id)

    async def journey(self, brand_id: str, journey_id: str) -> Journey | None:
        r = await self.conn.fetchrow(
            "SELECT * FROM journeys WHERE brand_id = $1 AND journey_id = $2",
            brand_id, journey_id)
        return journey_from_row(r) if r else None

    async def journeys_page(self, brand_id: str, limit: int,
                            after: tuple[datetime, str] | None,
                            active: bool | None) -> list[Journey]:
        """The brand's journeys newest first, keyset-paged on (created_at, journey_id)."""
        rows = await self.conn.fetch(
            "SELECT * FROM journeys WHERE brand_id = $1 "
            "AND ($2::timestamptz IS NULL OR (created_at, journey_id) < ($2, $3)) "
            "AND ($5::boolean IS NULL OR active = $5) "
            "ORDER BY created_at DESC, journey_id DESC LIMIT $4",
            brand_id, after[0] if after else None, after[1] if after else "", limit, active)
        return [journey_from_row(r) for r in rows]

    async def journey_by_id(self, journey_id: str) -> Journey | None:
        r = await self.conn.fetchrow("SELECT * FROM journeys WHERE journey_id = $1", journey_id)
        return journey_from_row(r) if r else None

    async def retry_run_later(self, run_id: str, error: str, wake_at: datetime) -> None:
        """Count a failed attempt at the run's current step and wake it again later."""
        await self.conn.execute(
            "UPDATE journey_runs SET attempts = attempts + 1, last_error = $2, wake_at = $3 "
            "WHERE run_id = $1 AND status = 'active'", run_id, error, wake_at)

    async def fail_run(self, run_id: str, error: str, now: datetime) -> None:
        """Stop a run for good at its current step, with the reason (the dead letter)."""
        await self.conn.execute(
            "UPDATE journey_runs SET status = 'failed', attempts = attempts + 1, "
            "last_error = $2, wake_at = NULL, exited_at = $3, exit_reason = 'STEP_FAILED' "
            "WHERE run_id = $1 AND status = 'active'", run_id, error, now)

    async def clear_run_attempts(self, run_id: str) -> None:
        """A step went through: the next step starts with its own attempts."""
        await self.conn.execute(
            "UPDATE journey_runs SET attempts = 0, last_error = '' "
            "WHERE run_id = $1 AND attempts > 0", run_id)

    async def failed_runs(self, journey_id: str, limit: int) -> tuple[int, list[Record]]:
        """How many runs of the journey failed, and the latest ones."""
        count = await self.conn.fetchval(
            "SELECT count(*) FROM journey_runs WHERE journey_id = $1 AND status = 'failed'",
            journey_id)
        rows = await self.conn.fetch(
            "SELECT run_id, account_id, current_step_id, last_error, exited_at "
            "FROM journey_runs WHERE journey_id = $1 AND status = 'failed' "
            "ORDER BY exited_at DESC, run_id DESC LIMIT $2", journey_id, limit)
        return int(count or 0), list(rows)

    async def set_journey_active(self, journey_id: str, active: bool) -> None:
        await self.conn.execute("UPDATE journeys SET active = $2 WHERE journey_id = $1",
                                journey_id, active)

    async def scheduled_journeys(self) -> list[tuple[Journey, date | None]]:
        rows = await self.conn.fetch(
            "SELECT * FROM journeys WHERE active AND trigger = ANY($1) ORDER BY journey_id",
            [t.value for t in SCHEDULED_TRIGGERS])
        return [(journey_from_row(r), r["scheduled_until"]) for r in rows]

    async def mark_scheduled(self, journey_id: str, day: date) -> None:
        await self.conn.execute("UPDATE journeys SET scheduled_until = $2 WHERE journey_id = $1",
                                journey_id, day)

    async def active_journeys(self, brand_id: str, trigger: Trigger) -> list[Journey]:
        rows = await self.conn.fetch(
            "SELECT * FROM journeys WHERE brand_id = $1 AND trigger = $2 AND active "
            "ORDER BY journey_id", brand_id, trigger.value)
        return [journey_from_row(r) for r in rows]

    # --- entering ----------------------------------------------------------------------

    async def has_active_run(self, journey_id: str, account_id: str) -> bool:
        return bool(await self.conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM journey_runs WHERE journey_id = $1 "
            "AND account_id = $2 AND status = 'active')", journey_id, account_id))

    async def claim_first_entry(self, journey_id: str, account_id: str) -> bool:
        """Record the member's one entry into the journey; False when they entered before."""
        return bool(await self.conn.fetchval(
            "INSERT INTO journey_entries (journey_id, account_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING RETURNING true", journey_id, account_id))

    async def record_refusal(self, journey_id: str, event_id: str) -> None:
        await self.conn.execute(
            "INSERT INTO journey_refusals (journey_id, event_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING", journey_id, event_id)

    async def add_run(self, run_id: str, journey: Journey, account_id: str, event_id: str,
                      facts: TriggerFacts, now: datetime) -> bool:
        """Start a run at the journey's first step; False when the entry event has one."""
        return bool(await self.conn.fetchval(
            "INSERT INTO journey_runs (run_id, journey_id, brand_id, account_id, entry_event_id, "
            "status, current_step_id, wake_at, facts, entered_at) "
            "VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $7) "
            "ON CONFLICT (journey_id, entry_event_id) DO NOTHING RETURNING true",
            run_id, journey.journey_id, journey.brand_id, account_id, event_id,
            journey.steps[0].step_id, now,
            json.dumps(facts.to_json())))

    async def exit_member_runs(self, brand_id: str, account_id: str, now: datetime) -> None:
        """A member who leaves leaves every journey at once."""
        await self.conn.execute(
            "UPDATE journey_runs SET status = 'exited', exited_at = $3, "
            "exit_reason = 'MEMBER_CANCELLED' WHERE brand_id = $1 AND account_id = $2 "
            "AND status = 'active'", brand_id, account_id, now)

    # --- running -----------------------------------------------------------------------

    async def lock_due_runs(self, now: datetime, limit: int) -> list[Record]:
        """Active runs whose wake-up time has come, row-locked; runs locked elsewhere skipped."""
        return list(await self.conn.fetch(
            "SELECT * FROM journey_runs WHERE status = 'active' AND wake_at <= $1 "
            "ORDER BY wake_at LIMIT $2 FOR UPDATE SKIP LOCKED", now, limit))

    async def step_outcome(self, run_id: str, step_id: str) -> str | None:
        outcome = await self.conn.fetchval(
            "SELECT outcome FROM journey_step_log WHERE run_id = $1 AND step_id = $2",
            run_id, step_id)
        return None if outcome is None else str(outcome)

    async def log_step(self, run_id: str, step_id: str, outcome: str, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO journey_step_log (run_id, step_id, outcome, done_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", run_id, step_id, outcome, now)

    async def wait_at_step(self, run_id: str, step_id: str, wake_at: datetime) -> None:
        await self.conn.execute(
            "UPDATE journey_runs SET current_step_id = $2, wake_at = $3 "
            "WHERE run_id = $1", run_id, step_id, wake_at)

    async def move_to_step(self, run_id: str, step_id: str) -> None:
        await self.conn.execute("UPDATE journey_runs SET current_step_id = $2 WHERE run_id = $1",
                                run_id, step_id)

    async def wake_at(self, run_id: str, wake_at: datetime) -> None:
        await self.conn.execute("UPDATE journey_runs SET wake_at = $2 WHERE run_id = $1",
                                run_id, wake_at)

    async def exit_run(self, run_id: str, reason: str, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE journey_runs SET status = $2, current_step_id = '', wake_at = NULL, "
            "exited_at = $3, exit_reason = $4 WHERE run_id = $1",
            run_id, RunStatus.EXITED.value, now, reason)

    # --- reporting ---------------------------------------------------------------------

    async def run_totals(self, journey_id: str) -> tuple[int, int]:
        """How many runs the journey had, and how many exited."""
        totals = await self.conn.fetchrow(
            "SELECT count(*) AS entered, count(*) FILTER (WHERE status = 'exited') AS exited "
            "FROM journey_runs WHERE journey_id = $1", journey_id)
        assert totals is not None
        return int(totals["entered"]), int(totals["exited"])

    async def active_runs_by_step(self, journey_id: str) -> dict[str, int]:
        steps = await self.conn.fetch(
            "SELECT current_step_id, count(*) AS n FROM journey_runs "
            "WHERE journey_id = $1 AND status = 'active' GROUP BY current_step_id", journey_id)
        return {r["current_step_id"]: int(r["n"]) for r in steps}

    async def converted_runs(self, journey_id: str, window_days: int) -> int:
        """Runs whose member paid an order within the window after entering."""
        return int(await self.conn.fetchval(
            "SELECT count(*) FROM journey_runs r WHERE r.journey_id = $1 AND EXISTS ("
            "SELECT 1 FROM member_orders o WHERE o.brand_id = r.brand_id "
            "AND o.account_id = r.account_id AND o.paid_at > r.entered_at "
            "AND o.paid_at < r.entered_at + make_interval(days => $2))",
            journey_id, window_days))

    async def refused_entries(self, journey_id: str) -> int:
        return int(await self.conn.fetchval(
            "SELECT count(*) FROM journey_refusals WHERE journey_id = $1", journey_id))

"""Journeys: a trigger and a graph of steps that each member walks through."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from libs.errors import InvalidArgument, require

MAX_STEPS = 50
MAX_WAIT_MINUTES = 60 * 24 * 90


class Trigger(enum.Enum):
    CART_ADDED = "cart_added"
    ORDER_PAID = "order_paid"
    CARD_OPENED = "card_opened"
    TIER_CHANGED = "tier_changed"
    BIRTHDAY = "birthday"
    REPURCHASE_DUE = "repurchase_due"
    POINTS_EXPIRING = "points_expiring"


# Triggers that a daily schedule fires instead of an event: the first two select members
# through a membership segment, points expiring asks benefits for the brand's expiring lots.
SCHEDULED_TRIGGERS = (Trigger.BIRTHDAY, Trigger.REPURCHASE_DUE, Trigger.POINTS_EXPIRING)
SEGMENT_TRIGGERS = (Trigger.BIRTHDAY, Trigger.REPURCHASE_DUE)
MAX_TRIGGER_DAYS = {Trigger.BIRTHDAY: 366, Trigger.REPURCHASE_DUE: 3650,
                    Trigger.POINTS_EXPIRING: 366}


class StepKind(enum.Enum):
    WAIT = "wait"
    BRANCH = "branch"
    SEND = "send"
    ISSUE_COUPON = "issue_coupon"
    GRANT_POINTS = "grant_points"
    EXIT = "exit"


class Condition(enum.Enum):
    ORDERED_SINCE_ENTRY = "ordered_since_entry"
    LEVEL_AT_LEAST = "level_at_least"
    ORDER_CENTS_AT_LEAST = "order_cents_at_least"
    IN_SEGMENT = "in_segment"


class RunStatus(enum.Enum):
    ACTIVE = "active"
    EXITED = "exited"
    # Stopped at a step that failed for good (or past its retry bound), with the reason.
    FAILED = "failed"


@dataclass(frozen=True)
class Step:
    step_id: str
    kind: StepKind
    next_step_id: str = ""
    wait_minutes: int = 0
    condition: Condition | None = None
    number: int = 0
    on_true_step_id: str = ""
    on_false_step_id: str = ""
    template_id: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    coupon_template_id: str = ""
    points: int = 0
    segment_id: str = ""


@dataclass(frozen=True)
class Journey:
    journey_id: str
    brand_id: str
    name: str
    trigger: Trigger
    allow_reentry: bool
    steps: list[Step]
    active: bool
    conversion_window_days: int
    created_at: datetime
    trigger_days: int = 0
    segment_id: str = ""

    @property
    def scheduled(self) -> bool:
        return self.trigger in SCHEDULED_TRIGGERS

    @property
    def segment_selected(self) -> bool:
        """Whether a membership segment selects the members of this scheduled trigger."""
        return self.trigger in SEGMENT_TRIGGERS

    def entry_key(self, local_day: str, account_id: str, expiry_day: str = "") -> str:
        """The entry's de-duplication key for a scheduled trigger: a birthday enters once a
        year, a repurchase reminder once a day, points expiring once per local day on which
        the member's soonest expiring points expire (`expiry_day`), however many daily runs
        see them inside the window."""
        if self.trigger is Trigger.POINTS_EXPIRING:
            if not expiry_day:
                raise ValueError("points expiring entries are keyed by the expiry day")
            period = expiry_day
        else:
            period = local_day[:4] if self.trigger is Trigger.BIRTHDAY else local_day
        return f"scheduled:{self.trigger.value}:{period}:{account_id}"

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.step_id == step_id:
                return step
        raise KeyError(step_id)


def validate_trigger_days(trigger: Trigger, days: int) -> None:
    if trigger in SCHEDULED_TRIGGERS:
        if not 1 <= days <= MAX_TRIGGER_DAYS[trigger]:
            raise InvalidArgument(f"trigger_days must be between 1 and "
                                  f"{MAX_TRIGGER_DAYS[trigger]} for {trigger.value}",
                                  field="journey.trigger_days", reason="OUT_OF_RANGE")
    elif days:
        raise InvalidArgument(f"trigger_days is for scheduled triggers, not {trigger.value}",
                              field="journey.trigger_days", reason="NOT_APPLICABLE")


def validate_steps(steps: list[Step]) -> None:
    """Unique ids, known targets, the fields each kind needs, and no cycle."""
    if not steps:
        raise InvalidArgument("a journey needs at least one step", field="journey.steps",
                              reason="FIELD_REQUIRED")
    if len(steps) > MAX_STEPS:
        raise InvalidArgument(f"a journey has at most {MAX_STEPS} steps", field="journey.steps",
                              reason="TOO_MANY_STEPS")
    ids: dict[str, int] = {}
    for index, step in enumerate(steps):
        place = f"journey.steps[{index}]"
        require(step.step_id, f"{place}.step_id")
        if step.step_id in ids:
            raise InvalidArgument(f"step id {step.step_id} appears twice",
                                  field=f"{place}.step_id", reason="DUPLICATE_STEP_ID")
        ids[step.step_id] = index
    for index, step in enumerate(steps):
        place = f"journey.steps[{index}]"
        targets = ([step.on_true_step_id, step.on_false_step_id]
                   if step.kind is StepKind.BRANCH else [step.next_step_id])
        for target in targets:
            if target and target not in ids:
                raise InvalidArgument(f"step {step.step_id} goes to unknown step {target}",
                                      field=place, reason="UNKNOWN_STEP")
        if step.kind is StepKind.WAIT and not 1 <= step.wait_minutes <= MAX_WAIT_MINUTES:
            raise InvalidArgument("wait_minutes must be between 1 and 129600 (90 days)",
                                  field=f"{place}.wait_minutes", reason="OUT_OF_RANGE")
        if step.kind is StepKind.BRANCH and step.condition is None:
            raise InvalidArgument("a branch needs a condition", field=f"{place}.condition",
                                  reason="FIELD_REQUIRED")
        if step.condition is Condition.IN_SEGMENT:
            require(step.segment_id, f"{place}.segment_id")
        if step.kind is StepKind.SEND:
            require(step.template_id, f"{place}.template_id")
        if step.kind is StepKind.ISSUE_COUPON:
            require(step.coupon_template_id, f"{place}.coupon_template_id")
        if step.kind is StepKind.GRANT_POINTS and not 1 <= step.points <= 1_000_000:
            raise InvalidArgument("points must be between 1 and 1000000",
                                  field=f"{place}.points", reason="OUT_OF_RANGE")
    # Walk every path from the first step: a cycle would keep a member in the journey forever.
    by_id = {step.step_id: step for step in steps}

    def walk(step_id: str, path: tuple[str, ...]) -> None:
        if step_id in path:
            raise InvalidArgument(f"steps {' -> '.join((*path, step_id))} form a cycle",
                                  field="journey.steps", reason="STEP_CYCLE")
        step = by_id[step_id]
        nexts = ([step.on_true_step_id, step.on_false_step_id]
                 if step.kind is StepKind.BRANCH else [step.next_step_id])
        for target in nexts:
            if target and step.kind is not StepKind.EXIT:
                walk(target, (*path, step_id))

    walk(steps[0].step_id, ())


@dataclass(frozen=True)
class TriggerFacts:
    """What the triggering event said, for branches and template variables."""

    level: int = 0
    order_cents: int = 0
    expiring_points: int = 0
    expire_date: str = ""  # YYYY-MM-DD in the brand's time zone

    def variables(self) -> dict[str, str]:
        return {"to_level": str(self.level), "order_cents": str(self.order_cents),
                "expiring_points": str(self.expiring_points), "expire_date": self.expire_date}

    def to_json(self) -> dict[str, int | str]:
        return {"level": self.level, "order_cents": self.order_cents,
                "expiring_points": self.expiring_points, "expire_date": self.expire_date}

    @classmethod
    def from_json(cls, raw: dict[str, int | str]) -> TriggerFacts:
        return cls(level=int(raw.get("level", 0)), order_cents=int(raw.get("order_cents", 0)),
                   expiring_points=int(raw.get("expiring_points", 0)),
                   expire_date=str(raw.get("expire_date", "")))


def branch_taken(step: Step, facts: TriggerFacts, ordered_since_entry: bool,
                 in_segment: bool = False) -> bool:
    if step.condition is Condition.IN_SEGMENT:
        return in_segment
    if step.condition is Condition.ORDERED_SINCE_ENTRY:
        return ordered_since_entry
    if step.condition is Condition.LEVEL_AT_LEAST:
        return facts.level >= step.number
    if step.condition is Condition.ORDER_CENTS_AT_LEAST:
        return facts.order_cents >= step.number
    raise ValueError(f"unknown condition {step.condition}")


def next_of(step: Step, taken: bool | None = None) -> str:
    """The step after this one ("" ends the journey)."""
    if step.kind is StepKind.EXIT:
        return ""
    if step.kind is StepKind.BRANCH:
        return step.on_true_step_id if taken else step.on_false_step_id
    return step.next_step_id

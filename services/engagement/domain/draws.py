"""An instant lottery draw: the saga that takes the cost, draws and records it, and the
recorded draw itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class DrawSaga:
    saga_id: str
    brand_id: str
    activity_id: str
    account_id: str
    request_id: str
    local_date: date
    cost_points: int
    state: str
    spend_entry_id: str
    failure_reason: str
    created_at: datetime | None = None
    # Failed attempts so far (bounded by the step's retry policy).
    attempts: int = 0
    # Set when this process moved the saga on without writing it yet: the state PostgreSQL
    # still holds (the next write moves it from there, carrying spend_entry_id along).
    stored_state: str | None = None


@dataclass(frozen=True)
class Draw:
    draw_id: str
    brand_id: str
    activity_id: str
    account_id: str
    local_date: date
    picked_prize_id: str
    won_prize_id: str | None
    random_value: int
    total_weight: int
    weights: str
    cost_points: int
    grant_id: str | None
    drawn_at: datetime

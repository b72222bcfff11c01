"""A member's sign-in for one local day of a sign-in activity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class SignIn:
    local_date: date
    streak_days: int
    make_up: bool
    cost_points: int
    signed_at: datetime
    grant_ids: list[str]

"""Activities: what a brand (or an ISV on its behalf) runs for its members."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class ActivityKind(enum.Enum):
    SIGN_IN = "sign_in"
    LOTTERY = "lottery"
    VOTE = "vote"
    QUIZ = "quiz"
    INVITE = "invite"


class ActivityState(enum.Enum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    LIVE = "live"
    CLOSED = "closed"


@dataclass(frozen=True)
class Activity:
    activity_id: str
    brand_id: str
    kind: ActivityKind
    state: ActivityState
    title: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime

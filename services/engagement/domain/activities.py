"""Activities: what a brand (or an ISV on its behalf) runs for its members.

An activity is its definition (the spec: title, time window, audience and the kind's
configuration, see activity_kinds.py) plus its life cycle: draft, scheduled once published,
live and closed by its time window (or closed early), and who may act on it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from libs.errors import FailedPrecondition, PermissionDenied
from services.engagement.domain.activity_kinds import KIND_OF, ActivityKind, Config


class ActivityState(enum.Enum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    LIVE = "live"
    CLOSED = "closed"


class OwnerKind(enum.Enum):
    BRAND = "brand"
    ISV_APP = "isv_app"


@dataclass(frozen=True)
class Owner:
    kind: OwnerKind
    owner_id: str


@dataclass(frozen=True)
class ActivitySpec:
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime
    audience_levels: tuple[int, ...]
    config: Config

    @property
    def kind(self) -> ActivityKind:
        return KIND_OF[type(self.config)]


@dataclass(frozen=True)
class Activity:
    activity_id: str
    brand_id: str
    kind: ActivityKind
    state: ActivityState  # as stored: draft, scheduled (published) or closed
    title: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    owner: Owner = Owner(OwnerKind.BRAND, "")
    spec: ActivitySpec | None = None
    version: int = 1
    updated_at: datetime | None = None
    closed_at: datetime | None = None

    def state_at(self, now: datetime) -> ActivityState:
        """The life-cycle state at a moment: live and closed follow the time window."""
        if self.state is ActivityState.DRAFT:
            return ActivityState.DRAFT
        if self.state is ActivityState.CLOSED or now >= self.ends_at:
            return ActivityState.CLOSED
        if now >= self.starts_at:
            return ActivityState.LIVE
        return ActivityState.SCHEDULED

    @property
    def definition(self) -> ActivitySpec:
        assert self.spec is not None, "activity loaded without its spec"
        return self.spec

    def require_live(self, now: datetime) -> None:
        state = self.state_at(now)
        if state is not ActivityState.LIVE:
            raise FailedPrecondition(
                f"activity {self.activity_id} is {state.value}, not live",
                reason="ACTIVITY_NOT_LIVE",
                metadata={"activity_id": self.activity_id, "state": state.value})

    def require_kind(self, kind: ActivityKind) -> None:
        if self.kind is not kind:
            raise FailedPrecondition(
                f"activity {self.activity_id} is a {self.kind.value} activity, not {kind.value}",
                reason="WRONG_ACTIVITY_KIND",
                metadata={"activity_id": self.activity_id, "kind": self.kind.value})


def check_actor(activity: Activity, actor: Owner | None) -> None:
    """The brand may act on all its activities; an ISV app only on those it owns."""
    if actor is None or actor.kind is OwnerKind.BRAND:
        return
    if activity.owner != actor:
        raise PermissionDenied("an ISV app may change only the activities it created",
                               reason="NOT_ACTIVITY_OWNER",
                               metadata={"activity_id": activity.activity_id})

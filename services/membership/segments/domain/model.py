"""Segments and snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.membership.segments.domain.rules import Rule

MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class Segment:
    segment_id: str
    brand_id: str
    name: str
    rule: Rule
    created_at: datetime


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    brand_id: str
    segment_id: str
    member_count: int
    created_at: datetime


@dataclass(frozen=True)
class SnapshotMember:
    account_id: str
    level: int
    points_balance: int
    order_count: int

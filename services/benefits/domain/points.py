"""Points balances."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PointsBalance:
    brand_id: str
    account_id: str
    available: int = 0
    pending: int = 0

"""A reward owed to a member: granted through benefits by the dispatch loop, or given back
(what paid for it refunded) when it cannot be delivered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Grant:
    grant_id: str
    brand_id: str
    account_id: str
    points: int
    coupon_template_id: str
    reason_code: str
    state: str
    attempts: int
    points_entry_id: str
    coupon_id: str
    last_error: str = ""
    # The spend that paid for this reward (a lottery draw's cost): given back when the
    # reward cannot be delivered; refunded_entry_id is the reversing entry once it was.
    refund_entry_id: str = ""
    refunded_entry_id: str = ""
    updated_at: datetime | None = None

    @classmethod
    def owed(cls, grant_id: str, brand_id: str, account_id: str, points: int,
             coupon_template_id: str, reason_code: str) -> Grant:
        """A grant as just written in the transaction that earned it: pending, untried."""
        return cls(grant_id, brand_id, account_id, points, coupon_template_id, reason_code,
                   "pending", 0, "", "")

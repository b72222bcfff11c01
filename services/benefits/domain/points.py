"""Points: balances, the policy's expiry, spend allocation over lots, order earning. Pure."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from libs.errors import InvalidArgument

DEFAULT_TIME_ZONE = "Asia/Shanghai"
MAX_EXPIRY_DAYS = 3650
CENTS_PER_UNIT = 100
MAX_REASON_LENGTH = 64


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class ExpiryMode(enum.Enum):
    NEVER = "never"
    ROLLING_DAYS = "rolling_days"
    CALENDAR_YEAR_END = "calendar_year_end"


class EntryKind(enum.Enum):
    GRANT = "grant"
    SPEND = "spend"
    EXPIRE = "expire"
    REVERSAL = "reversal"
    PENDING_GRANT = "pending_grant"
    PENDING_RELEASE = "pending_release"
    PENDING_CANCEL = "pending_cancel"
    CLAWBACK = "clawback"
    SHORTFALL_RECOVERY = "shortfall_recovery"


class Source(enum.Enum):
    ORDER = "order"
    RULE = "rule"
    ACTIVITY = "activity"
    ISV_APP = "isv_app"
    OPERATOR = "operator"
    SYSTEM = "system"
    MALL = "mall"
    GIFT_PACK = "gift_pack"


@dataclass(frozen=True)
class PointsBalance:
    brand_id: str
    account_id: str
    available: int = 0
    pending: int = 0
    shortfall: int = 0
    version: int = 0


@dataclass(frozen=True)
class PointsPolicy:
    brand_id: str
    expiry_mode: ExpiryMode = ExpiryMode.NEVER
    expiry_days: int = 0
    negative_balance_allowed: bool = False
    time_zone: str = DEFAULT_TIME_ZONE
    updated_at: datetime | None = None

    def expiry_for(self, available_at: datetime) -> datetime | None:
        """When points that became available at `available_at` expire (None: never).

        Rolling: at the end of the local day `expiry_days` later. Calendar year: at the end of
        the local calendar year they became available in.
        """
        zone = ZoneInfo(self.time_zone)
        local = available_at.astimezone(zone)
        if self.expiry_mode is ExpiryMode.ROLLING_DAYS:
            day = local.date() + timedelta(days=self.expiry_days + 1)
            return datetime(day.year, day.month, day.day, tzinfo=zone)
        if self.expiry_mode is ExpiryMode.CALENDAR_YEAR_END:
            return datetime(local.year + 1, 1, 1, tzinfo=zone)
        return None

    def local_date(self, moment: datetime) -> str:
        return moment.astimezone(ZoneInfo(self.time_zone)).date().isoformat()


def valid_policy(policy: PointsPolicy) -> PointsPolicy:
    if not policy.brand_id.strip():
        raise InvalidArgument("policy.brand_id is required", field="policy.brand_id",
                              reason="FIELD_REQUIRED")
    if policy.expiry_mode is ExpiryMode.ROLLING_DAYS:
        if not 1 <= policy.expiry_days <= MAX_EXPIRY_DAYS:
            raise InvalidArgument(
                f"policy.expiry_days must be between 1 and {MAX_EXPIRY_DAYS} for rolling expiry",
                field="policy.expiry_days", reason="EXPIRY_DAYS_OUT_OF_RANGE")
    elif policy.expiry_days != 0:
        raise InvalidArgument("policy.expiry_days applies to rolling expiry only",
                              field="policy.expiry_days", reason="EXPIRY_DAYS_NOT_APPLICABLE")
    zone = policy.time_zone.strip() or DEFAULT_TIME_ZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"policy.time_zone {zone!r} is not an IANA time zone",
                              field="policy.time_zone", reason="UNKNOWN_TIME_ZONE") from None
    return PointsPolicy(policy.brand_id.strip(), policy.expiry_mode, policy.expiry_days,
                        policy.negative_balance_allowed, zone, policy.updated_at)


def positive_amount(amount: int, field: str = "amount") -> int:
    if amount <= 0:
        raise InvalidArgument(f"{field} must be positive", field=field,
                              reason="AMOUNT_NOT_POSITIVE")
    if amount > 10**12:
        raise InvalidArgument(f"{field} is too large", field=field, reason="AMOUNT_TOO_LARGE")
    return amount


def valid_reason(reason_code: str, default: str) -> str:
    reason = reason_code.strip() or default
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidArgument(f"reason_code must be at most {MAX_REASON_LENGTH} characters",
                              field="reason_code", reason="REASON_CODE_TOO_LONG")
    return reason


@dataclass(frozen=True)
class Lot:
    lot_id: str
    remaining: int
    expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Entry:
    """One line of a points account's ledger: what moved, why and from where."""

    brand_id: str
    entry_id: str
    account_id: str
    kind: EntryKind
    amount: int
    available_delta: int
    pending_delta: int
    shortfall: int
    reason_code: str
    source: Source
    request_id: str
    reverses_entry_id: str | None
    available_at: datetime | None
    created_at: datetime
    seq: int = 0


@dataclass(frozen=True)
class PendingGrant:
    """Points granted but held back until `release_at`."""

    entry_id: str
    account_id: str
    amount: int
    release_at: datetime
    state: str
    released_amount: int


def spend_order(lots: list[Lot]) -> list[Lot]:
    """Soonest-expiring first; lots that never expire last; older first on ties."""
    return sorted(lots, key=lambda lot: (lot.expires_at is None,
                                         lot.expires_at or lot.created_at, lot.created_at,
                                         lot.lot_id))


def allocate(lots: list[Lot], amount: int) -> list[tuple[str, int]]:
    """Take `amount` from the lots in spend order: [(lot_id, taken)]; takes what there is."""
    taken: list[tuple[str, int]] = []
    left = amount
    for lot in spend_order(lots):
        if left <= 0:
            break
        take = min(lot.remaining, left)
        if take > 0:
            taken.append((lot.lot_id, take))
            left -= take
    return taken


@dataclass(frozen=True)
class OrderPoints:
    """What one paid order earned and what its refunds took back."""

    order_id: str
    account_id: str
    paid_cents: int
    points: int
    refunded_cents: int
    points_taken: int
    entry_id: str | None


def order_points(paid_cents: int, points_per_unit: int, multiplier_percent: int) -> int:
    """Points for a paid order: whole currency units x points per unit x tier multiplier,
    rounded down (integers only, no float)."""
    if paid_cents <= 0 or points_per_unit <= 0:
        return 0
    return paid_cents * points_per_unit * multiplier_percent // (CENTS_PER_UNIT * 100)


def refund_share(points: int, paid_cents: int, refunded_total_cents: int,
                 already_taken: int) -> int:
    """Points to take back after refunds totalling `refunded_total_cents`, proportionally;
    cumulative so that partial refunds never round to more than the order earned."""
    if paid_cents <= 0 or points <= 0:
        return 0
    owed = points * min(refunded_total_cents, paid_cents) // paid_cents
    return max(0, owed - already_taken)


def capped_grant(points: int, *, daily_cap: int, daily_used: int, lifetime_cap: int,
                 lifetime_used: int, budget: int, budget_used: int) -> int:
    """What a rule may still grant: cut to the caps and the budget that are left (0 = none)."""
    grant = points
    if daily_cap > 0:
        grant = min(grant, daily_cap - daily_used)
    if lifetime_cap > 0:
        grant = min(grant, lifetime_cap - lifetime_used)
    if budget > 0:
        grant = min(grant, budget - budget_used)
    return max(0, grant)

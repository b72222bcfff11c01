"""Earning rules, tier multipliers, coupon templates, gift packs and mall items. Pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from libs.errors import InvalidArgument

MAX_TITLE_LENGTH = 100
MAX_STOCK = 100_000_000
MAX_LEVEL = 100


class Trigger(enum.Enum):
    ORDER_PAID = "order_paid"
    FOLLOW = "follow"
    CART_ADD = "cart_add"
    SIGN_IN = "sign_in"
    VOTE = "vote"
    QUIZ = "quiz"
    INVITE = "invite"


ENGAGEMENT_TRIGGERS = {Trigger.SIGN_IN, Trigger.VOTE, Trigger.QUIZ, Trigger.INVITE}


def valid_title(value: str, field_name: str) -> str:
    title = value.strip()
    if not title:
        raise InvalidArgument(f"{field_name} is required", field=field_name,
                              reason="FIELD_REQUIRED")
    if len(title) > MAX_TITLE_LENGTH:
        raise InvalidArgument(f"{field_name} must be at most {MAX_TITLE_LENGTH} characters",
                              field=field_name, reason="TITLE_TOO_LONG")
    return title


def _non_negative(value: int, field_name: str) -> int:
    if value < 0:
        raise InvalidArgument(f"{field_name} must not be negative", field=field_name,
                              reason="NEGATIVE_VALUE")
    return value


def valid_levels(levels: list[int], field_name: str) -> list[int]:
    for level in levels:
        if not 0 <= level <= MAX_LEVEL:
            raise InvalidArgument(f"{field_name} must hold levels 0..{MAX_LEVEL}",
                                  field=field_name, reason="LEVEL_OUT_OF_RANGE")
    return sorted(set(levels))


def level_eligible(eligible_levels: list[int], level: int) -> bool:
    return not eligible_levels or level in eligible_levels


# A coupon template's claim window or a gift pack's validity that was given no start begins
# when it is saved: the request says "from now", the use case reads "now" from its clock.
STARTS_WHEN_SAVED = datetime.min.replace(tzinfo=UTC)


def started(start: datetime, now: datetime) -> datetime:
    """`start`, or `now` when the request left it to the time of saving."""
    return now if start == STARTS_WHEN_SAVED else start


@dataclass(frozen=True)
class EarningRule:
    brand_id: str
    rule_id: str
    trigger: Trigger
    title: str
    points: int
    points_per_currency_unit: int
    activity_id: str
    daily_cap_points: int
    lifetime_cap_points: int
    budget_points: int
    enabled: bool
    granted_points: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


def valid_rule(rule: EarningRule) -> EarningRule:
    title = valid_title(rule.title, "rule.title")
    for name in ("points", "points_per_currency_unit", "daily_cap_points",
                 "lifetime_cap_points", "budget_points"):
        _non_negative(getattr(rule, name), f"rule.{name}")
    if rule.trigger is Trigger.ORDER_PAID:
        if rule.points_per_currency_unit <= 0:
            raise InvalidArgument("rule.points_per_currency_unit must be positive for orders",
                                  field="rule.points_per_currency_unit",
                                  reason="POINTS_PER_UNIT_REQUIRED")
        if rule.points:
            raise InvalidArgument("rule.points is for fixed-point triggers, not orders",
                                  field="rule.points", reason="FIELD_NOT_APPLICABLE")
    else:
        if rule.points <= 0:
            raise InvalidArgument("rule.points must be positive", field="rule.points",
                                  reason="POINTS_REQUIRED")
        if rule.points_per_currency_unit:
            raise InvalidArgument("rule.points_per_currency_unit applies to orders only",
                                  field="rule.points_per_currency_unit",
                                  reason="FIELD_NOT_APPLICABLE")
    if rule.activity_id and rule.trigger not in ENGAGEMENT_TRIGGERS:
        raise InvalidArgument("rule.activity_id applies to engagement triggers only",
                              field="rule.activity_id", reason="FIELD_NOT_APPLICABLE")
    if rule.daily_cap_points and rule.lifetime_cap_points \
            and rule.daily_cap_points > rule.lifetime_cap_points:
        raise InvalidArgument("rule.daily_cap_points must not exceed rule.lifetime_cap_points",
                              field="rule.daily_cap_points", reason="CAP_INCONSISTENT")
    return EarningRule(rule.brand_id, rule.rule_id, rule.trigger, title, rule.points,
                       rule.points_per_currency_unit, rule.activity_id.strip(),
                       rule.daily_cap_points, rule.lifetime_cap_points, rule.budget_points,
                       rule.enabled, rule.granted_points, rule.created_at, rule.updated_at)


def valid_multipliers(given: list[tuple[int, int]]) -> dict[int, int]:
    seen: dict[int, int] = {}
    for index, (level, percent) in enumerate(given):
        if not 0 <= level <= MAX_LEVEL:
            raise InvalidArgument(f"multipliers[{index}].level must be 0..{MAX_LEVEL}",
                                  field=f"multipliers[{index}].level",
                                  reason="LEVEL_OUT_OF_RANGE")
        if not 1 <= percent <= 10_000:
            raise InvalidArgument(f"multipliers[{index}].multiplier_percent must be 1..10000",
                                  field=f"multipliers[{index}].multiplier_percent",
                                  reason="MULTIPLIER_OUT_OF_RANGE")
        if level in seen:
            raise InvalidArgument(f"multipliers[{index}].level {level} appears twice",
                                  field=f"multipliers[{index}].level", reason="DUPLICATE_LEVEL")
        seen[level] = percent
    return seen


class CouponKind(enum.Enum):
    AMOUNT_OFF = "amount_off"
    PERCENT_OFF = "percent_off"


class Placement(enum.Enum):
    CHECKOUT = "checkout"
    SHOP_HOME = "shop_home"
    MEMBER_PAGE = "member_page"


@dataclass(frozen=True)
class CouponTemplate:
    brand_id: str
    template_id: str
    title: str
    kind: CouponKind
    amount_off_cents: int
    percent_off: int
    threshold_cents: int
    claim_start: datetime
    claim_end: datetime | None
    valid_start: datetime | None
    valid_end: datetime | None
    valid_days: int
    total_stock: int
    per_member_limit: int
    eligible_levels: list[int] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list)
    closed: bool = False
    issued_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def validity(self, issued_at: datetime) -> tuple[datetime, datetime]:
        """The window an issued coupon is valid in."""
        if self.valid_days:
            return issued_at, issued_at + timedelta(days=self.valid_days)
        assert self.valid_start is not None and self.valid_end is not None
        return self.valid_start, self.valid_end

    def claimable_at(self, now: datetime) -> bool:
        return (not self.closed and self.claim_start <= now
                and (self.claim_end is None or now < self.claim_end)
                and (self.valid_days > 0 or (self.valid_end is not None
                                             and now < self.valid_end)))


def delivery_url(brand_id: str, template_id: str) -> str:
    """The storefront link that shows and claims the coupon (checkout, shop and member page)."""
    return f"/storefront/v1/brands/{brand_id}/coupons/{template_id}"


def valid_template(t: CouponTemplate) -> CouponTemplate:
    title = valid_title(t.title, "template.title")
    if t.kind is CouponKind.AMOUNT_OFF:
        if t.amount_off_cents <= 0:
            raise InvalidArgument("template.amount_off_cents must be positive",
                                  field="template.amount_off_cents", reason="AMOUNT_REQUIRED")
        if t.percent_off:
            raise InvalidArgument("template.percent_off applies to percent-off coupons only",
                                  field="template.percent_off", reason="FIELD_NOT_APPLICABLE")
        if t.threshold_cents and t.amount_off_cents >= t.threshold_cents:
            raise InvalidArgument("template.amount_off_cents must be below the threshold",
                                  field="template.amount_off_cents",
                                  reason="AMOUNT_NOT_BELOW_THRESHOLD")
    else:
        if not 1 <= t.percent_off <= 99:
            raise InvalidArgument("template.percent_off must be 1..99",
                                  field="template.percent_off", reason="PERCENT_OUT_OF_RANGE")
        if t.amount_off_cents:
            raise InvalidArgument("template.amount_off_cents applies to amount-off coupons",
                                  field="template.amount_off_cents",
                                  reason="FIELD_NOT_APPLICABLE")
    _non_negative(t.threshold_cents, "template.threshold_cents")
    if not 1 <= t.total_stock <= MAX_STOCK:
        raise InvalidArgument(f"template.total_stock must be 1..{MAX_STOCK}",
                              field="template.total_stock", reason="STOCK_OUT_OF_RANGE")
    if t.total_stock < t.issued_count:
        raise InvalidArgument(f"template.total_stock must be at least the {t.issued_count} "
                              "already issued", field="template.total_stock",
                              reason="STOCK_BELOW_ISSUED")
    if not 0 <= t.per_member_limit <= 1000:
        raise InvalidArgument("template.per_member_limit must be 0..1000",
                              field="template.per_member_limit", reason="LIMIT_OUT_OF_RANGE")
    if t.claim_end is not None and t.claim_end <= t.claim_start:
        raise InvalidArgument("template.claim_end_time must be after claim_start_time",
                              field="template.claim_end_time", reason="WINDOW_INVALID")
    if t.valid_days:
        if not 1 <= t.valid_days <= 3650 or t.valid_start or t.valid_end:
            raise InvalidArgument("template.valid_days must be 1..3650 and excludes a fixed "
                                  "validity window", field="template.valid_days",
                                  reason="VALIDITY_INVALID")
    elif t.valid_start is None or t.valid_end is None or t.valid_end <= t.valid_start:
        raise InvalidArgument("template needs valid_days or a valid_start_time before "
                              "valid_end_time", field="template.valid_end_time",
                              reason="VALIDITY_INVALID")
    return CouponTemplate(
        t.brand_id, t.template_id, title, t.kind, t.amount_off_cents, t.percent_off,
        t.threshold_cents, t.claim_start, t.claim_end, t.valid_start, t.valid_end,
        t.valid_days, t.total_stock, t.per_member_limit or 1,
        valid_levels(t.eligible_levels, "template.eligible_levels"),
        sorted(set(t.placements), key=lambda p: p.value), t.closed, t.issued_count,
        t.created_at, t.updated_at)


@dataclass(frozen=True)
class IssuedCoupon:
    """A coupon a member holds, issued from a template."""

    coupon_id: str
    template: CouponTemplate
    account_id: str
    valid_start: datetime
    valid_end: datetime
    source: str
    reason_code: str
    issued_at: datetime


@dataclass(frozen=True)
class GiftPack:
    brand_id: str
    gift_pack_id: str
    title: str
    points: int
    coupons: list[tuple[str, int]]
    enabled: bool
    start_time: datetime
    end_time: datetime | None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def active_at(self, now: datetime) -> bool:
        return self.enabled and self.start_time <= now and (
            self.end_time is None or now < self.end_time)


def valid_gift_pack(pack: GiftPack) -> GiftPack:
    title = valid_title(pack.title, "gift_pack.title")
    _non_negative(pack.points, "gift_pack.points")
    seen: set[str] = set()
    for index, (template_id, quantity) in enumerate(pack.coupons):
        if not template_id.strip():
            raise InvalidArgument(f"gift_pack.coupons[{index}].coupon_template_id is required",
                                  field=f"gift_pack.coupons[{index}].coupon_template_id",
                                  reason="FIELD_REQUIRED")
        if not 1 <= quantity <= 100:
            raise InvalidArgument(f"gift_pack.coupons[{index}].quantity must be 1..100",
                                  field=f"gift_pack.coupons[{index}].quantity",
                                  reason="QUANTITY_OUT_OF_RANGE")
        if template_id in seen:
            raise InvalidArgument(f"gift_pack.coupons[{index}] repeats a template",
                                  field=f"gift_pack.coupons[{index}].coupon_template_id",
                                  reason="DUPLICATE_TEMPLATE")
        seen.add(template_id)
    if pack.points == 0 and not pack.coupons:
        raise InvalidArgument("gift_pack must hold points or coupons", field="gift_pack.points",
                              reason="GIFT_PACK_EMPTY")
    if pack.end_time is not None and pack.end_time <= pack.start_time:
        raise InvalidArgument("gift_pack.end_time must be after start_time",
                              field="gift_pack.end_time", reason="WINDOW_INVALID")
    return GiftPack(pack.brand_id, pack.gift_pack_id, title, pack.points, pack.coupons,
                    pack.enabled, pack.start_time, pack.end_time, pack.created_at,
                    pack.updated_at)


class MallItemKind(enum.Enum):
    COUPON = "coupon"
    VIRTUAL = "virtual"
    PHYSICAL = "physical"


@dataclass(frozen=True)
class MallItem:
    brand_id: str
    item_id: str
    kind: MallItemKind
    title: str
    description: str
    price_points: int
    stock_total: int
    per_member_limit: int
    coupon_template_id: str
    eligible_levels: list[int]
    on_sale: bool
    stock_redeemed: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


def valid_item(item: MallItem) -> MallItem:
    title = valid_title(item.title, "item.title")
    if len(item.description) > 2000:
        raise InvalidArgument("item.description must be at most 2000 characters",
                              field="item.description", reason="DESCRIPTION_TOO_LONG")
    if not 1 <= item.price_points <= 10**9:
        raise InvalidArgument("item.price_points must be 1..1000000000",
                              field="item.price_points", reason="PRICE_OUT_OF_RANGE")
    if not 0 <= item.stock_total <= MAX_STOCK:
        raise InvalidArgument(f"item.stock_total must be 0..{MAX_STOCK}",
                              field="item.stock_total", reason="STOCK_OUT_OF_RANGE")
    if item.stock_total < item.stock_redeemed:
        raise InvalidArgument(f"item.stock_total must be at least the {item.stock_redeemed} "
                              "already redeemed", field="item.stock_total",
                              reason="STOCK_BELOW_REDEEMED")
    _non_negative(item.per_member_limit, "item.per_member_limit")
    if item.kind is MallItemKind.COUPON and not item.coupon_template_id.strip():
        raise InvalidArgument("item.coupon_template_id is required for coupon items",
                              field="item.coupon_template_id", reason="FIELD_REQUIRED")
    if item.kind is not MallItemKind.COUPON and item.coupon_template_id:
        raise InvalidArgument("item.coupon_template_id applies to coupon items only",
                              field="item.coupon_template_id", reason="FIELD_NOT_APPLICABLE")
    return MallItem(item.brand_id, item.item_id, item.kind, title, item.description,
                    item.price_points, item.stock_total, item.per_member_limit,
                    item.coupon_template_id.strip(),
                    valid_levels(item.eligible_levels, "item.eligible_levels"), item.on_sale,
                    item.stock_redeemed, item.created_at, item.updated_at)


class RedemptionState(enum.Enum):
    STARTED = "started"
    POINTS_SPENT = "points_spent"
    COMPLETED = "completed"
    FAILED = "failed"


class Fulfilment(enum.Enum):
    NOT_REQUIRED = "not_required"
    AWAITING_SHIPMENT = "awaiting_shipment"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


FULFILMENT_STEPS = {
    Fulfilment.AWAITING_SHIPMENT: {Fulfilment.SHIPPED, Fulfilment.CANCELLED},
    Fulfilment.SHIPPED: {Fulfilment.DELIVERED},
}


@dataclass(frozen=True)
class Redemption:
    brand_id: str
    redemption_id: str
    request_id: str
    account_id: str
    item_id: str
    quantity: int
    points: int
    state: RedemptionState
    spend_entry_id: str | None
    refund_entry_id: str | None
    coupon_ids: list[str]
    virtual_code: str
    fulfilment: Fulfilment
    shipping_address: str
    tracking_number: str
    failure_reason: str
    created_at: datetime
    updated_at: datetime

"""Protobuf <-> domain mappings for the benefits servicers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from google.protobuf import timestamp_pb2

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from libs.errors import InvalidArgument
from libs.protoconv import from_timestamp, timestamp
from services.benefits.domain.benefits import (
    STARTS_WHEN_SAVED,
    CouponKind,
    CouponTemplate,
    EarningRule,
    Fulfilment,
    GiftPack,
    IssuedCoupon,
    MallItem,
    MallItemKind,
    Placement,
    Redemption,
    RedemptionState,
    Trigger,
    delivery_url,
)
from services.benefits.domain.points import Entry, EntryKind, ExpiryMode, PointsPolicy, Source

K = TypeVar("K")
V = TypeVar("V")


def _invert(mapping: dict[K, V]) -> dict[V, K]:
    return {v: k for k, v in mapping.items()}


SOURCES = {pb.POINTS_SOURCE_ORDER: Source.ORDER, pb.POINTS_SOURCE_RULE: Source.RULE,
           pb.POINTS_SOURCE_ACTIVITY: Source.ACTIVITY, pb.POINTS_SOURCE_ISV_APP: Source.ISV_APP,
           pb.POINTS_SOURCE_OPERATOR: Source.OPERATOR, pb.POINTS_SOURCE_SYSTEM: Source.SYSTEM,
           pb.POINTS_SOURCE_MALL: Source.MALL, pb.POINTS_SOURCE_GIFT_PACK: Source.GIFT_PACK}
KINDS = {EntryKind.GRANT: pb.POINTS_ENTRY_KIND_GRANT, EntryKind.SPEND: pb.POINTS_ENTRY_KIND_SPEND,
         EntryKind.EXPIRE: pb.POINTS_ENTRY_KIND_EXPIRE,
         EntryKind.REVERSAL: pb.POINTS_ENTRY_KIND_REVERSAL,
         EntryKind.PENDING_GRANT: pb.POINTS_ENTRY_KIND_PENDING_GRANT,
         EntryKind.PENDING_RELEASE: pb.POINTS_ENTRY_KIND_PENDING_RELEASE,
         EntryKind.PENDING_CANCEL: pb.POINTS_ENTRY_KIND_PENDING_CANCEL,
         EntryKind.CLAWBACK: pb.POINTS_ENTRY_KIND_CLAWBACK,
         EntryKind.SHORTFALL_RECOVERY: pb.POINTS_ENTRY_KIND_SHORTFALL_RECOVERY}
EXPIRY = {pb.EXPIRY_MODE_NEVER: ExpiryMode.NEVER,
          pb.EXPIRY_MODE_ROLLING_DAYS: ExpiryMode.ROLLING_DAYS,
          pb.EXPIRY_MODE_CALENDAR_YEAR_END: ExpiryMode.CALENDAR_YEAR_END}
TRIGGERS = {pb.EARNING_TRIGGER_ORDER_PAID: Trigger.ORDER_PAID,
            pb.EARNING_TRIGGER_FOLLOW: Trigger.FOLLOW,
            pb.EARNING_TRIGGER_CART_ADD: Trigger.CART_ADD,
            pb.EARNING_TRIGGER_SIGN_IN: Trigger.SIGN_IN, pb.EARNING_TRIGGER_VOTE: Trigger.VOTE,
            pb.EARNING_TRIGGER_QUIZ: Trigger.QUIZ, pb.EARNING_TRIGGER_INVITE: Trigger.INVITE}
COUPON_KINDS = {pb.COUPON_KIND_AMOUNT_OFF: CouponKind.AMOUNT_OFF,
                pb.COUPON_KIND_PERCENT_OFF: CouponKind.PERCENT_OFF}
PLACEMENTS = {pb.COUPON_PLACEMENT_CHECKOUT: Placement.CHECKOUT,
              pb.COUPON_PLACEMENT_SHOP_HOME: Placement.SHOP_HOME,
              pb.COUPON_PLACEMENT_MEMBER_PAGE: Placement.MEMBER_PAGE}
COUPON_SOURCES = {"claim": pb.COUPON_SOURCE_CLAIM, "issue": pb.COUPON_SOURCE_ISSUE,
                  "gift_pack": pb.COUPON_SOURCE_GIFT_PACK, "mall": pb.COUPON_SOURCE_MALL}
ITEM_KINDS = {pb.MALL_ITEM_KIND_COUPON: MallItemKind.COUPON,
              pb.MALL_ITEM_KIND_VIRTUAL: MallItemKind.VIRTUAL,
              pb.MALL_ITEM_KIND_PHYSICAL: MallItemKind.PHYSICAL}
REDEMPTION_STATES = {RedemptionState.STARTED: pb.REDEMPTION_STATE_STARTED,
                     RedemptionState.POINTS_SPENT: pb.REDEMPTION_STATE_POINTS_SPENT,
                     RedemptionState.COMPLETED: pb.REDEMPTION_STATE_COMPLETED,
                     RedemptionState.FAILED: pb.REDEMPTION_STATE_FAILED}
FULFILMENTS = {pb.FULFILMENT_STATUS_NOT_REQUIRED: Fulfilment.NOT_REQUIRED,
               pb.FULFILMENT_STATUS_AWAITING_SHIPMENT: Fulfilment.AWAITING_SHIPMENT,
               pb.FULFILMENT_STATUS_SHIPPED: Fulfilment.SHIPPED,
               pb.FULFILMENT_STATUS_DELIVERED: Fulfilment.DELIVERED,
               pb.FULFILMENT_STATUS_CANCELLED: Fulfilment.CANCELLED}


def enum_in(mapping: Mapping[Any, V], value: int, field: str) -> V:
    if value not in mapping:
        raise InvalidArgument(f"{field} must be set to a known value", field=field,
                              reason="ENUM_VALUE_INVALID")
    return mapping[value]


def source_in(value: int) -> Source:
    return enum_in(SOURCES, value, "source")


def time_or_none(message: object, name: str) -> datetime | None:
    if message.HasField(name):  # type: ignore[attr-defined]
        return from_timestamp(getattr(message, name))
    return None


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    return timestamp(value) if value is not None else None


def entry_pb(entry: Entry) -> pb.PointsEntry:
    return pb.PointsEntry(
        entry_id=entry.entry_id, brand_id=entry.brand_id, account_id=entry.account_id,
        amount=entry.amount, reason_code=entry.reason_code,
        source=_invert(SOURCES)[entry.source], request_id=entry.request_id,
        reverses_entry_id=entry.reverses_entry_id or "", create_time=timestamp(entry.created_at),
        kind=KINDS[entry.kind], available_delta=entry.available_delta,
        pending_delta=entry.pending_delta, available_time=_ts(entry.available_at),
        shortfall=entry.shortfall)


def policy_pb(policy: PointsPolicy) -> pb.PointsPolicy:
    return pb.PointsPolicy(brand_id=policy.brand_id,
                           expiry_mode=_invert(EXPIRY)[policy.expiry_mode],
                           expiry_days=policy.expiry_days,
                           negative_balance_allowed=policy.negative_balance_allowed,
                           time_zone=policy.time_zone, update_time=_ts(policy.updated_at))


def policy_in(message: pb.PointsPolicy) -> PointsPolicy:
    return PointsPolicy(message.brand_id,
                        enum_in(EXPIRY, message.expiry_mode, "policy.expiry_mode"),
                        message.expiry_days, message.negative_balance_allowed,
                        message.time_zone)


def rule_pb(rule: EarningRule) -> pb.EarningRule:
    return pb.EarningRule(
        rule_id=rule.rule_id, brand_id=rule.brand_id, trigger=_invert(TRIGGERS)[rule.trigger],
        title=rule.title, points=rule.points,
        points_per_currency_unit=rule.points_per_currency_unit, activity_id=rule.activity_id,
        daily_cap_points=rule.daily_cap_points, lifetime_cap_points=rule.lifetime_cap_points,
        budget_points=rule.budget_points, granted_points=rule.granted_points,
        enabled=rule.enabled, create_time=_ts(rule.created_at),
        update_time=_ts(rule.updated_at))


def rule_in(m: pb.EarningRule) -> EarningRule:
    return EarningRule(m.brand_id, m.rule_id, enum_in(TRIGGERS, m.trigger, "rule.trigger"),
                       m.title, m.points, m.points_per_currency_unit, m.activity_id,
                       m.daily_cap_points, m.lifetime_cap_points, m.budget_points, m.enabled)


def template_pb(t: CouponTemplate) -> pb.CouponTemplate:
    return pb.CouponTemplate(
        template_id=t.template_id, brand_id=t.brand_id, title=t.title,
        kind=_invert(COUPON_KINDS)[t.kind], amount_off_cents=t.amount_off_cents,
        percent_off=t.percent_off, threshold_cents=t.threshold_cents,
        claim_start_time=timestamp(t.claim_start), claim_end_time=_ts(t.claim_end),
        valid_start_time=_ts(t.valid_start), valid_end_time=_ts(t.valid_end),
        valid_days=t.valid_days, total_stock=t.total_stock, issued_count=t.issued_count,
        per_member_limit=t.per_member_limit, eligible_levels=t.eligible_levels,
        placements=[_invert(PLACEMENTS)[p] for p in t.placements],
        delivery_url=delivery_url(t.brand_id, t.template_id),
        state=pb.COUPON_TEMPLATE_STATE_CLOSED if t.closed else pb.COUPON_TEMPLATE_STATE_ACTIVE,
        create_time=_ts(t.created_at), update_time=_ts(t.updated_at))


def template_in(m: pb.CouponTemplate) -> CouponTemplate:
    placements = [enum_in(PLACEMENTS, p, f"template.placements[{i}]")
                  for i, p in enumerate(m.placements)]
    return CouponTemplate(
        m.brand_id, m.template_id, m.title, enum_in(COUPON_KINDS, m.kind, "template.kind"),
        m.amount_off_cents, m.percent_off, m.threshold_cents,
        time_or_none(m, "claim_start_time") or STARTS_WHEN_SAVED,
        time_or_none(m, "claim_end_time"), time_or_none(m, "valid_start_time"),
        time_or_none(m, "valid_end_time"), m.valid_days, m.total_stock, m.per_member_limit,
        list(m.eligible_levels), placements)


def coupon_pb(c: IssuedCoupon) -> pb.Coupon:
    t = c.template
    return pb.Coupon(coupon_id=c.coupon_id, brand_id=t.brand_id,
                     coupon_template_id=t.template_id, account_id=c.account_id, title=t.title,
                     kind=_invert(COUPON_KINDS)[t.kind], amount_off_cents=t.amount_off_cents,
                     percent_off=t.percent_off, threshold_cents=t.threshold_cents,
                     valid_start_time=timestamp(c.valid_start),
                     expire_time=timestamp(c.valid_end),
                     source=COUPON_SOURCES.get(c.source, pb.COUPON_SOURCE_UNSPECIFIED),
                     reason_code=c.reason_code, issue_time=timestamp(c.issued_at))


def gift_pack_pb(p: GiftPack) -> pb.GiftPack:
    return pb.GiftPack(gift_pack_id=p.gift_pack_id, brand_id=p.brand_id, title=p.title,
                       points=p.points,
                       coupons=[pb.GiftPackCoupon(coupon_template_id=t, quantity=q)
                                for t, q in p.coupons],
                       enabled=p.enabled, start_time=timestamp(p.start_time),
                       end_time=_ts(p.end_time), create_time=_ts(p.created_at),
                       update_time=_ts(p.updated_at))


def gift_pack_in(m: pb.GiftPack) -> GiftPack:
    return GiftPack(m.brand_id, m.gift_pack_id, m.title, m.points,
                    [(c.coupon_template_id.strip(), c.quantity) for c in m.coupons], m.enabled,
                    time_or_none(m, "start_time") or STARTS_WHEN_SAVED,
                    time_or_none(m, "end_time"))


def item_pb(i: MallItem) -> pb.MallItem:
    return pb.MallItem(item_id=i.item_id, brand_id=i.brand_id,
                       kind=_invert(ITEM_KINDS)[i.kind], title=i.title,
                       description=i.description, price_points=i.price_points,
                       stock_total=i.stock_total, stock_redeemed=i.stock_redeemed,
                       per_member_limit=i.per_member_limit,
                       coupon_template_id=i.coupon_template_id,
                       eligible_levels=i.eligible_levels,
                       state=pb.MALL_ITEM_STATE_ON_SALE if i.on_sale
                       else pb.MALL_ITEM_STATE_OFF_SALE,
                       create_time=_ts(i.created_at), update_time=_ts(i.updated_at))


def item_in(m: pb.MallItem) -> MallItem:
    state = enum_in({pb.MALL_ITEM_STATE_ON_SALE: True, pb.MALL_ITEM_STATE_OFF_SALE: False},
                    m.state, "item.state")
    return MallItem(m.brand_id, m.item_id, enum_in(ITEM_KINDS, m.kind, "item.kind"), m.title,
                    m.description, m.price_points, m.stock_total, m.per_member_limit,
                    m.coupon_template_id, list(m.eligible_levels), state)


def redemption_pb(r: Redemption) -> pb.Redemption:
    return pb.Redemption(
        redemption_id=r.redemption_id, brand_id=r.brand_id, account_id=r.account_id,
        item_id=r.item_id, quantity=r.quantity, points=r.points,
        state=REDEMPTION_STATES[r.state], spend_entry_id=r.spend_entry_id or "",
        refund_entry_id=r.refund_entry_id or "", coupon_ids=r.coupon_ids,
        virtual_code=r.virtual_code, fulfilment_status=_invert(FULFILMENTS)[r.fulfilment],
        shipping_address=r.shipping_address, tracking_number=r.tracking_number,
        failure_reason=r.failure_reason, request_id=r.request_id,
        create_time=timestamp(r.created_at), update_time=timestamp(r.updated_at))

"""Rows of the benefits schema read back as domain entities (shared by the repositories)."""

from __future__ import annotations

from libs.db import Record
from services.benefits.domain.benefits import (
    CouponKind,
    CouponTemplate,
    EarningRule,
    Fulfilment,
    GiftPack,
    MallItem,
    MallItemKind,
    Placement,
    Redemption,
    RedemptionState,
    Trigger,
)
from services.benefits.domain.points import Entry, EntryKind, ExpiryMode, PointsPolicy, Source


def entry_from_row(row: Record) -> Entry:
    return Entry(row["brand_id"], row["entry_id"], row["account_id"], EntryKind(row["kind"]),
                 row["amount"], row["available_delta"], row["pending_delta"], row["shortfall"],
                 row["reason_code"], Source(row["source"]), row["request_id"],
                 row["reverses_entry_id"], row["available_at"], row["created_at"], row["seq"])


def policy_from_row(row: Record) -> PointsPolicy:
    return PointsPolicy(row["brand_id"], ExpiryMode(row["expiry_mode"]), row["expiry_days"],
                        row["negative_balance_allowed"], row["time_zone"], row["updated_at"])


def rule_from_row(row: Record) -> EarningRule:
    return EarningRule(row["brand_id"], row["rule_id"], Trigger(row["trigger"]), row["title"],
                       row["points"], row["points_per_currency_unit"], row["activity_id"],
                       row["daily_cap_points"], row["lifetime_cap_points"],
                       row["budget_points"], row["enabled"], row["granted_points"],
                       row["created_at"], row["updated_at"])


def template_from_row(row: Record) -> CouponTemplate:
    return CouponTemplate(
        row["brand_id"], row["template_id"], row["title"], CouponKind(row["kind"]),
        row["amount_off_cents"], row["percent_off"], row["threshold_cents"], row["claim_start"],
        row["claim_end"], row["valid_start"], row["valid_end"], row["valid_days"],
        row["total_stock"], row["per_member_limit"], list(row["eligible_levels"]),
        [Placement(p) for p in row["placements"]], row["state"] == "closed",
        row["issued_count"], row["created_at"], row["updated_at"])


def gift_pack_from_row(row: Record) -> GiftPack:
    return GiftPack(row["brand_id"], row["gift_pack_id"], row["title"], row["points"],
                    list(zip(row["coupon_templates"], row["coupon_quantities"], strict=True)),
                    row["enabled"], row["start_time"], row["end_time"], row["created_at"],
                    row["updated_at"])


def item_from_row(row: Record) -> MallItem:
    return MallItem(row["brand_id"], row["item_id"], MallItemKind(row["kind"]), row["title"],
                    row["description"], row["price_points"], row["stock_total"],
                    row["per_member_limit"], row["coupon_template_id"],
                    list(row["eligible_levels"]), row["state"] == "on_sale",
                    row["stock_redeemed"], row["created_at"], row["updated_at"])


def redemption_from_row(row: Record) -> Redemption:
    return Redemption(row["brand_id"], row["redemption_id"], row["request_id"],
                      row["account_id"], row["item_id"], row["quantity"], row["points"],
                      RedemptionState(row["state"]), row["spend_entry_id"],
                      row["refund_entry_id"], list(row["coupon_ids"]), row["virtual_code"],
                      Fulfilment(row["fulfilment_status"]), row["shipping_address"],
                      row["tracking_number"], row["failure_reason"], row["created_at"],
                      row["updated_at"])

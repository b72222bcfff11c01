"""What benefits holds about a member (libs.privacy holdings): exported on an access request,
erased or pseudonymised when the member cancels (in the MemberCancelled consumer).

Most of it stays under the account on purpose: a member who leaves keeps their points frozen
and sees them again on rejoining, coupons issued stay valid until they expire, and a
redemption already made is still fulfilled (docs/architecture.md, Benefits). What goes is what
the brand no longer needs: the shipping address of a parcel that has arrived (or will not)."""

from __future__ import annotations

from libs.privacy import Action, Holding

_MEMBER = "brand_id = $1 AND account_id = $2"
_FROZEN_POINTS = ("the member's points are frozen, not forfeited: kept under the account and "
                  "shown again if they rejoin (docs/architecture.md, Benefits); the ledger is "
                  "also the brand's accounting of points issued and owed")
_CAPS = ("per-member limits hold across leaving and rejoining, or cancelling would reset them")

HOLDINGS = (
    Holding("points_accounts", _MEMBER, Action.KEEP, section="points_balance",
            description="The member's points balance: available and pending.",
            order_by="account_id", keep_reason=_FROZEN_POINTS),
    Holding("points_entries", _MEMBER, Action.KEEP, section="points_ledger",
            description="Every points movement: grants, spends, expiries, reversals.",
            order_by="seq", hidden=("seq", "request_id"), keep_reason=_FROZEN_POINTS),
    Holding("points_lots", _MEMBER, Action.KEEP, section="points_lots",
            description="Granted points by lot, with what remains and when it expires.",
            order_by="created_at, lot_id", keep_reason=_FROZEN_POINTS),
    Holding("points_pending", _MEMBER, Action.KEEP, section="points_pending",
            description="Points earned but not yet available (released after the return window).",
            order_by="release_at, entry_id", keep_reason=_FROZEN_POINTS),
    Holding("order_points", _MEMBER, Action.KEEP, section="order_points",
            description="Points earned per order and taken back on refunds.",
            order_by="created_at, order_id",
            keep_reason="a refund after cancellation still takes back the order's points from "
                        "the account's frozen balance"),
    Holding("earning_counters", _MEMBER, Action.KEEP, section="earning_caps",
            description="Points earned per rule and period, counted against the rule's caps.",
            order_by="rule_id, period", keep_reason=_CAPS),
    Holding("member_levels", _MEMBER, Action.KEEP,
            keep_reason="the account's level for earning (set to 0 by the cancellation); "
                        "holds nothing else, and membership exports the tier"),
    Holding("coupons", _MEMBER, Action.KEEP, section="coupons",
            description="Coupons issued to the member and their validity.",
            order_by="seq", hidden=("seq",),
            keep_reason="coupons issued before leaving stay valid at checkout until they expire"),
    Holding("coupon_holdings", _MEMBER, Action.KEEP, section="coupon_holdings",
            description="Coupons held per template, counted against per-member limits.",
            order_by="template_id", keep_reason=_CAPS),
    Holding("gift_pack_grants", _MEMBER, Action.KEEP, section="gift_packs",
            description="The card-opening gift pack granted to the member.",
            order_by="granted_at",
            keep_reason="one card-opening gift pack per program and account: rejoining must "
                        "not grant it twice"),
    Holding("mall_holdings", _MEMBER, Action.KEEP, section="mall_holdings",
            description="Mall items redeemed per item, counted against per-member limits.",
            order_by="item_id", keep_reason=_CAPS),
    Holding("redemptions", _MEMBER, Action.KEEP, section="redemptions",
            description="Points-mall redemptions, their fulfilment and shipping.",
            order_by="seq", hidden=("seq", "fingerprint", "request_id"),
            keep_reason="a redemption made before leaving is still fulfilled; its shipping "
                        "address goes once the parcel has arrived (the holding below)"),
    Holding("redemptions",
            f"{_MEMBER} AND fulfilment_status IN ('delivered', 'cancelled') "
            "AND shipping_address <> ''", Action.ERASE, scrub="shipping_address = ''"),
)

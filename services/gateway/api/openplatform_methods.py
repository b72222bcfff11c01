"""Open-platform methods in our own namespace, each mapped onto one service RPC.

A method is listed here (and so in the catalogue) only when the RPC behind it is served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from brandclub.engagement.v1 import engagement_service_pb2 as engagement_pb
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from libs.protoconv import from_timestamp
from services.gateway.adapters.gift_pack_offer import sync_lv0_offer
from services.gateway.adapters.isv import ShopGrant
from services.gateway.adapters.upstreams import Upstreams
from services.gateway.api.proto_body import proto_json
from services.gateway.domain.catalogue import MethodSpec, Param, ParamError


@dataclass(frozen=True)
class CallContext:
    upstreams: Upstreams
    app_key: str
    grant: ShopGrant
    # Unique per signed request: writes without a business key use it as their request_id.
    sign: str


Handler = Callable[[CallContext, dict[str, Any]], Awaitable[dict[str, Any]]]

_STATUS_NAMES = {
    membership_pb.MEMBER_STATUS_LV0: "LV0",
    membership_pb.MEMBER_STATUS_CARD_MEMBER: "CARD_MEMBER",
    membership_pb.MEMBER_STATUS_ENDED: "ENDED",
}

ACCOUNT_ID = Param("account_id", "string", "the member's Brandclub account id (acc_...)",
                   required=True, max_length=64)


async def member_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    reply = await ctx.upstreams.membership.GetMemberCard(membership_pb.GetMemberCardRequest(
        brand_id=ctx.grant.brand_id, account_id=params["account_id"]))
    card = reply.card
    return {"member": {
        "account_id": card.account_id,
        "brand_id": card.brand_id,
        "status": _STATUS_NAMES.get(card.status, "UNSPECIFIED"),
        "level": card.level,
        "member_since": from_timestamp(card.member_since).isoformat(),
        "followed_shop_ids": list(card.followed_shop_ids),
    }}


# Points and coupons are only for members of the authorising shop's brand, read or written:
# the benefits service enforces that rule on every call (MEMBER_NOT_FOUND otherwise).
async def points_balance_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    reply = await ctx.upstreams.benefits.GetPointsBalance(benefits_pb.GetPointsBalanceRequest(
        brand_id=ctx.grant.brand_id, account_id=params["account_id"]))
    return {"account_id": reply.account_id, "available_points": reply.available_points,
            "pending_points": reply.pending_points}


BUSINESS_ID = Param("businessId", "string",
                    "the caller's de-duplication key: the same businessId applies once and "
                    "repeats the first answer; reused with other parameters it is refused",
                    required=True, max_length=40)
REASON = Param("reason", "string", "machine-readable reason kept on the ledger entry",
               max_length=64, default="ISV_APP")


def _business_request_id(ctx: CallContext, kind: str, business_id: str) -> str:
    """One namespace per app, brand and kind, so apps and shops never collide (<= 128 chars)."""
    return f"isv:{ctx.app_key}:{ctx.grant.brand_id}:{kind}:{business_id}"[:128]


def _entry_json(entry: benefits_pb.PointsEntry) -> dict[str, Any]:
    return {"entry_id": entry.entry_id, "amount": entry.amount,
            "reason": entry.reason_code,
            "created_at": from_timestamp(entry.create_time).isoformat()}


async def points_grant(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    reply = await ctx.upstreams.benefits.GrantPoints(benefits_pb.GrantPointsRequest(
        request_id=_business_request_id(ctx, "grant", params["businessId"]),
        brand_id=ctx.grant.brand_id, account_id=params["account_id"], amount=params["points"],
        reason_code=params["reason"], source=benefits_pb.POINTS_SOURCE_ISV_APP))
    return {"businessId": params["businessId"], "entry": _entry_json(reply.entry),
            "available_points": reply.available_points, "pending_points": reply.pending_points}


async def points_deduct(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    reply = await ctx.upstreams.benefits.SpendPoints(benefits_pb.SpendPointsRequest(
        request_id=_business_request_id(ctx, "deduct", params["businessId"]),
        brand_id=ctx.grant.brand_id, account_id=params["account_id"], amount=params["points"],
        reason_code=params["reason"], source=benefits_pb.POINTS_SOURCE_ISV_APP))
    return {"businessId": params["businessId"], "entry": _entry_json(reply.entry),
            "available_points": reply.available_points}


async def points_entry_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    reply = await ctx.upstreams.benefits.ListPointsEntries(benefits_pb.ListPointsEntriesRequest(
        brand_id=ctx.grant.brand_id, account_id=params["account_id"],
        page_size=params["page_size"] or 0, page_token=params["page_token"] or ""))
    return {"entries": [_entry_json(entry) for entry in reply.entries],
            "next_page_token": reply.next_page_token}


async def coupon_issue(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    reply = await ctx.upstreams.benefits.IssueCoupon(benefits_pb.IssueCouponRequest(
        request_id=_business_request_id(ctx, "coupon", params["businessId"]),
        brand_id=ctx.grant.brand_id, account_id=params["account_id"],
        coupon_template_id=params["coupon_template_id"], reason_code=params["reason"]))
    return {"businessId": params["businessId"], "coupon_id": reply.coupon_id,
            "coupon_template_id": reply.coupon_template_id,
            "expires_at": from_timestamp(reply.expire_time).isoformat()}


M = TypeVar("M", bound=Message)


def _message(value: dict[str, Any], into: M, field: str) -> M:
    """An object parameter in the proto3 JSON mapping of the contract's message."""
    try:
        json_format.ParseDict(value, into, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        raise ParamError(f"{field}: {error}", field=field, reason="PARAM_INVALID") from None
    return into


def _page(params: dict[str, Any]) -> tuple[int, str]:
    return params["page_size"] or 0, params["page_token"] or ""


_MEMBER_STATUS_IN = {"LV0": membership_pb.MEMBER_STATUS_LV0,
                     "CARD_MEMBER": membership_pb.MEMBER_STATUS_CARD_MEMBER}


async def member_scan(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    status_name = (params["status"] or "").upper()
    if status_name and status_name not in _MEMBER_STATUS_IN:
        raise ParamError("status must be LV0 or CARD_MEMBER", field="status")
    size, token = _page(params)
    reply = await ctx.upstreams.membership.ListMembers(membership_pb.ListMembersRequest(
        brand_id=ctx.grant.brand_id, page_size=size, page_token=token,
        status=_MEMBER_STATUS_IN.get(status_name, membership_pb.MEMBER_STATUS_UNSPECIFIED)))
    return {"members": [{
        "account_id": m.account_id,
        "status": _STATUS_NAMES.get(m.status, "UNSPECIFIED"),
        "level": m.level,
        "member_since": from_timestamp(m.member_since).isoformat(),
        "dormant": m.dormant,
        "source_channel": m.source_channel,
    } for m in reply.members], "next_page_token": reply.next_page_token}


async def coupon_create(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    template = _message(params["template"], benefits_pb.CouponTemplate(), "template")
    template.brand_id = ctx.grant.brand_id
    reply = await ctx.upstreams.benefits_admin.CreateCouponTemplate(
        benefits_pb.CreateCouponTemplateRequest(
            request_id=_business_request_id(ctx, "coupon-create", params["businessId"]),
            template=template))
    return {"businessId": params["businessId"], "template": proto_json(reply.template)}


async def coupon_close(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    reply = await ctx.upstreams.benefits_admin.CloseCouponTemplate(
        benefits_pb.CloseCouponTemplateRequest(
            request_id=f"isv:{ctx.app_key}:{ctx.sign}", brand_id=ctx.grant.brand_id,
            template_id=params["template_id"]))
    return {"template": proto_json(reply.template)}


async def coupon_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    size, token = _page(params)
    reply = await ctx.upstreams.benefits_admin.ListCouponTemplates(
        benefits_pb.ListCouponTemplatesRequest(brand_id=ctx.grant.brand_id, page_size=size,
                                               page_token=token))
    return {"templates": [proto_json(t) for t in reply.templates],
            "next_page_token": reply.next_page_token}


async def giftpack_create(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    pack = _message(params["gift_pack"], benefits_pb.GiftPack(), "gift_pack")
    pack.brand_id = ctx.grant.brand_id
    request_id = _business_request_id(ctx, "giftpack", params["businessId"])
    reply = await ctx.upstreams.benefits_admin.CreateGiftPack(benefits_pb.CreateGiftPackRequest(
        request_id=request_id, gift_pack=pack))
    await sync_lv0_offer(ctx.upstreams, ctx.grant.brand_id, request_id)
    return {"businessId": params["businessId"], "gift_pack": proto_json(reply.gift_pack)}


async def giftpack_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    size, token = _page(params)
    reply = await ctx.upstreams.benefits_admin.ListGiftPacks(benefits_pb.ListGiftPacksRequest(
        brand_id=ctx.grant.brand_id, page_size=size, page_token=token))
    return {"gift_packs": [proto_json(p) for p in reply.gift_packs],
            "next_page_token": reply.next_page_token}


def _isv_owner(ctx: CallContext) -> engagement_pb.Owner:
    return engagement_pb.Owner(kind=engagement_pb.OWNER_KIND_ISV_APP, id=ctx.app_key)


_ACTIVITY_STATES = {"DRAFT": engagement_pb.ACTIVITY_STATE_DRAFT,
                    "SCHEDULED": engagement_pb.ACTIVITY_STATE_SCHEDULED,
                    "LIVE": engagement_pb.ACTIVITY_STATE_LIVE,
                    "CLOSED": engagement_pb.ACTIVITY_STATE_CLOSED}


async def activity_create(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    spec = _message(params["spec"], engagement_pb.ActivitySpec(), "spec")
    reply = await ctx.upstreams.engagement.CreateActivity(engagement_pb.CreateActivityRequest(
        request_id=_business_request_id(ctx, "activity", params["businessId"]),
        brand_id=ctx.grant.brand_id, owner=_isv_owner(ctx), spec=spec,
        publish=bool(params["publish"])))
    return {"businessId": params["businessId"], "activity": proto_json(reply.activity)}


async def activity_modify(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    spec = _message(params["spec"], engagement_pb.ActivitySpec(), "spec")
    reply = await ctx.upstreams.engagement.UpdateActivity(engagement_pb.UpdateActivityRequest(
        request_id=f"isv:{ctx.app_key}:{ctx.sign}", brand_id=ctx.grant.brand_id,
        activity_id=params["activity_id"], actor=_isv_owner(ctx), spec=spec))
    return {"activity": proto_json(reply.activity)}


async def activity_close(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    reply = await ctx.upstreams.engagement.CloseActivity(engagement_pb.CloseActivityRequest(
        request_id=f"isv:{ctx.app_key}:{ctx.sign}", brand_id=ctx.grant.brand_id,
        activity_id=params["activity_id"], actor=_isv_owner(ctx)))
    return {"activity": proto_json(reply.activity)}


async def activity_get(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    reply = await ctx.upstreams.engagement.GetActivity(engagement_pb.GetActivityRequest(
        brand_id=ctx.grant.brand_id, activity_id=params["activity_id"],
        view=engagement_pb.ACTIVITY_VIEW_PUBLIC))
    return {"activity": proto_json(reply.activity)}


async def activity_list(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
    state = (params["state"] or "").upper()
    if state and state not in _ACTIVITY_STATES:
        raise ParamError("state must be DRAFT, SCHEDULED, LIVE or CLOSED", field="state")
    size, token = _page(params)
    reply = await ctx.upstreams.engagement.ListActivities(engagement_pb.ListActivitiesRequest(
        brand_id=ctx.grant.brand_id, page_size=size, page_token=token,
        state=_ACTIVITY_STATES.get(state, engagement_pb.ACTIVITY_STATE_UNSPECIFIED),
        view=engagement_pb.ACTIVITY_VIEW_PUBLIC))
    return {"activities": [proto_json(a) for a in reply.activities],
            "next_page_token": reply.next_page_token}


METHODS: dict[str, tuple[MethodSpec, Handler]] = {}


def _register(spec: MethodSpec, handler: Handler) -> None:
    METHODS[spec.name] = (spec, handler)


_register(MethodSpec(
    "brandclub.member.get", "member.read",
    "A member of the authorising shop's brand: status (LV0, CARD_MEMBER), level, since when, "
    "followed shops. Members of other brands are not found.",
    write=False, params=(ACCOUNT_ID,),
    result={"member.account_id": "string", "member.brand_id": "string",
            "member.status": "LV0 | CARD_MEMBER", "member.level": "integer (0 for LV0)",
            "member.member_since": "ISO 8601 time",
            "member.followed_shop_ids": "array of shop ids"}),
    member_get)

_register(MethodSpec(
    "brandclub.points.balance.get", "points.read",
    "A member's points balance in the authorising shop's brand.",
    write=False, params=(ACCOUNT_ID,),
    result={"account_id": "string", "available_points": "integer: spendable now",
            "pending_points": "integer: earned, still inside an order's return window"}),
    points_balance_get)


POINTS = Param("points", "integer", "points to move", required=True, minimum=1,
               maximum=1_000_000)

_register(MethodSpec(
    "brandclub.points.grant", "points.write",
    "Grants points to a member of the authorising shop's brand, at once available. "
    "De-duplicated by businessId.",
    write=True, params=(ACCOUNT_ID, POINTS, BUSINESS_ID, REASON),
    result={"businessId": "string", "entry.entry_id": "string", "entry.amount": "integer",
            "entry.reason": "string", "entry.created_at": "ISO 8601 time",
            "available_points": "integer: balance after the grant",
            "pending_points": "integer"}),
    points_grant)

_register(MethodSpec(
    "brandclub.points.deduct", "points.write",
    "Deducts points from a member, soonest-expiring first; never below zero (business code "
    "INSUFFICIENT_POINTS). De-duplicated by businessId.",
    write=True, params=(ACCOUNT_ID, POINTS, BUSINESS_ID, REASON),
    result={"businessId": "string", "entry.entry_id": "string",
            "entry.amount": "integer (negative)", "entry.reason": "string",
            "entry.created_at": "ISO 8601 time",
            "available_points": "integer: balance after the deduction"}),
    points_deduct)

_register(MethodSpec(
    "brandclub.points.entry.list", "points.read",
    "A member's points ledger (points detail), newest first, paged.",
    write=False, params=(ACCOUNT_ID,
                         Param("page_size", "integer", "entries per page (default 50)",
                               minimum=0, maximum=200, default=0),
                         Param("page_token", "string", "next_page_token of the previous page",
                               max_length=512, default="")),
    result={"entries[].entry_id": "string", "entries[].amount": "integer (signed)",
            "entries[].reason": "string", "entries[].created_at": "ISO 8601 time",
            "next_page_token": "string, empty on the last page"}),
    points_entry_list)

_register(MethodSpec(
    "brandclub.coupon.issue", "coupon.write",
    "Issues one coupon of a template to a member. De-duplicated by businessId.",
    write=True, params=(ACCOUNT_ID,
                        Param("coupon_template_id", "string", "the brand's coupon template",
                              required=True, max_length=64),
                        BUSINESS_ID, REASON),
    result={"businessId": "string", "coupon_id": "string", "coupon_template_id": "string",
            "expires_at": "ISO 8601 time"}),
    coupon_issue)


PAGE_SIZE = Param("page_size", "integer", "items per page (default 50)", minimum=0,
                  maximum=200, default=0)
PAGE_TOKEN = Param("page_token", "string", "next_page_token of the previous page",
                   max_length=512, default="")

_register(MethodSpec(
    "brandclub.member.scan", "member.read",
    "Pages through the members of the authorising shop's brand (LV0 and card members; no "
    "personal data).",
    write=False, params=(Param("status", "string", "LV0 or CARD_MEMBER (default: both)",
                               max_length=16, default=""), PAGE_SIZE, PAGE_TOKEN),
    result={"members[].account_id": "string", "members[].status": "LV0 | CARD_MEMBER",
            "members[].level": "integer", "members[].member_since": "ISO 8601 time",
            "members[].dormant": "boolean: abnormal or long-inactive account",
            "members[].source_channel": "string",
            "next_page_token": "string, empty on the last page"}),
    member_scan)

_register(MethodSpec(
    "brandclub.coupon.create", "coupon.write",
    "Creates a coupon (template with stock) in the brand. `template` is a CouponTemplate in "
    "the proto3 JSON mapping (title, kind COUPON_KIND_AMOUNT_OFF | COUPON_KIND_PERCENT_OFF, "
    "amount_off_cents, percent_off, threshold_cents, claim_start_time, claim_end_time, "
    "valid_days or valid_start_time/valid_end_time, total_stock, per_member_limit, "
    "eligible_levels, placements). De-duplicated by businessId.",
    write=True, params=(Param("template", "object", "the coupon template", required=True),
                        BUSINESS_ID),
    result={"businessId": "string",
            "template": "the created CouponTemplate (template_id, delivery_url, state, ...)"}),
    coupon_create)

_register(MethodSpec(
    "brandclub.coupon.close", "coupon.write",
    "Closes a coupon template: no more claims or issues; issued coupons stay valid.",
    write=True, params=(Param("template_id", "string", "the coupon template", required=True,
                              max_length=64),),
    result={"template": "the CouponTemplate, state COUPON_TEMPLATE_STATE_CLOSED"}),
    coupon_close)

_register(MethodSpec(
    "brandclub.coupon.list", "coupon.read",
    "Pages through the brand's coupon templates.",
    write=False, params=(PAGE_SIZE, PAGE_TOKEN),
    result={"templates": "array of CouponTemplate", "next_page_token": "string"}),
    coupon_list)

_register(MethodSpec(
    "brandclub.giftpack.create", "giftpack.write",
    "Creates a gift pack (points and coupons, granted on card opening in its window). "
    "`gift_pack` is a GiftPack in the proto3 JSON mapping (title, points, coupons "
    "[{coupon_template_id, quantity}], enabled, start_time, end_time). De-duplicated by "
    "businessId.",
    write=True, params=(Param("gift_pack", "object", "the gift pack", required=True),
                        BUSINESS_ID),
    result={"businessId": "string", "gift_pack": "the created GiftPack (gift_pack_id, ...)"}),
    giftpack_create)

_register(MethodSpec(
    "brandclub.giftpack.list", "giftpack.read",
    "Pages through the brand's gift packs.",
    write=False, params=(PAGE_SIZE, PAGE_TOKEN),
    result={"gift_packs": "array of GiftPack", "next_page_token": "string"}),
    giftpack_list)


ACTIVITY_ID = Param("activity_id", "string", "the activity", required=True, max_length=64)
SPEC = Param("spec", "object",
             "an ActivitySpec in the proto3 JSON mapping: title, description, start_time, "
             "end_time, audience {levels}, and one of sign_in, lottery, vote, quiz, invite",
             required=True)

_register(MethodSpec(
    "brandclub.activity.create", "activity.write",
    "Creates an activity owned by the app (a draft, or published at once with publish=true). "
    "De-duplicated by businessId.",
    write=True, params=(SPEC, Param("publish", "boolean", "publish at once", default=False),
                        BUSINESS_ID),
    result={"businessId": "string",
            "activity": "the Activity (activity_id, state, version, spec, ...)"}),
    activity_create)

_register(MethodSpec(
    "brandclub.activity.modify", "activity.write",
    "Replaces the definition of an activity the app owns.",
    write=True, params=(ACTIVITY_ID, SPEC),
    result={"activity": "the Activity after the change (version increased)"}),
    activity_modify)

_register(MethodSpec(
    "brandclub.activity.close", "activity.write",
    "Closes an activity the app owns.",
    write=True, params=(ACTIVITY_ID,),
    result={"activity": "the Activity, state ACTIVITY_STATE_CLOSED"}),
    activity_close)

_register(MethodSpec(
    "brandclub.activity.get", "activity.read",
    "One activity of the brand (the members' view: quiz answers left out).",
    write=False, params=(ACTIVITY_ID,),
    result={"activity": "the Activity"}),
    activity_get)

_register(MethodSpec(
    "brandclub.activity.list", "activity.read",
    "Pages through the brand's activities, newest first.",
    write=False, params=(Param("state", "string", "DRAFT, SCHEDULED, LIVE or CLOSED",
                               max_length=16, default=""), PAGE_SIZE, PAGE_TOKEN),
    result={"activities": "array of Activity", "next_page_token": "string"}),
    activity_list)


def catalogue() -> list[dict[str, Any]]:
    return [spec.describe() for spec, _ in sorted(METHODS.values(), key=lambda m: m[0].name)]

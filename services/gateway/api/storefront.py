"""Storefront API (shoppers): HTTP/JSON over the services' gRPC contracts.

A shopper reaches only their own data: the account always comes from the token, never from the
request. Abuse-prone writes are rate limited per shopper and per device (X-Device-Id).
"""

from __future__ import annotations

from typing import Any

import grpc
from aiohttp import web

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from brandclub.engagement.v1 import engagement_service_pb2 as engagement_pb
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.messaging.v1 import messaging_service_pb2 as messaging_pb
from libs.errors import ResourceExhausted
from libs.grpc_client import remote_error
from libs.paging import MAX_PAGE_SIZE
from libs.protoconv import from_timestamp
from services.gateway.adapters.limits import Window
from services.gateway.api.app_keys import LIMITER, UPSTREAMS, VERIFIER
from services.gateway.api.http_common import json_body, page_query, request_id
from services.gateway.api.proto_body import body_into, proto_json
from services.gateway.api.routes import (
    PAGE_PARAMS,
    Route,
    RouteTable,
    Schema,
    array,
    integer,
    obj,
    string,
)

_STATUS_NAMES = {
    membership_pb.MEMBER_STATUS_LV0: "LV0",
    membership_pb.MEMBER_STATUS_CARD_MEMBER: "CARD_MEMBER",
    membership_pb.MEMBER_STATUS_ENDED: "ENDED",
}

# Per shopper and per device, for flows that farm rewards when repeated.
ABUSE_LIMITS = {
    "follow": (Window("minute", 60, 30), Window("hour", 3600, 300)),
    "claim": (Window("minute", 60, 20), Window("hour", 3600, 200)),
    "redeem": (Window("minute", 60, 10), Window("hour", 3600, 100)),
    "sign_in": (Window("minute", 60, 10), Window("hour", 3600, 60)),
    "draw": (Window("minute", 60, 20), Window("hour", 3600, 300)),
}

CARD_SCHEMA = obj({
    "brand": obj({"id": string(), "name": string()}),
    "status": string(enum=["LV0", "CARD_MEMBER", "ENDED"]),
    "level": integer("0 for LV0, 1..n for card members"),
    "member_since": string(format="date-time"),
    "lv0_notice_pending": {"type": "boolean"},
    "followed_shop_ids": array(string()),
    "gift_pack_offered": {"type": "boolean",
                          "description": "LV0: the brand offers a card-opening gift pack"},
    "gift_pack_id": string("the offered card-opening gift pack (empty: none)"),
})


def card_json(card: membership_pb.MemberCard) -> dict[str, Any]:
    return {
        "brand": {"id": card.brand_id, "name": card.brand_display_name},
        "status": _STATUS_NAMES.get(card.status, "UNSPECIFIED"),
        "level": card.level,
        "member_since": from_timestamp(card.member_since).isoformat(),
        "lv0_notice_pending": card.lv0_notice_pending,
        "followed_shop_ids": list(card.followed_shop_ids),
        "gift_pack_offered": card.gift_pack_offered,
        "gift_pack_id": card.gift_pack_id,
    }


async def _shopper(request: web.Request) -> str:
    principal = await request.app[VERIFIER].verify(request.headers.get("Authorization"))
    return principal.require_shopper()


async def limit_abuse(request: web.Request, action: str, account_id: str) -> None:
    """Refuse with 429 once the shopper or the device exceeds the action's windows."""
    windows = list(ABUSE_LIMITS[action])
    limiter = request.app[LIMITER]
    subjects = [f"sf:{action}:acct:{account_id}"]
    device = request.headers.get("X-Device-Id", "").strip()[:128]
    if device:
        subjects.append(f"sf:{action}:dev:{device}")
    for subject in subjects:
        exceeded = await limiter.hit(subject, windows)
        if exceeded is not None:
            raise ResourceExhausted(
                f"too many {action} requests; at most {exceeded.limit} per {exceeded.name}",
                reason="RATE_LIMITED",
                metadata={"action": action, "window": exceeded.name,
                          "retry_after_seconds": str(exceeded.seconds)})


async def follow_shop(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    await limit_abuse(request, "follow", account_id)
    reply = await request.app[UPSTREAMS].membership.FollowShop(membership_pb.FollowShopRequest(
        request_id=f"{account_id}:{request_id(request)}", shop_id=request.match_info["shop_id"],
        account_id=account_id, channel="storefront"))
    return web.json_response({"card": card_json(reply.card),
                              "became_member": reply.became_member})


async def unfollow_shop(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    reply = await request.app[UPSTREAMS].membership.UnfollowShop(
        membership_pb.UnfollowShopRequest(
            request_id=f"{account_id}:{request_id(request)}",
            shop_id=request.match_info["shop_id"], account_id=account_id))
    return web.json_response({"card": card_json(reply.card)})


async def member_card(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    reply = await request.app[UPSTREAMS].membership.GetMemberCard(
        membership_pb.GetMemberCardRequest(brand_id=request.match_info["brand_id"],
                                           account_id=account_id))
    return web.json_response({"card": card_json(reply.card)})


async def points_balance(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    reply = await request.app[UPSTREAMS].benefits.GetPointsBalance(
        benefits_pb.GetPointsBalanceRequest(brand_id=request.match_info["brand_id"],
                                            account_id=account_id))
    return web.json_response({"points": {"brand_id": reply.brand_id,
                                         "available": reply.available_points,
                                         "pending": reply.pending_points}})


_OWN = ("request_id", "brand_id", "account_id")


async def points_entries(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    size, token = page_query(request)
    reply = await request.app[UPSTREAMS].benefits.ListPointsEntries(
        benefits_pb.ListPointsEntriesRequest(brand_id=request.match_info["brand_id"],
                                             account_id=account_id, page_size=size,
                                             page_token=token))
    return web.json_response({"entries": [proto_json(e) for e in reply.entries],
                              "next_page_token": reply.next_page_token})


async def expiring_points(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    size, token = page_query(request)
    reply = await request.app[UPSTREAMS].benefits.ListExpiringPoints(
        benefits_pb.ListExpiringPointsRequest(brand_id=request.match_info["brand_id"],
                                              account_id=account_id, page_size=size,
                                              page_token=token))
    return web.json_response({"expiring": [proto_json(e) for e in reply.expiring],
                              "next_page_token": reply.next_page_token})


async def my_coupons(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    size, token = page_query(request)
    reply = await request.app[UPSTREAMS].benefits.ListMemberCoupons(
        benefits_pb.ListMemberCouponsRequest(
            brand_id=request.match_info["brand_id"], account_id=account_id,
            only_valid=request.query.get("only_valid", "").lower() in ("1", "true"),
            page_size=size, page_token=token))
    return web.json_response({"coupons": [proto_json(c) for c in reply.coupons],
                              "next_page_token": reply.next_page_token})


async def claimable_coupons(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    size, token = page_query(request)
    reply = await request.app[UPSTREAMS].benefits.ListClaimableCoupons(
        benefits_pb.ListClaimableCouponsRequest(brand_id=request.match_info["brand_id"],
                                                account_id=account_id, page_size=size,
                                                page_token=token))
    return web.json_response(proto_json(reply))


async def coupon_offer(request: web.Request) -> web.Response:
    """What a template's delivery_url shows: the coupon, and whether this shopper may claim it
    now (claiming is a POST to the same URL + /claim)."""
    account_id = await _shopper(request)
    brand_id, template_id = request.match_info["brand_id"], request.match_info["template_id"]
    upstreams = request.app[UPSTREAMS]
    template = (await upstreams.benefits_admin.GetCouponTemplate(
        benefits_pb.GetCouponTemplateRequest(brand_id=brand_id, template_id=template_id))).template
    return web.json_response({
        "template": proto_json(template),
        "claimable": await _may_claim(upstreams, brand_id, account_id, template_id)})


async def _may_claim(upstreams: Any, brand_id: str, account_id: str, template_id: str) -> bool:
    """Whether the template is among the shopper's claimable coupons, over every page."""
    token = ""
    while True:
        page = await upstreams.benefits.ListClaimableCoupons(
            benefits_pb.ListClaimableCouponsRequest(brand_id=brand_id, account_id=account_id,
                                                    page_size=MAX_PAGE_SIZE, page_token=token))
        if any(t.template_id == template_id for t in page.templates):
            return True
        if not page.next_page_token:
            return False
        token = page.next_page_token


async def claim_coupon(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    await limit_abuse(request, "claim", account_id)
    reply = await request.app[UPSTREAMS].benefits.ClaimCoupon(benefits_pb.ClaimCouponRequest(
        request_id=f"{account_id}:{request_id(request)}", brand_id=request.match_info["brand_id"],
        account_id=account_id, coupon_template_id=request.match_info["template_id"]))
    return web.json_response(proto_json(reply))


async def mall_items(request: web.Request) -> web.Response:
    await _shopper(request)
    size, token = page_query(request)
    reply = await request.app[UPSTREAMS].benefits.ListMallItems(benefits_pb.ListMallItemsRequest(
        brand_id=request.match_info["brand_id"], page_size=size, page_token=token))
    return web.json_response(proto_json(reply))


async def redeem_item(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    await limit_abuse(request, "redeem", account_id)
    message = benefits_pb.RedeemMallItemRequest()
    body_into(await json_body(request), message, forbidden=(*_OWN, "item_id"))
    message.request_id = f"{account_id}:{request_id(request)}"
    message.brand_id, message.account_id = request.match_info["brand_id"], account_id
    message.item_id = request.match_info["item_id"]
    reply = await request.app[UPSTREAMS].benefits.RedeemMallItem(message)
    return web.json_response(proto_json(reply))


async def redemptions(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    size, token = page_query(request)
    reply = await request.app[UPSTREAMS].benefits.ListRedemptions(
        benefits_pb.ListRedemptionsRequest(brand_id=request.match_info["brand_id"],
                                           account_id=account_id, page_size=size,
                                           page_token=token))
    return web.json_response(proto_json(reply))


async def open_card(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    message = membership_pb.OpenCardRequest()
    body_into(await json_body(request), message, forbidden=(*_OWN, "channel"))
    message.request_id = f"{account_id}:{request_id(request)}"
    message.brand_id, message.account_id = request.match_info["brand_id"], account_id
    message.channel = "storefront"
    reply = await request.app[UPSTREAMS].membership.OpenCard(message)
    return web.json_response(proto_json(reply))


async def cancel_membership(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    message = membership_pb.CancelMembershipRequest()
    body_into(await json_body(request), message, forbidden=_OWN)
    message.request_id = f"{account_id}:{request_id(request)}"
    message.brand_id, message.account_id = request.match_info["brand_id"], account_id
    reply = await request.app[UPSTREAMS].membership.CancelMembership(message)
    return web.json_response(proto_json(reply))


async def dismiss_lv0_notice(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    reply = await request.app[UPSTREAMS].membership.ClearLv0Notice(
        membership_pb.ClearLv0NoticeRequest(request_id=f"{account_id}:{request_id(request)}",
                                            brand_id=request.match_info["brand_id"],
                                            account_id=account_id))
    return web.json_response(proto_json(reply))


async def activities(request: web.Request) -> web.Response:
    await _shopper(request)
    size, token = page_query(request)
    reply = await request.app[UPSTREAMS].engagement.ListActivities(
        engagement_pb.ListActivitiesRequest(brand_id=request.match_info["brand_id"],
                                            page_size=size, page_token=token,
                                            view=engagement_pb.ACTIVITY_VIEW_PUBLIC))
    return web.json_response(proto_json(reply))


async def sign_in(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    await limit_abuse(request, "sign_in", account_id)
    reply = await request.app[UPSTREAMS].engagement.SignIn(engagement_pb.SignInRequest(
        request_id=f"{account_id}:{request_id(request)}", brand_id=request.match_info["brand_id"],
        activity_id=request.match_info["activity_id"], account_id=account_id))
    return web.json_response(proto_json(reply))


async def sign_in_status(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    reply = await request.app[UPSTREAMS].engagement.GetSignInStatus(
        engagement_pb.GetSignInStatusRequest(brand_id=request.match_info["brand_id"],
                                             activity_id=request.match_info["activity_id"],
                                             account_id=account_id))
    return web.json_response(proto_json(reply))


async def draw(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    await limit_abuse(request, "draw", account_id)
    reply = await request.app[UPSTREAMS].engagement.DrawLottery(engagement_pb.DrawLotteryRequest(
        request_id=f"{account_id}:{request_id(request)}", brand_id=request.match_info["brand_id"],
        activity_id=request.match_info["activity_id"], account_id=account_id))
    return web.json_response(proto_json(reply))


async def vote(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    message = engagement_pb.CastVoteRequest()
    body_into(await json_body(request), message, forbidden=(*_OWN, "activity_id"))
    message.request_id = f"{account_id}:{request_id(request)}"
    message.brand_id, message.account_id = request.match_info["brand_id"], account_id
    message.activity_id = request.match_info["activity_id"]
    reply = await request.app[UPSTREAMS].engagement.CastVote(message)
    return web.json_response(proto_json(reply))


async def vote_results(request: web.Request) -> web.Response:
    await _shopper(request)
    reply = await request.app[UPSTREAMS].engagement.GetVoteResults(
        engagement_pb.GetVoteResultsRequest(brand_id=request.match_info["brand_id"],
                                            activity_id=request.match_info["activity_id"]))
    return web.json_response(proto_json(reply))


async def quiz(request: web.Request) -> web.Response:
    await _shopper(request)
    reply = await request.app[UPSTREAMS].engagement.GetQuiz(engagement_pb.GetQuizRequest(
        brand_id=request.match_info["brand_id"], activity_id=request.match_info["activity_id"]))
    return web.json_response(proto_json(reply))


async def submit_quiz(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    message = engagement_pb.SubmitQuizRequest()
    body_into(await json_body(request), message, forbidden=(*_OWN, "activity_id"))
    message.request_id = f"{account_id}:{request_id(request)}"
    message.brand_id, message.account_id = request.match_info["brand_id"], account_id
    message.activity_id = request.match_info["activity_id"]
    reply = await request.app[UPSTREAMS].engagement.SubmitQuiz(message)
    return web.json_response(proto_json(reply))


async def invite_code(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    reply = await request.app[UPSTREAMS].engagement.GetInviteCode(
        engagement_pb.GetInviteCodeRequest(brand_id=request.match_info["brand_id"],
                                           activity_id=request.match_info["activity_id"],
                                           account_id=account_id))
    return web.json_response(proto_json(reply))


async def my_invites(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    size, token = page_query(request)
    reply = await request.app[UPSTREAMS].engagement.ListInvites(engagement_pb.ListInvitesRequest(
        brand_id=request.match_info["brand_id"], activity_id=request.match_info["activity_id"],
        inviter_account_id=account_id, page_size=size, page_token=token))
    return web.json_response(proto_json(reply))


async def my_rewards(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    size, token = page_query(request)
    reply = await request.app[UPSTREAMS].engagement.ListMemberRewardGrants(
        engagement_pb.ListMemberRewardGrantsRequest(
            brand_id=request.match_info["brand_id"], account_id=account_id, page_size=size,
            page_token=token))
    return web.json_response(proto_json(reply))


async def inbox(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    size, token = page_query(request)
    reply = await request.app[UPSTREAMS].messaging.ListInboxMessages(
        messaging_pb.ListInboxMessagesRequest(
            brand_id=request.match_info["brand_id"], account_id=account_id, page_size=size,
            page_token=token,
            unread_only=request.query.get("unread_only", "").lower() in ("1", "true")))
    return web.json_response(proto_json(reply))


async def inbox_mark_read(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    message = messaging_pb.MarkInboxMessagesReadRequest()
    body_into(await json_body(request), message, forbidden=_OWN)
    message.request_id = f"{account_id}:{request_id(request)}"
    message.brand_id, message.account_id = request.match_info["brand_id"], account_id
    reply = await request.app[UPSTREAMS].messaging.MarkInboxMessagesRead(message)
    return web.json_response(proto_json(reply))


async def inbox_unread_count(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
    try:
        reply = await request.app[UPSTREAMS].messaging.GetInboxUnreadCount(
            messaging_pb.GetInboxUnreadCountRequest(brand_id=request.match_info["brand_id"],
                                                    account_id=account_id))
    except grpc.aio.AioRpcError as error:
        raise remote_error(error) from None
    return web.json_response({"unread_count": reply.unread_count})


def _contract(message: str) -> Schema:
    return {"type": "object", "description": f"the contract's {message} in the proto3 JSON "
                                             "mapping (field names as in protos/)"}


def routes(table: RouteTable) -> None:
    tag = "storefront"
    table.add(Route("POST", "/storefront/v1/shops/{shop_id}/follow", follow_shop,
                    "Follow a shop; a shopper who is not yet a member becomes LV0. "
                    "Rate limited per shopper and per device.", tag, "shopper",
                    obj({"card": CARD_SCHEMA, "became_member": {"type": "boolean"}}),
                    idempotent_key=True))
    table.add(Route("DELETE", "/storefront/v1/shops/{shop_id}/follow", unfollow_shop,
                    "Unfollow a shop; LV0 ends when no followed shop of the brand remains.",
                    tag, "shopper", obj({"card": CARD_SCHEMA}), idempotent_key=True))
    table.add(Route("GET", "/storefront/v1/brands/{brand_id}/card", member_card,
                    "The shopper's own member card for a brand.", tag, "shopper",
                    obj({"card": CARD_SCHEMA})))
    table.add(Route("GET", "/storefront/v1/brands/{brand_id}/points", points_balance,
                    "The shopper's own points balance for a brand.", tag, "shopper",
                    obj({"points": obj({"brand_id": string(), "available": integer(),
                                        "pending": integer()})})))
    brand = "/storefront/v1/brands/{brand_id}"
    table.add(Route("GET", f"{brand}/points/entries", points_entries,
                    "The shopper's points history, newest first.", tag, "shopper",
                    obj({"entries": array(_contract("benefits.v1.PointsEntry")),
                         "next_page_token": string()}), query=PAGE_PARAMS))
    table.add(Route("GET", f"{brand}/points/expiring", expiring_points,
                    "The shopper's points by expiry date.", tag, "shopper",
                    obj({"expiring": array(_contract("benefits.v1.ExpiringPoints")),
                         "next_page_token": string()}), query=PAGE_PARAMS))
    table.add(Route("GET", f"{brand}/coupons", my_coupons,
                    "The shopper's coupons.", tag, "shopper",
                    obj({"coupons": array(_contract("benefits.v1.Coupon")),
                         "next_page_token": string()}),
                    query=(*PAGE_PARAMS, ("only_valid", {"type": "boolean"},
                                          "only coupons not yet expired"))))
    table.add(Route("GET", f"{brand}/coupons/claimable", claimable_coupons,
                    "Coupons the shopper may claim now.", tag, "shopper",
                    _contract("benefits.v1.ListClaimableCouponsResponse"), query=PAGE_PARAMS))
    table.add(Route("GET", f"{brand}/coupons/{{template_id}}", coupon_offer,
                    "A coupon as its delivery_url shows it, and whether the shopper may claim "
                    "it now (claim: POST this URL + /claim).", tag, "shopper",
                    obj({"template": _contract("benefits.v1.CouponTemplate"),
                         "claimable": {"type": "boolean"}}), errors=(400, 401, 403, 404)))
    table.add(Route("POST", f"{brand}/coupons/{{template_id}}/claim", claim_coupon,
                    "Claim a member coupon. Rate limited per shopper and per device.", tag,
                    "shopper", _contract("benefits.v1.ClaimCouponResponse"),
                    idempotent_key=True, errors=(400, 401, 403, 404, 409)))
    table.add(Route("GET", f"{brand}/mall/items", mall_items,
                    "The brand's points-mall items.", tag, "shopper",
                    _contract("benefits.v1.ListMallItemsResponse"), query=PAGE_PARAMS))
    table.add(Route("POST", f"{brand}/mall/items/{{item_id}}/redeem", redeem_item,
                    "Redeem a points-mall item. Rate limited per shopper and per device.", tag,
                    "shopper", _contract("benefits.v1.RedeemMallItemResponse"),
                    body=obj({"quantity": integer(minimum=1),
                              "shipping_address": string("physical items only")}),
                    idempotent_key=True, errors=(400, 401, 403, 404, 409)))
    table.add(Route("GET", f"{brand}/rewards", my_rewards,
                    "The shopper's activity rewards (sign-in, vote, quiz, invite, prizes), "
                    "newest first: delivered, on the way, or not delivered with the reason and "
                    "whether what was paid for it was given back.", tag, "shopper",
                    _contract("engagement.v1.ListMemberRewardGrantsResponse"),
                    query=PAGE_PARAMS))
    table.add(Route("GET", f"{brand}/mall/redemptions", redemptions,
                    "The shopper's redemptions.", tag, "shopper",
                    _contract("benefits.v1.ListRedemptionsResponse"), query=PAGE_PARAMS))
    table.add(Route("POST", f"{brand}/card/open", open_card,
                    "Open the card (join): consent, terms version and profile.", tag, "shopper",
                    _contract("membership.v1.OpenCardResponse"),
                    body=obj({"terms_version": string(), "purposes": array(string()),
                              "phone": string(), "birthday": string("YYYY-MM-DD"),
                              "gender": string(), "baby_birthday": string(),
                              "invite_code": string(), "shop_id": string()},
                             required=["terms_version", "phone"]),
                    idempotent_key=True, errors=(400, 401, 403, 404, 409)))
    table.add(Route("POST", f"{brand}/card/cancel", cancel_membership,
                    "Cancel the membership; the brand loses the shopper's personal data.", tag,
                    "shopper", _contract("membership.v1.CancelMembershipResponse"),
                    body=obj({"reason": string()}), idempotent_key=True))
    table.add(Route("GET", f"{brand}/activities", activities,
                    "The brand's activities (members' view).", tag, "shopper",
                    _contract("engagement.v1.ListActivitiesResponse"), query=PAGE_PARAMS))
    activity = f"{brand}/activities/{{activity_id}}"
    table.add(Route("POST", f"{activity}/sign-in", sign_in,
                    "Sign in today. Rate limited per shopper and per device.", tag, "shopper",
                    _contract("engagement.v1.SignInResponse"), idempotent_key=True,
                    errors=(400, 401, 403, 404, 409)))
    table.add(Route("GET", f"{activity}/sign-in", sign_in_status,
                    "The shopper's sign-in streak and today's state.", tag, "shopper",
                    _contract("engagement.v1.GetSignInStatusResponse")))
    table.add(Route("POST", f"{activity}/draw", draw,
                    "Draw in a lottery. Rate limited per shopper and per device.", tag,
                    "shopper", _contract("engagement.v1.DrawLotteryResponse"),
                    idempotent_key=True, errors=(400, 401, 403, 404, 409)))
    table.add(Route("POST", f"{activity}/vote", vote, "Vote for an option.", tag, "shopper",
                    _contract("engagement.v1.CastVoteResponse"),
                    body=obj({"option_id": string()}, required=["option_id"]),
                    idempotent_key=True, errors=(400, 401, 403, 404, 409)))
    table.add(Route("GET", f"{activity}/vote", vote_results, "A vote's current results.",
                    tag, "shopper", _contract("engagement.v1.GetVoteResultsResponse")))
    table.add(Route("GET", f"{activity}/quiz", quiz,
                    "A quiz's questions (never the correct answers).", tag, "shopper",
                    _contract("engagement.v1.GetQuizResponse")))
    table.add(Route("POST", f"{activity}/quiz", submit_quiz, "Submit quiz answers.", tag,
                    "shopper", _contract("engagement.v1.SubmitQuizResponse"),
                    body=obj({"answers": array(obj({"question_id": string(),
                                                    "option_ids": array(string())}))},
                             required=["answers"]),
                    idempotent_key=True, errors=(400, 401, 403, 404, 409)))
    table.add(Route("GET", f"{activity}/invite-code", invite_code,
                    "The shopper's own invite code for an invite activity.", tag, "shopper",
                    _contract("engagement.v1.GetInviteCodeResponse")))
    table.add(Route("GET", f"{activity}/invites", my_invites,
                    "The friends the shopper invited.", tag, "shopper",
                    _contract("engagement.v1.ListInvitesResponse"), query=PAGE_PARAMS))
    table.add(Route("GET", f"{brand}/messages", inbox,
                    "The shopper's message box for the brand, newest first.", tag, "shopper",
                    _contract("messaging.v1.ListInboxMessagesResponse"),
                    query=(*PAGE_PARAMS, ("unread_only", {"type": "boolean"},
                                          "only unread messages"))))
    table.add(Route("POST", f"{brand}/messages/read", inbox_mark_read,
                    "Mark messages (or all) read.", tag, "shopper",
                    _contract("messaging.v1.MarkInboxMessagesReadResponse"),
                    body=obj({"message_ids": array(string()), "all": {"type": "boolean"}}),
                    idempotent_key=True))
    table.add(Route("GET", f"{brand}/messages/unread-count", inbox_unread_count,
                    "Unread messages in the shopper's message box.", tag, "shopper",
                    obj({"unread_count": integer(minimum=0)}), errors=(401, 403, 404)))
    table.add(Route("POST", f"{brand}/card/lv0-notice/dismiss", dismiss_lv0_notice,
                    "The one-time 'you are now LV0' notice has been shown.", tag, "shopper",
                    _contract("membership.v1.ClearLv0NoticeResponse"), idempotent_key=True))

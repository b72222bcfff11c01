"""Storefront API (shoppers): HTTP/JSON over the services' gRPC contracts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from libs.protoconv import from_timestamp
from services.gateway.adapters.auth import TokenVerifier
from services.gateway.adapters.upstreams import Upstreams
from services.gateway.api.http_common import request_id

_STATUS_NAMES = {
    membership_pb.MEMBER_STATUS_LV0: "LV0",
    membership_pb.MEMBER_STATUS_CARD_MEMBER: "CARD_MEMBER",
    membership_pb.MEMBER_STATUS_ENDED: "ENDED",
}

UPSTREAMS = web.AppKey("upstreams", Upstreams)
VERIFIER = web.AppKey("verifier", TokenVerifier)


def card_json(card: membership_pb.MemberCard) -> dict[str, Any]:
    return {
        "brand": {"id": card.brand_id, "name": card.brand_display_name},
        "status": _STATUS_NAMES.get(card.status, "UNSPECIFIED"),
        "level": card.level,
        "member_since": from_timestamp(card.member_since).isoformat(),
        "lv0_notice_pending": card.lv0_notice_pending,
        "followed_shop_ids": list(card.followed_shop_ids),
    }


async def _shopper(request: web.Request) -> str:
    principal = await request.app[VERIFIER].verify(request.headers.get("Authorization"))
    return principal.require_shopper()


async def follow_shop(request: web.Request) -> web.Response:
    account_id = await _shopper(request)
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


def add_routes(app: web.Application) -> None:
    app.router.add_post("/storefront/v1/shops/{shop_id}/follow", follow_shop)
    app.router.add_delete("/storefront/v1/shops/{shop_id}/follow", unfollow_shop)
    app.router.add_get("/storefront/v1/brands/{brand_id}/card", member_card)

"""Merchant console API: HTTP/JSON for a brand's operators, scoped by the merchant token to
one brand (the brand always comes from the token, never from the request)."""

from __future__ import annotations

from typing import Any

import grpc
from aiohttp import web
from google.protobuf.message import Message

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from brandclub.engagement.v1 import engagement_service_pb2 as engagement_pb
from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import isv_service_pb2 as isv_pb
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from libs.errors import InvalidArgument, NotFound
from libs.grpc_client import remote_error
from libs.protoconv import from_timestamp
from services.gateway.adapters.gift_pack_offer import sync_lv0_offer
from services.gateway.api.app_keys import UPSTREAMS
from services.gateway.api.http_common import (
    field_int,
    field_str,
    field_str_list,
    json_body,
    page_query,
    read_body_bytes,
    request_id,
)
from services.gateway.api.openplatform import OPEN_PLATFORM, authorize_shop, redirect_with
from services.gateway.api.proto_body import body_into, proto_json
from services.gateway.api.routes import (
    PAGE_PARAMS,
    Route,
    RouteTable,
    array,
    obj,
    string,
)
from services.gateway.api.rpc_routes import contract_schema, merchant_of, rpc_route

_MODES = {membership_pb.PROGRAM_MODE_CONNECTED: "CONNECTED",
          membership_pb.PROGRAM_MODE_NON_CONNECTED: "NON_CONNECTED"}

AUTHORIZATION_SCHEMA = obj({
    "authorization_id": string(), "app_key": string(), "app_name": string(),
    "shop_id": string(), "scopes": array(string()), "granted_by": string(),
    "granted_at": string(format="date-time"),
    "revoked_at": {"type": ["string", "null"], "format": "date-time"},
})


def authorization_json(authorization: isv_pb.Authorization) -> dict[str, Any]:
    return {
        "authorization_id": authorization.authorization_id,
        "app_key": authorization.app_key, "app_name": authorization.app_name,
        "shop_id": authorization.shop_id, "scopes": list(authorization.scopes),
        "granted_by": authorization.granted_by,
        "granted_at": from_timestamp(authorization.grant_time).isoformat(),
        "revoked_at": (from_timestamp(authorization.revoke_time).isoformat()
                       if authorization.HasField("revoke_time") else None),
    }


async def get_brand(request: web.Request) -> web.Response:
    brand_id, _ = await merchant_of(request)
    brand = (await request.app[UPSTREAMS].membership.GetBrand(
        membership_pb.GetBrandRequest(brand_id=brand_id))).brand
    return web.json_response({"brand": {
        "id": brand.brand_id, "name": brand.display_name,
        "mode": _MODES.get(brand.mode, "UNSPECIFIED"), "time_zone": brand.time_zone,
        "created_at": from_timestamp(brand.create_time).isoformat()}})


async def list_isv_authorizations(request: web.Request) -> web.Response:
    brand_id, _ = await merchant_of(request)
    size, token = page_query(request)
    include_revoked = request.query.get("include_revoked", "false").lower() in ("1", "true")
    try:
        reply = await request.app[UPSTREAMS].isv.ListAuthorizations(
            isv_pb.ListAuthorizationsRequest(brand_id=brand_id, include_revoked=include_revoked,
                                             page_size=size, page_token=token))
    except grpc.aio.AioRpcError as error:
        raise remote_error(error) from None
    return web.json_response({
        "authorizations": [authorization_json(a) for a in reply.authorizations],
        "next_page_token": reply.next_page_token})


async def grant_isv_authorization(request: web.Request) -> web.Response:
    brand_id, merchant_user_id = await merchant_of(request)
    body = await json_body(request)
    reply = await authorize_shop(
        request.app[OPEN_PLATFORM], brand_id=brand_id, merchant_user_id=merchant_user_id,
        app_key=field_str(body, "app_key", required=True, max_length=64),
        shop_id=field_str(body, "shop_id", required=True, max_length=64),
        redirect_uri=field_str(body, "redirect_uri", max_length=2000),
        scopes=field_str_list(body, "scopes"))
    state = field_str(body, "state", max_length=512)
    return web.json_response({
        "code": reply.code,
        "expires_at": from_timestamp(reply.expire_time).isoformat(),
        "redirect_to": redirect_with(reply.redirect_uri, code=reply.code, state=state)})


async def revoke_isv_authorization(request: web.Request) -> web.Response:
    brand_id, merchant_user_id = await merchant_of(request)
    app_key, shop_id = request.match_info["app_key"], request.match_info["shop_id"]
    try:
        reply = await request.app[UPSTREAMS].isv.RevokeAuthorization(
            isv_pb.RevokeAuthorizationRequest(
                request_id=f"{brand_id}:{merchant_user_id}:{request_id(request)}",
                brand_id=brand_id, app_key=app_key, shop_id=shop_id))
    except grpc.aio.AioRpcError as error:
        raise remote_error(error) from None
    return web.json_response({"authorization": authorization_json(reply.authorization)})


def _admin_view(message: Message, _: Any) -> None:
    message.view = engagement_pb.ACTIVITY_VIEW_ADMIN  # type: ignore[attr-defined]


def _brand_actor(message: Message, _: Any) -> None:
    message.actor.kind = engagement_pb.OWNER_KIND_BRAND  # type: ignore[attr-defined]


def _brand_owner(message: Message, _: Any) -> None:
    message.owner.kind = engagement_pb.OWNER_KIND_BRAND  # type: ignore[attr-defined]


def add_console_rpc_routes(table: RouteTable) -> None:
    """Program, members, coupons, gift packs, mall items, earning rules and activities: bodies
    are judged by protobuf's parser (`checked=False`), as they always were."""

    def route(method: str, url: str, *args: Any, **options: Any) -> None:
        table.add(rpc_route(method, url, *args, checked=False, **options))

    v1 = "/console/v1"
    route("GET", f"{v1}/program", "The brand's program: mode, terms, tiers, growth rules.",
          "membership", "GetProgram", membership_pb.GetProgramRequest,
          "membership.v1.GetProgramResponse")
    route("PUT", f"{v1}/program", "Replace the program's terms, tiers and rules.",
          "membership", "UpdateProgram", membership_pb.UpdateProgramRequest,
          "membership.v1.UpdateProgramResponse", write=True,
          body_schema=contract_schema("membership.v1.UpdateProgramRequest (without ids)"))
    route("GET", f"{v1}/members", "The brand's members (LV0 and card members), paged; no "
          "plaintext phone ever.", "membership", "ListMembers", membership_pb.ListMembersRequest,
          "membership.v1.ListMembersResponse", page=True)
    route("GET", f"{v1}/members/count", "Valid and dormant member counts.", "membership",
          "CountMembers", membership_pb.CountMembersRequest,
          "membership.v1.CountMembersResponse")
    route("GET", f"{v1}/members/{{account_id}}", "One member's detail (encrypted phone "
          "only, for connected brands).", "membership", "GetMember",
          membership_pb.GetMemberRequest, "membership.v1.GetMemberResponse",
          path=("account_id",))
    route("GET", f"{v1}/coupons", "The brand's coupon templates.", "benefits_admin",
          "ListCouponTemplates", benefits_pb.ListCouponTemplatesRequest,
          "benefits.v1.ListCouponTemplatesResponse", page=True)
    route("POST", f"{v1}/coupons", "Create a coupon template.", "benefits_admin",
          "CreateCouponTemplate", benefits_pb.CreateCouponTemplateRequest,
          "benefits.v1.CreateCouponTemplateResponse", nested="template",
          write=True, body_schema=obj({"template": contract_schema("benefits.v1.CouponTemplate")}))
    route("POST", f"{v1}/coupons/{{template_id}}/close", "Close a coupon template.",
          "benefits_admin", "CloseCouponTemplate", benefits_pb.CloseCouponTemplateRequest,
          "benefits.v1.CloseCouponTemplateResponse", path=("template_id",), write=True)
    route("GET", f"{v1}/gift-packs", "The brand's gift packs.", "benefits_admin",
          "ListGiftPacks", benefits_pb.ListGiftPacksRequest,
          "benefits.v1.ListGiftPacksResponse", page=True)
    gift_pack_routes(table)
    route("GET", f"{v1}/mall/items", "Every points-mall item of the brand.", "benefits_admin",
          "ListAllMallItems", benefits_pb.ListAllMallItemsRequest,
          "benefits.v1.ListAllMallItemsResponse", page=True)
    route("POST", f"{v1}/mall/items", "Create a points-mall item.", "benefits_admin",
          "CreateMallItem", benefits_pb.CreateMallItemRequest,
          "benefits.v1.CreateMallItemResponse", nested="item", write=True,
          body_schema=obj({"item": contract_schema("benefits.v1.MallItem")}))
    route("GET", f"{v1}/earning-rules", "The brand's points earning rules.", "benefits_admin",
          "ListEarningRules", benefits_pb.ListEarningRulesRequest,
          "benefits.v1.ListEarningRulesResponse", page=True)
    route("POST", f"{v1}/earning-rules", "Create an earning rule.", "benefits_admin",
          "CreateEarningRule", benefits_pb.CreateEarningRuleRequest,
          "benefits.v1.CreateEarningRuleResponse", nested="rule", write=True,
          body_schema=obj({"rule": contract_schema("benefits.v1.EarningRule")}))
    route("GET", f"{v1}/activities", "The brand's activities (owner's view).", "engagement",
          "ListActivities", engagement_pb.ListActivitiesRequest,
          "engagement.v1.ListActivitiesResponse", page=True, extra=_admin_view)
    route("POST", f"{v1}/activities", "Create an activity owned by the brand.", "engagement",
          "CreateActivity", engagement_pb.CreateActivityRequest,
          "engagement.v1.CreateActivityResponse", write=True, extra=_brand_owner,
          body_schema=obj({"spec": contract_schema("engagement.v1.ActivitySpec"),
                           "publish": {"type": "boolean"}}))
    route("PUT", f"{v1}/activities/{{activity_id}}", "Replace an activity's definition.",
          "engagement", "UpdateActivity", engagement_pb.UpdateActivityRequest,
          "engagement.v1.UpdateActivityResponse", write=True,
          path=("activity_id",), extra=_brand_actor,
          body_schema=obj({"spec": contract_schema("engagement.v1.ActivitySpec")}))
    route("POST", f"{v1}/activities/{{activity_id}}/close", "Close an activity.",
          "engagement", "CloseActivity", engagement_pb.CloseActivityRequest,
          "engagement.v1.CloseActivityResponse", path=("activity_id",), write=True,
          extra=_brand_actor)
    route("GET", f"{v1}/activities/{{activity_id}}/lottery-status", "A lottery's prizes "
          "(stock, won, delivered), draws, and draws stopped for good with their reason.",
          "engagement", "GetLotteryStatus", engagement_pb.GetLotteryStatusRequest,
          "engagement.v1.GetLotteryStatusResponse", path=("activity_id",))
    route("GET", f"{v1}/rewards/failed", "Activity rewards (sign-in, vote, quiz, invite, "
          "lottery and koi prizes) that could not be delivered, with the reason and whether "
          "their cost was given back; newest first, paged.", "engagement",
          "ListFailedRewardGrants", engagement_pb.ListFailedRewardGrantsRequest,
          "engagement.v1.ListFailedRewardGrantsResponse", page=True)


def _gift_pack_body(payload: dict[str, Any], message: Message, *, from_path: bool) -> None:
    inner = payload.get("gift_pack")
    for name in ("brand_id", "gift_pack_id") if from_path else ("brand_id",):
        if isinstance(inner, dict) and name in inner:
            source = "token" if name == "brand_id" else "path"
            raise InvalidArgument(f"{name} comes from the {source} and may not be sent",
                                  field=f"gift_pack.{name}", reason="FIELD_NOT_ALLOWED")
    body_into(payload, message, forbidden=("request_id",))


async def create_gift_pack(request: web.Request) -> web.Response:
    brand_id, user = await merchant_of(request)
    message = benefits_pb.CreateGiftPackRequest()
    _gift_pack_body(await json_body(request), message, from_path=False)
    message.gift_pack.brand_id = brand_id
    message.request_id = f"{brand_id}:{user}:{request_id(request)}"
    upstreams = request.app[UPSTREAMS]
    reply = await upstreams.benefits_admin.CreateGiftPack(message)
    await sync_lv0_offer(upstreams, brand_id, message.request_id)
    return web.json_response(proto_json(reply))


async def update_gift_pack(request: web.Request) -> web.Response:
    brand_id, user = await merchant_of(request)
    message = benefits_pb.UpdateGiftPackRequest()
    _gift_pack_body(await json_body(request), message, from_path=True)
    message.gift_pack.brand_id = brand_id
    message.gift_pack.gift_pack_id = request.match_info["gift_pack_id"]
    message.request_id = f"{brand_id}:{user}:{request_id(request)}"
    upstreams = request.app[UPSTREAMS]
    reply = await upstreams.benefits_admin.UpdateGiftPack(message)
    await sync_lv0_offer(upstreams, brand_id, message.request_id)
    return web.json_response(proto_json(reply))


async def close_gift_pack(request: web.Request) -> web.Response:
    """Withdraw a gift pack: it stays listed, disabled, and LV0 cards stop offering it."""
    brand_id, user = await merchant_of(request)
    pack_id = request.match_info["gift_pack_id"]
    upstreams = request.app[UPSTREAMS]
    token, pack = "", None
    for _ in range(100):
        page = await upstreams.benefits_admin.ListGiftPacks(benefits_pb.ListGiftPacksRequest(
            brand_id=brand_id, page_size=200, page_token=token))
        pack = next((p for p in page.gift_packs if p.gift_pack_id == pack_id), None)
        token = page.next_page_token
        if pack is not None or not token:
            break
    if pack is None:
        raise NotFound(f"gift pack {pack_id} does not exist", reason="GIFT_PACK_NOT_FOUND",
                       metadata={"gift_pack_id": pack_id})
    pack.enabled = False
    pack.ClearField("create_time")
    pack.ClearField("update_time")
    write_id = f"{brand_id}:{user}:{request_id(request)}"
    reply = await upstreams.benefits_admin.UpdateGiftPack(benefits_pb.UpdateGiftPackRequest(
        request_id=write_id, gift_pack=pack))
    await sync_lv0_offer(upstreams, brand_id, write_id)
    return web.json_response(proto_json(reply))


def gift_pack_routes(table: RouteTable) -> None:
    """Gift packs: every write also sets (or clears) the LV0 card's card-opening offer."""
    tag, v1 = "console", "/console/v1"
    body = obj({"gift_pack": contract_schema("benefits.v1.GiftPack")}, required=["gift_pack"])
    table.add(Route("POST", f"{v1}/gift-packs", create_gift_pack,
                    "Create a gift pack; an enabled, live one is offered on LV0 cards.", tag,
                    "merchant", contract_schema("benefits.v1.CreateGiftPackResponse"), body=body,
                    idempotent_key=True, errors=(400, 401, 403, 404, 409)))
    table.add(Route("PUT", f"{v1}/gift-packs/{{gift_pack_id}}", update_gift_pack,
                    "Replace a gift pack's definition (enabled false withdraws it).", tag,
                    "merchant", contract_schema("benefits.v1.UpdateGiftPackResponse"), body=body,
                    idempotent_key=True, errors=(400, 401, 403, 404, 409)))
    table.add(Route("POST", f"{v1}/gift-packs/{{gift_pack_id}}/close", close_gift_pack,
                    "Withdraw a gift pack: disabled, no longer offered to LV0 shoppers.", tag,
                    "merchant", contract_schema("benefits.v1.UpdateGiftPackResponse"),
                    idempotent_key=True, errors=(400, 401, 403, 404, 409)))


MAX_CSV_CHUNK_BYTES = 4_000_000
_EXPECTED_ROWS = identity_pb.StartPhoneMatchImportRequest.DESCRIPTOR.fields_by_name["expected_rows"]


async def _identity_call(call: Any) -> web.Response:
    try:
        reply = await call
    except grpc.aio.AioRpcError as error:
        raise remote_error(error) from None
    return web.json_response(proto_json(reply))


async def phone_match_key(request: web.Request) -> web.Response:
    brand_id, _ = await merchant_of(request)
    return await _identity_call(request.app[UPSTREAMS].identity.GetPhoneMatchKey(
        identity_pb.GetPhoneMatchKeyRequest(brand_id=brand_id)))


async def start_phone_import(request: web.Request) -> web.Response:
    brand_id, user = await merchant_of(request)
    body = await json_body(request)
    expected = field_int(body, "expected_rows", _EXPECTED_ROWS, minimum=0)
    return await _identity_call(request.app[UPSTREAMS].identity.StartPhoneMatchImport(
        identity_pb.StartPhoneMatchImportRequest(
            request_id=f"{brand_id}:{user}:{request_id(request)}", brand_id=brand_id,
            expected_rows=expected)))


async def append_phone_rows(request: web.Request) -> web.Response:
    """The body is the CSV chunk itself (text/csv): "<phone hmac hex>,<crm member id>" lines."""
    brand_id, user = await merchant_of(request)
    raw_index = request.match_info["chunk_index"]
    if not (raw_index.isascii() and raw_index.isdigit()) or int(raw_index) > 1_000_000:
        raise InvalidArgument("chunk_index must be a non-negative integer", field="chunk_index",
                              reason="FIELD_TYPE_INVALID")
    csv = await read_body_bytes(request, MAX_CSV_CHUNK_BYTES)
    return await _identity_call(request.app[UPSTREAMS].identity.AppendPhoneMatchRows(
        identity_pb.AppendPhoneMatchRowsRequest(
            request_id=f"{brand_id}:{user}:{request_id(request)}", brand_id=brand_id,
            import_id=request.match_info["import_id"], chunk_index=int(raw_index),
            csv=csv)))


async def complete_phone_import(request: web.Request) -> web.Response:
    brand_id, user = await merchant_of(request)
    return await _identity_call(request.app[UPSTREAMS].identity.CompletePhoneMatchImport(
        identity_pb.CompletePhoneMatchImportRequest(
            request_id=f"{brand_id}:{user}:{request_id(request)}", brand_id=brand_id,
            import_id=request.match_info["import_id"])))


async def get_phone_import(request: web.Request) -> web.Response:
    brand_id, _ = await merchant_of(request)
    return await _identity_call(request.app[UPSTREAMS].identity.GetPhoneMatchImport(
        identity_pb.GetPhoneMatchImportRequest(brand_id=brand_id,
                                               import_id=request.match_info["import_id"])))


def phone_import_routes(table: RouteTable) -> None:
    tag, v1 = "console", "/console/v1"
    table.add(Route("GET", f"{v1}/phone-match/key", phone_match_key,
                    "The published rule (HMAC key) the brand encrypts its members' phones with.",
                    tag, "merchant", contract_schema("identity.v1.GetPhoneMatchKeyResponse")))
    table.add(Route("POST", f"{v1}/phone-imports", start_phone_import,
                    "Start an import of the brand's encrypted phones (connected brands).", tag,
                    "merchant", contract_schema("identity.v1.StartPhoneMatchImportResponse"),
                    body=obj({"expected_rows": {"type": "integer", "minimum": 0}}),
                    idempotent_key=True))
    table.add(Route("PUT", f"{v1}/phone-imports/{{import_id}}/chunks/{{chunk_index}}",
                    append_phone_rows,
                    "Upload one CSV chunk (body: text/csv, '<phone hmac hex>,<crm member id>' "
                    "lines, at most 4,000,000 bytes; chunks numbered from 0).", tag, "merchant",
                    contract_schema("identity.v1.AppendPhoneMatchRowsResponse"),
                    idempotent_key=True, errors=(400, 401, 403, 404, 409)))
    table.add(Route("POST", f"{v1}/phone-imports/{{import_id}}/complete",
                    complete_phone_import, "Finish the import: rows become matchable.", tag,
                    "merchant", contract_schema("identity.v1.CompletePhoneMatchImportResponse"),
                    idempotent_key=True, errors=(400, 401, 403, 404, 409)))
    table.add(Route("GET", f"{v1}/phone-imports/{{import_id}}", get_phone_import,
                    "An import's progress and counts.", tag, "merchant",
                    contract_schema("identity.v1.GetPhoneMatchImportResponse")))


def routes(table: RouteTable) -> None:
    tag = "console"
    table.add(Route("GET", "/console/v1/brand", get_brand,
                    "The brand the merchant token is scoped to.", tag, "merchant",
                    obj({"brand": obj({"id": string(), "name": string(),
                                       "mode": string(enum=["CONNECTED", "NON_CONNECTED"]),
                                       "time_zone": string(),
                                       "created_at": string(format="date-time")})})))
    table.add(Route("GET", "/console/v1/isv-authorizations", list_isv_authorizations,
                    "The brand's ISV app authorisations, newest first.", tag, "merchant",
                    obj({"authorizations": array(AUTHORIZATION_SCHEMA),
                         "next_page_token": string()}),
                    query=(*PAGE_PARAMS,
                           ("include_revoked", {"type": "boolean"},
                            "also list revoked authorisations"))))
    table.add(Route("POST", "/console/v1/isv-authorizations", grant_isv_authorization,
                    "Authorise an ISV app for one shop of the brand (OAuth 2.0 authorisation "
                    "code): answers the code and the app's redirect URL carrying it.", tag,
                    "merchant",
                    obj({"code": string(), "expires_at": string(format="date-time"),
                         "redirect_to": string(format="uri")}),
                    body=obj({"app_key": string(), "shop_id": string(),
                              "scopes": array(string()),
                              "redirect_uri": string(format="uri"),
                              "state": string()}, required=["app_key", "shop_id"])))
    table.add(Route("DELETE", "/console/v1/isv-authorizations/{app_key}/shops/{shop_id}",
                    revoke_isv_authorization,
                    "Revoke an app's authorisation for a shop; its tokens stop working.", tag,
                    "merchant", obj({"authorization": AUTHORIZATION_SCHEMA}),
                    idempotent_key=True))
    add_console_rpc_routes(table)
    phone_import_routes(table)

"""Merchant console API for reaching members: segments and snapshots, dashboards, channels,
templates, consent and the messaging policy, campaigns and journeys; and the shopper's message-box
unread count.

Every console route acts on the merchant token's brand (never one named in the request). A JSON
body is checked against the contract's request message before it is sent on, so a bad body is a
400 whose `field` names the place (`rule.group.rules[1].condition.number`), never a 5xx.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import grpc
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from brandclub.membership.v1 import dashboard_service_pb2 as dashboard_pb
from brandclub.membership.v1 import segment_service_pb2 as segment_pb
from brandclub.messaging.v1 import messaging_service_pb2 as messaging_pb
from libs.errors import InvalidArgument
from libs.grpc_client import remote_error
from services.gateway.api.http_common import json_body, page_query, request_id
from services.gateway.api.routes import (
    PAGE_PARAMS,
    Route,
    RouteTable,
    Schema,
    integer,
    obj,
    string,
)
from services.gateway.api.storefront import UPSTREAMS, VERIFIER, proto_json

V1 = "/console/v1"
TAG = "console"

_INTEGERS = (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT32,
             FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT32,
             FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_FIXED32,
             FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED32,
             FieldDescriptor.TYPE_SFIXED64)
_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
_INT64_RANGE = (-(2 ** 63), 2 ** 63 - 1)
_MAX_DEPTH = 32
_DECIMAL = re.compile(r"-?[0-9]{1,20}")


def _bad(path: str, message: str, reason: str = "FIELD_TYPE_INVALID") -> InvalidArgument:
    return InvalidArgument(f"{path}: {message}", field=path, reason=reason)


def _check_scalar(value: Any, field: FieldDescriptor, path: str) -> None:
    kind = field.type
    if kind == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise _bad(path, "must be true or false")
    elif kind in _INTEGERS:
        number: Any = value
        if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
            number = int(value)
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int):
            raise _bad(path, "must be an integer")
        if not _INT64_RANGE[0] <= number <= _INT64_RANGE[1] or (
                kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32,
                         FieldDescriptor.TYPE_SFIXED32) and not -(2 ** 31) <= number < 2 ** 31):
            raise _bad(path, "is out of range", "FIELD_OUT_OF_RANGE")
    elif kind in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(path, "must be a number")
    elif kind == FieldDescriptor.TYPE_ENUM:
        enum = field.enum_type
        assert enum is not None
        names = [v.name for v in enum.values if v.number != 0]
        if not isinstance(value, str) or value not in enum.values_by_name \
                or enum.values_by_name[value].number == 0:
            raise _bad(path, f"must be one of {', '.join(names)}", "FIELD_ENUM_INVALID")
    elif kind == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise _bad(path, "must be a string")
    elif kind == FieldDescriptor.TYPE_BYTES and not isinstance(value, str):
        raise _bad(path, "must be a base64 string")


def _check_value(value: Any, field: FieldDescriptor, path: str, depth: int) -> None:
    message_type = field.message_type
    if field.type != FieldDescriptor.TYPE_MESSAGE or message_type is None:
        _check_scalar(value, field, path)
    elif message_type.full_name == "google.protobuf.Timestamp":
        if not isinstance(value, str):
            raise _bad(path, "must be an RFC 3339 date-time string")
        try:
            Timestamp().FromJsonString(value)
        except ValueError:
            raise _bad(path, "must be an RFC 3339 date-time, e.g. 2026-01-31T09:00:00Z") \
                from None
    else:
        check_message(value, message_type, path, depth + 1)


def check_message(value: Any, descriptor: Descriptor, path: str, depth: int = 0) -> None:
    """Refuse, with the place named, a JSON value that does not fit the message: unknown
    fields, wrong types, unknown enum values, two members of one oneof."""
    if depth > _MAX_DEPTH:
        raise _bad(path, "is nested too deeply", "FIELD_TOO_DEEP")
    if not isinstance(value, dict):
        raise _bad(path, "must be a JSON object")
    oneofs: dict[str, str] = {}
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        field = descriptor.fields_by_name.get(key) or next(
            (f for f in descriptor.fields if f.json_name == key), None)
        if field is None:
            raise _bad(where, "is not a field of this request", "FIELD_UNKNOWN")
        if item is None:
            continue
        oneof = field.containing_oneof
        if oneof is not None:
            if oneof.name in oneofs:
                raise _bad(where, f"only one of {oneofs[oneof.name]} and {key} may be set",
                           "FIELD_ONEOF_CONFLICT")
            oneofs[oneof.name] = key
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            if not isinstance(item, dict):
                raise _bad(where, "must be a JSON object")
            value_field = field.message_type.fields_by_name["value"]
            for map_key, map_value in item.items():
                _check_value(map_value, value_field, f"{where}.{map_key}", depth)
        elif field.is_repeated:
            if not isinstance(item, list):
                raise _bad(where, "must be an array")
            for index, element in enumerate(item):
                _check_value(element, field, f"{where}[{index}]", depth)
        else:
            _check_value(item, field, where, depth)


def _require(message: Message, paths: tuple[str, ...], payload: dict[str, Any]) -> None:
    """Each required field is set (a boolean: present in the body, false being a value)."""
    for dotted in paths:
        target: Any = message
        *parents, name = dotted.split(".")
        for parent in parents:
            target = getattr(target, parent)
        descriptor = target.DESCRIPTOR.fields_by_name[name]
        if descriptor.is_repeated:
            present = len(getattr(target, name)) > 0
        elif descriptor.type == FieldDescriptor.TYPE_BOOL:
            present = _in_body(payload, dotted)
        elif descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            present = target.HasField(name)
        else:
            present = bool(getattr(target, name))
        if not present:
            raise InvalidArgument(f"{dotted} is required", field=dotted, reason="FIELD_REQUIRED")


def _in_body(payload: dict[str, Any], dotted: str) -> bool:
    value: Any = payload
    for part in dotted.split("."):
        if not isinstance(value, dict) or value.get(part) is None:
            return False
        value = value[part]
    return True


def body_onto(payload: dict[str, Any], message: Message, *, forbidden: tuple[str, ...],
              nested: str = "") -> None:
    """Fill the request from a checked JSON body; identity fields may not be sent."""
    for name in forbidden:
        if name in payload:
            raise InvalidArgument(f"{name} may not be sent: it comes from the token or the URL",
                                  field=name, reason="FIELD_NOT_ALLOWED")
    inner = payload.get(nested) if nested else None
    if isinstance(inner, dict) and "brand_id" in inner:
        raise InvalidArgument("brand_id comes from the token and may not be sent",
                              field=f"{nested}.brand_id", reason="FIELD_NOT_ALLOWED")
    check_message(payload, cast(Descriptor, message.DESCRIPTOR), "")
    try:
        json_format.ParseDict(payload, message)
    except json_format.ParseError as error:  # what the walk above cannot see, e.g. bad base64
        raise InvalidArgument(f"body does not match the request: {error}", field="body",
                              reason="BODY_INVALID") from None


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON body; nesting too deep for the decoder is bad input, not a server error."""
    try:
        return await json_body(request)
    except RecursionError:
        raise InvalidArgument("body is nested too deeply", field="body",
                              reason="INVALID_JSON") from None


async def merchant_of(request: web.Request) -> tuple[str, str]:
    """The brand and merchant user of the request's merchant token."""
    principal = await request.app[VERIFIER].verify(request.headers.get("Authorization"))
    return principal.require_merchant(), principal.merchant_user_id


Extra = Callable[[Any, web.Request], None]


def console_handler(service: str, rpc: str, request_type: type[Message], *, nested: str = "",
                    body: bool = False, required: tuple[str, ...] = (), page: bool = False,
                    write: bool = False, path: tuple[str, ...] = (), extra: Extra | None = None,
                    converted: tuple[str, ...] = ()) -> Callable[[web.Request], Any]:
    """A console route over one RPC of `service` (an attribute of the gateway's Upstreams):
    `path` parameters are copied onto the request as they are; `converted` ones are set by
    `extra`; neither may be sent in the body."""

    async def handler(request: web.Request) -> web.Response:
        brand_id, merchant_user_id = await merchant_of(request)
        message = request_type()
        payload: dict[str, Any] = {}
        if body:
            payload = await read_body(request)
            forbidden = ("request_id", *(() if nested else ("brand_id",)), *path, *converted)
            body_onto(payload, message, forbidden=forbidden, nested=nested)
            _require(message, required, payload)
        target: Any = getattr(message, nested) if nested else message
        target.brand_id = brand_id
        for name in path:
            setattr(message, name, request.match_info[name])
        if page:
            size, token = page_query(request)
            message.page_size, message.page_token = size, token  # type: ignore[attr-defined]
        if write:
            message.request_id = (  # type: ignore[attr-defined]
                f"{brand_id}:{merchant_user_id}:{request_id(request)}")
        if extra is not None:
            extra(message, request)
        stub = getattr(request.app[UPSTREAMS], service)
        try:
            reply = await getattr(stub, rpc)(message)
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        return web.json_response(proto_json(reply))

    return handler


_CHANNELS = {name.removeprefix("CHANNEL_").lower(): number
             for name, number in messaging_pb.Channel.items() if number != 0}


def _channel_from_path(message: Any, request: web.Request) -> None:
    raw = request.match_info["channel"].lower().removeprefix("channel_")
    if raw not in _CHANNELS:
        raise InvalidArgument(f"channel must be one of {', '.join(sorted(_CHANNELS))}",
                              field="channel", reason="FIELD_ENUM_INVALID")
    message.channel = _CHANNELS[raw]


def _enum_choices(prefix: str, items: Any) -> dict[str, int]:
    return {name.removeprefix(prefix).lower(): number for name, number in items if number}


def _enum_query(name: str, prefix: str, items: Any) -> Extra:
    """An optional filter given in the query by its short name (e.g. status=draft)."""
    choices = _enum_choices(prefix, items)

    def extra(message: Any, request: web.Request) -> None:
        raw = request.query.get(name, "").strip().lower().removeprefix(prefix.lower())
        if not raw:
            return
        if raw not in choices:
            raise InvalidArgument(f"{name} must be one of {', '.join(sorted(choices))}",
                                  field=name, reason="FIELD_ENUM_INVALID")
        setattr(message, name, choices[raw])
    return extra


def _enum_param(name: str, prefix: str, items: Any) -> tuple[str, Schema, str]:
    return (name, string(enum=sorted(_enum_choices(prefix, items))),
            f"only items with this {name}")


def _dates_from_query(message: Any, request: web.Request) -> None:
    for name in ("start_date", "end_date"):
        value = request.query.get(name, "").strip()
        if not value:
            raise InvalidArgument(f"{name} is required (YYYY-MM-DD)", field=name,
                                  reason="FIELD_REQUIRED")
        setattr(message, name, value[:32])


def _active(active: bool) -> Extra:
    def extra(message: Any, _: web.Request) -> None:
        message.active = active
    return extra


def _contract(name: str) -> Schema:
    return {"type": "object", "description": f"the contract's {name} in the proto3 JSON mapping "
                                             "(field names as in protos/)"}


def console_routes(table: RouteTable) -> None:
    """Segments, dashboards, channels, templates, consent, policy, campaigns and journeys."""

    def route(method: str, url: str, summary: str, service: str, rpc: str,
              request_type: type[Message], response: str, *,
              body_schema: Schema | None = None, query: tuple[tuple[str, Schema, str], ...] = (),
              **options: Any) -> None:
        handler = console_handler(service, rpc, request_type, body=body_schema is not None,
                                  **options)
        table.add(Route(method, f"{V1}{url}", handler, summary, TAG, "merchant",
                        _contract(response), body=body_schema,
                        query=(*(PAGE_PARAMS if options.get("page") else ()), *query),
                        idempotent_key=bool(options.get("write")),
                        errors=(400, 401, 403, 404, 409)))

    rule = _contract("membership.v1.SegmentRule: a nested AND/OR tree of conditions")
    seg = "segments"
    route("POST", "/segments/preview", "Count the brand's members a rule matches, without "
          "saving it (preview while editing).", seg, "PreviewSegment",
          segment_pb.PreviewSegmentRequest, "membership.v1.PreviewSegmentResponse",
          body_schema=obj({"rule": rule}, ["rule"]), required=("rule",))
    route("POST", "/segments", "Save a segment.", seg, "CreateSegment",
          segment_pb.CreateSegmentRequest, "membership.v1.CreateSegmentResponse",
          body_schema=obj({"name": string(), "rule": rule}, ["name", "rule"]),
          required=("name", "rule"), write=True)
    route("GET", "/segments", "The brand's segments, paged.", seg, "ListSegments",
          segment_pb.ListSegmentsRequest, "membership.v1.ListSegmentsResponse", page=True)
    route("GET", "/segments/{segment_id}", "One segment and its rule.", seg, "GetSegment",
          segment_pb.GetSegmentRequest, "membership.v1.GetSegmentResponse",
          path=("segment_id",))
    route("GET", "/segments/{segment_id}/count", "How many members the segment matches now.",
          seg, "CountSegment", segment_pb.CountSegmentRequest,
          "membership.v1.CountSegmentResponse", path=("segment_id",))
    route("POST", "/segments/{segment_id}/snapshots", "Materialise the segment's members now, "
          "as the fixed audience of a campaign.", seg, "CreateSegmentSnapshot",
          segment_pb.CreateSegmentSnapshotRequest,
          "membership.v1.CreateSegmentSnapshotResponse", path=("segment_id",), write=True)
    route("GET", "/segment-snapshots/{snapshot_id}", "One snapshot and its member count.", seg,
          "GetSegmentSnapshot", segment_pb.GetSegmentSnapshotRequest,
          "membership.v1.GetSegmentSnapshotResponse", path=("snapshot_id",))
    route("GET", "/segment-snapshots/{snapshot_id}/members", "A snapshot's members, paged by "
          "account.", seg, "ListSnapshotMembers", segment_pb.ListSnapshotMembersRequest,
          "membership.v1.ListSnapshotMembersResponse", path=("snapshot_id",), page=True)

    route("GET", "/dashboards/overview", "LV0 and card members, valid and dormant, and valid "
          "card members per level.", "dashboards", "GetMemberOverview",
          dashboard_pb.GetMemberOverviewRequest, "membership.v1.GetMemberOverviewResponse")
    route("GET", "/dashboards/daily", "Per local day of a range (brand's time zone): new "
          "members by source, members, buyers new and returning, member versus non-member "
          "orders; and the range's repurchase rate and order value.", "dashboards",
          "GetDailyDashboard", dashboard_pb.GetDailyDashboardRequest,
          "membership.v1.GetDailyDashboardResponse", extra=_dates_from_query,
          query=(("start_date", string(format="date"), "first local day, YYYY-MM-DD"),
                 ("end_date", string(format="date"), "last local day, inclusive")))
    route("POST", "/dashboards/refresh", "Recompute the stored closed days of a range (after "
          "late facts).", "dashboards", "RefreshDashboard",
          dashboard_pb.RefreshDashboardRequest, "membership.v1.RefreshDashboardResponse",
          body_schema=obj({"start_date": string(format="date"),
                           "end_date": string(format="date")}, ["start_date", "end_date"]),
          required=("start_date", "end_date"), write=True)

    msg = "messaging"
    route("GET", "/channels", "The brand's configured channels (credential names only; "
          "values are never returned).", msg, "ListChannels", messaging_pb.ListChannelsRequest,
          "messaging.v1.ListChannelsResponse")
    route("PUT", "/channels/{channel}", "Configure a channel (inbox, sms or wechat): provider, "
          "settings and write-only credentials, stored encrypted (receipt_secret, at least 32 "
          "characters, signs provider delivery receipts; the answer then names "
          "receipt_webhook_path).", msg, "ConfigureChannel",
          messaging_pb.ConfigureChannelRequest, "messaging.v1.ConfigureChannelResponse",
          body_schema=obj({"provider": string(enum=[
                               n for n, v in messaging_pb.Provider.items() if v]),
                           "settings": {"type": "object",
                                        "additionalProperties": string()},
                           "credentials": {"type": "object", "writeOnly": True,
                                           "additionalProperties": string()}},
                          ["provider"]),
          required=("provider",), write=True, converted=("channel",),
          extra=_channel_from_path)
    route("GET", "/messaging-policy", "Frequency caps and quiet hours.", msg,
          "GetMessagingPolicy", messaging_pb.GetMessagingPolicyRequest,
          "messaging.v1.GetMessagingPolicyResponse")
    route("PUT", "/messaging-policy", "Replace the caps (per member, channel, local day and "
          "week) and quiet hours (minutes after local midnight).", msg, "SetMessagingPolicy",
          messaging_pb.SetMessagingPolicyRequest, "messaging.v1.SetMessagingPolicyResponse",
          nested="policy", write=True,
          body_schema=obj({"policy": obj({
              "daily_cap": integer(minimum=0), "weekly_cap": integer(minimum=0),
              "quiet_start_minute": integer(minimum=0, maximum=1439),
              "quiet_end_minute": integer(minimum=0, maximum=1439)})}, ["policy"]))
    route("GET", "/members/{account_id}/consents", "A member's consents per channel and "
          "purpose.", msg, "ListConsents", messaging_pb.ListConsentsRequest,
          "messaging.v1.ListConsentsResponse", path=("account_id",))
    route("PUT", "/members/{account_id}/consents", "Record a member's consent or opt-out for "
          "a channel and purpose; an opt-out applies at once.", msg, "SetConsent",
          messaging_pb.SetConsentRequest, "messaging.v1.SetConsentResponse",
          body_schema=obj({"channel": string(), "purpose": string(),
                           "granted": {"type": "boolean"}, "source": string()},
                          ["channel", "purpose", "granted"]),
          required=("channel", "purpose", "granted"), path=("account_id",), write=True)
    route("POST", "/templates", "Create a message template with {{variable}} placeholders.",
          msg, "CreateTemplate", messaging_pb.CreateTemplateRequest,
          "messaging.v1.CreateTemplateResponse", nested="template", write=True,
          required=("template",),
          body_schema=obj({"template": _contract("messaging.v1.Template (without ids)")},
                          ["template"]))
    route("GET", "/templates", "The brand's templates, newest first, paged; channel= "
          "filters.", msg, "ListTemplates", messaging_pb.ListTemplatesRequest,
          "messaging.v1.ListTemplatesResponse", page=True, extra=_enum_query(
              "channel", "CHANNEL_", messaging_pb.Channel.items()),
          query=(_enum_param("channel", "CHANNEL_", messaging_pb.Channel.items()),))
    route("GET", "/templates/{template_id}", "One template.", msg, "GetTemplate",
          messaging_pb.GetTemplateRequest, "messaging.v1.GetTemplateResponse",
          path=("template_id",))
    route("GET", "/messages/{message_id}", "One outbound message and its status.", msg,
          "GetMessage", messaging_pb.GetMessageRequest, "messaging.v1.GetMessageResponse",
          path=("message_id",))
    route("GET", "/sandbox-deliveries", "What the sandbox provider would have sent (masked "
          "addresses), newest first.", msg, "ListSandboxDeliveries",
          messaging_pb.ListSandboxDeliveriesRequest,
          "messaging.v1.ListSandboxDeliveriesResponse", page=True)
    route("POST", "/campaigns", "Create a draft campaign: a segment snapshot, a template and "
          "a channel, with throttle, holdout and conversion window.", msg, "CreateCampaign",
          messaging_pb.CreateCampaignRequest, "messaging.v1.CreateCampaignResponse",
          nested="campaign", write=True, required=("campaign",),
          body_schema=obj({"campaign": _contract("messaging.v1.Campaign (without ids)")},
                          ["campaign"]))
    route("GET", "/campaigns", "The brand's campaigns, newest first, paged; status= "
          "filters.", msg, "ListCampaigns", messaging_pb.ListCampaignsRequest,
          "messaging.v1.ListCampaignsResponse", page=True, extra=_enum_query(
              "status", "CAMPAIGN_STATUS_", messaging_pb.CampaignStatus.items()),
          query=(_enum_param("status", "CAMPAIGN_STATUS_",
                             messaging_pb.CampaignStatus.items()),))
    route("GET", "/campaigns/{campaign_id}", "One campaign.", msg, "GetCampaign",
          messaging_pb.GetCampaignRequest, "messaging.v1.GetCampaignResponse",
          path=("campaign_id",))
    route("POST", "/campaigns/{campaign_id}/launch", "Send now, or schedule with "
          "schedule_time.", msg, "LaunchCampaign", messaging_pb.LaunchCampaignRequest,
          "messaging.v1.LaunchCampaignResponse", path=("campaign_id",), write=True,
          body_schema=obj({"schedule_time": string(format="date-time")}))
    route("POST", "/campaigns/{campaign_id}/retry", "Queue the campaign's failed messages "
          "again (nobody gets a message twice).", msg, "RetryCampaign",
          messaging_pb.RetryCampaignRequest, "messaging.v1.RetryCampaignResponse",
          path=("campaign_id",), write=True)
    route("GET", "/campaigns/{campaign_id}/recipients", "The campaign's recipients and their "
          "messages, paged.", msg, "ListCampaignRecipients",
          messaging_pb.ListCampaignRecipientsRequest,
          "messaging.v1.ListCampaignRecipientsResponse", path=("campaign_id",), page=True)
    route("GET", "/campaigns/{campaign_id}/report", "Targeted, holdout, suppressed by reason, "
          "sent, delivered, read, failed, conversions versus the holdout.", msg,
          "GetCampaignReport", messaging_pb.GetCampaignReportRequest,
          "messaging.v1.GetCampaignReportResponse", path=("campaign_id",))
    route("POST", "/journeys", "Create an automated journey: a trigger and its steps.", msg,
          "CreateJourney", messaging_pb.CreateJourneyRequest,
          "messaging.v1.CreateJourneyResponse", nested="journey", write=True,
          required=("journey",),
          body_schema=obj({"journey": _contract("messaging.v1.Journey (without ids)")},
                          ["journey"]))
    route("GET", "/journeys", "The brand's journeys, newest first, paged; state=active or "
          "inactive filters.", msg, "ListJourneys", messaging_pb.ListJourneysRequest,
          "messaging.v1.ListJourneysResponse", page=True, extra=_enum_query(
              "state", "JOURNEY_STATE_", messaging_pb.JourneyState.items()),
          query=(_enum_param("state", "JOURNEY_STATE_", messaging_pb.JourneyState.items()),))
    route("GET", "/journeys/{journey_id}", "One journey.", msg, "GetJourney",
          messaging_pb.GetJourneyRequest, "messaging.v1.GetJourneyResponse",
          path=("journey_id",))
    route("POST", "/journeys/{journey_id}/activate", "Start admitting members.", msg,
          "SetJourneyActive", messaging_pb.SetJourneyActiveRequest,
          "messaging.v1.SetJourneyActiveResponse", path=("journey_id",), write=True,
          extra=_active(True))
    route("POST", "/journeys/{journey_id}/pause", "Stop admitting members.", msg,
          "SetJourneyActive", messaging_pb.SetJourneyActiveRequest,
          "messaging.v1.SetJourneyActiveResponse", path=("journey_id",), write=True,
          extra=_active(False))
    route("GET", "/journeys/{journey_id}/report", "Entered, at each step, converted, exited "
          "and refused entries.", msg, "GetJourneyReport",
          messaging_pb.GetJourneyReportRequest, "messaging.v1.GetJourneyReportResponse",
          path=("journey_id",))


async def inbox_unread_count(request: web.Request) -> web.Response:
    principal = await request.app[VERIFIER].verify(request.headers.get("Authorization"))
    account_id = principal.require_shopper()
    try:
        reply = await request.app[UPSTREAMS].messaging.GetInboxUnreadCount(
            messaging_pb.GetInboxUnreadCountRequest(brand_id=request.match_info["brand_id"],
                                                    account_id=account_id))
    except grpc.aio.AioRpcError as error:
        raise remote_error(error) from None
    return web.json_response({"unread_count": reply.unread_count})


def storefront_routes(table: RouteTable) -> None:
    table.add(Route("GET", "/storefront/v1/brands/{brand_id}/messages/unread-count",
                    inbox_unread_count, "Unread messages in the shopper's message box.",
                    "storefront", "shopper", obj({"unread_count": integer(minimum=0)}),
                    errors=(401, 403, 404)))


def routes(table: RouteTable) -> None:
    console_routes(table)
    storefront_routes(table)


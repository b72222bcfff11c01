"""Merchant console API for reaching members: segments and snapshots, dashboards, channels,
templates, consent and the messaging policy, campaigns and journeys.

Every console route acts on the merchant token's brand (never one named in the request). A JSON
body is checked against the contract's request message before it is sent on (api/proto_body).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from brandclub.membership.v1 import dashboard_service_pb2 as dashboard_pb
from brandclub.membership.v1 import segment_service_pb2 as segment_pb
from brandclub.messaging.v1 import messaging_service_pb2 as messaging_pb
from libs.errors import InvalidArgument
from services.gateway.api.routes import (
    RouteTable,
    integer,
    obj,
    string,
)
from services.gateway.api.rpc_routes import (
    Extra,
    contract_schema,
    enum_param,
    enum_query,
    rpc_route,
)

V1 = "/console/v1"

_CHANNELS = {name.removeprefix("CHANNEL_").lower(): number
             for name, number in messaging_pb.Channel.items() if number != 0}


def _channel_from_path(message: Any, request: web.Request) -> None:
    raw = request.match_info["channel"].lower().removeprefix("channel_")
    if raw not in _CHANNELS:
        raise InvalidArgument(f"channel must be one of {', '.join(sorted(_CHANNELS))}",
                              field="channel", reason="FIELD_ENUM_INVALID")
    message.channel = _CHANNELS[raw]


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


def routes(table: RouteTable) -> None:
    """Segments, dashboards, channels, templates, consent, policy, campaigns and journeys."""

    def route(method: str, url: str, *args: Any, **options: Any) -> None:
        table.add(rpc_route(method, f"{V1}{url}", *args, **options))

    rule = contract_schema("membership.v1.SegmentRule: a nested AND/OR tree of conditions")
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
          "messaging.v1.ListChannelsResponse", page=True)
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
          "messaging.v1.ListConsentsResponse", path=("account_id",), page=True)
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
          body_schema=obj({"template": contract_schema("messaging.v1.Template (without ids)")},
                          ["template"]))
    route("GET", "/templates", "The brand's templates, newest first, paged; channel= "
          "filters.", msg, "ListTemplates", messaging_pb.ListTemplatesRequest,
          "messaging.v1.ListTemplatesResponse", page=True, extra=enum_query(
              "channel", "CHANNEL_", messaging_pb.Channel.items()),
          query=(enum_param("channel", "CHANNEL_", messaging_pb.Channel.items()),))
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
          body_schema=obj({"campaign": contract_schema("messaging.v1.Campaign (without ids)")},
                          ["campaign"]))
    route("GET", "/campaigns", "The brand's campaigns, newest first, paged; status= "
          "filters.", msg, "ListCampaigns", messaging_pb.ListCampaignsRequest,
          "messaging.v1.ListCampaignsResponse", page=True, extra=enum_query(
              "status", "CAMPAIGN_STATUS_", messaging_pb.CampaignStatus.items()),
          query=(enum_param("status", "CAMPAIGN_STATUS_",
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
          body_schema=obj({"journey": contract_schema("messaging.v1.Journey (without ids)")},
                          ["journey"]))
    route("GET", "/journeys", "The brand's journeys, newest first, paged; state=active or "
          "inactive filters.", msg, "ListJourneys", messaging_pb.ListJourneysRequest,
          "messaging.v1.ListJourneysResponse", page=True, extra=enum_query(
              "state", "JOURNEY_STATE_", messaging_pb.JourneyState.items()),
          query=(enum_param("state", "JOURNEY_STATE_", messaging_pb.JourneyState.items()),))
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

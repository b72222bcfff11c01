"""gRPC servicer for messaging: protobuf <-> use cases, nothing else."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import grpc

from brandclub.messaging.v1 import messaging_service_pb2 as pb
from brandclub.messaging.v1 import messaging_service_pb2_grpc as pb_grpc
from libs.errors import InvalidArgument
from libs.protoconv import from_timestamp, timestamp
from services.messaging.domain.campaigns import Campaign, CampaignStatus, Recipient
from services.messaging.domain.channels import (
    Channel,
    ChannelConfig,
    Consent,
    ProviderKind,
    Purpose,
)
from services.messaging.domain.governance import Policy
from services.messaging.domain.journeys import Condition, Journey, Step, StepKind, Trigger
from services.messaging.domain.messages import MessageStatus, OutboundMessage, SandboxDelivery
from services.messaging.domain.receipts import ReceiptOutcome, receipt_webhook_path
from services.messaging.domain.templates import Template
from services.messaging.usecases import (
    campaigns,
    channels,
    inbox,
    journeys,
    messages,
    templates,
)
from services.messaging.usecases.context import UNSAVED, MessagingContext

CHANNELS = {pb.CHANNEL_INBOX: Channel.INBOX, pb.CHANNEL_SMS: Channel.SMS,
            pb.CHANNEL_WECHAT: Channel.WECHAT}
PURPOSES = {pb.PURPOSE_SERVICE: Purpose.SERVICE, pb.PURPOSE_MARKETING: Purpose.MARKETING}
PROVIDERS = {pb.PROVIDER_SANDBOX: ProviderKind.SANDBOX,
             pb.PROVIDER_ALIYUN_SMS: ProviderKind.ALIYUN_SMS,
             pb.PROVIDER_WECHAT_OA: ProviderKind.WECHAT_OA}
STATUSES = {MessageStatus.QUEUED: pb.MESSAGE_STATUS_QUEUED,
            MessageStatus.SENDING: pb.MESSAGE_STATUS_SENDING,
            MessageStatus.SENT: pb.MESSAGE_STATUS_SENT,
            MessageStatus.DELIVERED: pb.MESSAGE_STATUS_DELIVERED,
            MessageStatus.READ: pb.MESSAGE_STATUS_READ,
            MessageStatus.FAILED: pb.MESSAGE_STATUS_FAILED,
            MessageStatus.SUPPRESSED: pb.MESSAGE_STATUS_SUPPRESSED}
CAMPAIGN_STATUSES = {CampaignStatus.DRAFT: pb.CAMPAIGN_STATUS_DRAFT,
                     CampaignStatus.SCHEDULED: pb.CAMPAIGN_STATUS_SCHEDULED,
                     CampaignStatus.RUNNING: pb.CAMPAIGN_STATUS_RUNNING,
                     CampaignStatus.FANNED_OUT: pb.CAMPAIGN_STATUS_FANNED_OUT}
RECEIPT_OUTCOMES = {ReceiptOutcome.ACCEPTED: pb.RECEIPT_OUTCOME_ACCEPTED,
                    ReceiptOutcome.DUPLICATE: pb.RECEIPT_OUTCOME_DUPLICATE,
                    ReceiptOutcome.REJECTED: pb.RECEIPT_OUTCOME_REJECTED}
TRIGGERS = {pb.JOURNEY_TRIGGER_CART_ADDED: Trigger.CART_ADDED,
            pb.JOURNEY_TRIGGER_ORDER_PAID: Trigger.ORDER_PAID,
            pb.JOURNEY_TRIGGER_CARD_OPENED: Trigger.CARD_OPENED,
            pb.JOURNEY_TRIGGER_TIER_CHANGED: Trigger.TIER_CHANGED,
            pb.JOURNEY_TRIGGER_BIRTHDAY: Trigger.BIRTHDAY,
            pb.JOURNEY_TRIGGER_REPURCHASE_DUE: Trigger.REPURCHASE_DUE,
            pb.JOURNEY_TRIGGER_POINTS_EXPIRING: Trigger.POINTS_EXPIRING}
STEP_KINDS = {pb.JOURNEY_STEP_KIND_WAIT: StepKind.WAIT,
              pb.JOURNEY_STEP_KIND_BRANCH: StepKind.BRANCH,
              pb.JOURNEY_STEP_KIND_SEND: StepKind.SEND,
              pb.JOURNEY_STEP_KIND_ISSUE_COUPON: StepKind.ISSUE_COUPON,
              pb.JOURNEY_STEP_KIND_GRANT_POINTS: StepKind.GRANT_POINTS,
              pb.JOURNEY_STEP_KIND_EXIT: StepKind.EXIT}
CONDITIONS = {pb.JOURNEY_CONDITION_ORDERED_SINCE_ENTRY: Condition.ORDERED_SINCE_ENTRY,
              pb.JOURNEY_CONDITION_LEVEL_AT_LEAST: Condition.LEVEL_AT_LEAST,
              pb.JOURNEY_CONDITION_ORDER_CENTS_AT_LEAST: Condition.ORDER_CENTS_AT_LEAST,
              pb.JOURNEY_CONDITION_IN_SEGMENT: Condition.IN_SEGMENT}


K = TypeVar("K")
V = TypeVar("V")


def _enum(mapping: dict[K, V], value: K, field: str) -> V:
    if value not in mapping:
        raise InvalidArgument(f"{field} must be set to a known value", field=field,
                              reason="ENUM_REQUIRED")
    return mapping[value]


def _back(mapping: dict[K, V], value: V) -> K:
    return next(k for k, v in mapping.items() if v == value)


def _ts(value: datetime | None) -> Any:
    return timestamp(value) if value else None


def message_pb(m: OutboundMessage) -> pb.OutboundMessage:
    return pb.OutboundMessage(
        message_id=m.message_id, brand_id=m.brand_id, account_id=m.account_id,
        channel=_back(CHANNELS, m.channel), purpose=_back(PURPOSES, m.purpose),
        template_id=m.template_id, campaign_id=m.campaign_id or "",
        journey_id=m.journey_id or "", status=STATUSES[m.status], reason=m.reason,
        not_before_time=timestamp(m.not_before), attempts=m.attempts,
        provider_message_id=m.provider_message_id or "", create_time=timestamp(m.created_at),
        sent_time=_ts(m.sent_at), delivered_time=_ts(m.delivered_at),
        read_time=_ts(m.read_at), deferrals=m.deferrals)


def channel_pb(c: ChannelConfig) -> pb.ChannelConfig:
    return pb.ChannelConfig(brand_id=c.brand_id, channel=_back(CHANNELS, c.channel),
                            provider=_back(PROVIDERS, c.provider), settings=c.settings,
                            credential_names=c.credential_names,
                            update_time=timestamp(c.updated_at),
                            receipt_webhook_path=(
                                receipt_webhook_path(c.brand_id, c.channel.value)
                                if "receipt_secret" in c.credential_names else ""))


def policy_pb(p: Policy) -> pb.MessagingPolicy:
    return pb.MessagingPolicy(brand_id=p.brand_id, daily_cap=p.daily_cap,
                              weekly_cap=p.weekly_cap, quiet_start_minute=p.quiet_start_minute,
                              quiet_end_minute=p.quiet_end_minute)


def consent_pb(c: Consent) -> pb.Consent:
    return pb.Consent(brand_id=c.brand_id, account_id=c.account_id,
                      channel=_back(CHANNELS, c.channel), purpose=_back(PURPOSES, c.purpose),
                      granted=c.granted, source=c.source, update_time=timestamp(c.updated_at))


def sandbox_delivery_pb(d: SandboxDelivery) -> pb.SandboxDelivery:
    return pb.SandboxDelivery(delivery_id=d.delivery_id, brand_id=d.brand_id,
                              channel=_back(CHANNELS, d.channel), message_id=d.message_id,
                              masked_address=d.masked_address, title=d.title, body=d.body,
                              params=d.params, create_time=timestamp(d.created_at))


def recipient_pb(r: Recipient) -> pb.CampaignRecipient:
    return pb.CampaignRecipient(account_id=r.account_id, holdout=r.holdout,
                                message=message_pb(r.message) if r.message else None)


def campaign_report_pb(r: campaigns.CampaignReport) -> pb.CampaignReport:
    s = r.by_status
    return pb.CampaignReport(
        campaign_id=r.campaign_id, targeted=r.targeted, holdout=r.holdout,
        suppressed=r.suppressed,
        queued=s.get(MessageStatus.QUEUED, 0) + s.get(MessageStatus.SENDING, 0),
        sent=s.get(MessageStatus.SENT, 0), delivered=s.get(MessageStatus.DELIVERED, 0),
        read=s.get(MessageStatus.READ, 0), failed=s.get(MessageStatus.FAILED, 0),
        converted=r.converted, converted_revenue_cents=r.converted_revenue_cents,
        holdout_converted=r.holdout_converted, holdout_revenue_cents=r.holdout_revenue_cents,
        conversion_rate_basis_points=r.rate(r.converted, r.messaged),
        holdout_conversion_rate_basis_points=r.rate(r.holdout_converted, r.holdout),
        messaged=r.messaged)


def journey_report_pb(r: journeys.JourneyReport) -> pb.GetJourneyReportResponse:
    response = pb.GetJourneyReportResponse(
        entered=r.entered, at_step=r.at_step, converted=r.converted, exited=r.exited,
        entry_refused=r.entry_refused, failed=r.failed)
    for f in r.recent_failures:
        failure = response.recent_failures.add(run_id=f.run_id, account_id=f.account_id,
                                               step_id=f.step_id, failure_reason=f.reason)
        if f.failed_at is not None:
            failure.fail_time.CopyFrom(timestamp(f.failed_at))
    return response


def template_in(t: pb.Template) -> Template:
    return Template("", t.brand_id, _enum(CHANNELS, t.channel, "template.channel"),
                    _enum(PURPOSES, t.purpose, "template.purpose"), t.name, t.title, t.body,
                    t.provider_template_code, dict(t.provider_params), [],
                    list(t.custom_variables), t.link_url, UNSAVED)


def campaign_in(c: pb.Campaign) -> Campaign:
    return Campaign("", c.brand_id, c.name, c.snapshot_id, c.template_id,
                    _enum(CHANNELS, c.channel, "campaign.channel"), CampaignStatus.DRAFT,
                    dict(c.variables), c.throttle_per_second, c.holdout_basis_points,
                    c.conversion_window_days, None, None, UNSAVED)


def journey_in(j: pb.Journey) -> Journey:
    steps = []
    for index, s in enumerate(j.steps):
        place = f"journey.steps[{index}]"
        steps.append(Step(
            s.step_id, _enum(STEP_KINDS, s.kind, f"{place}.kind"), s.next_step_id,
            s.wait_minutes,
            _enum(CONDITIONS, s.condition, f"{place}.condition")
            if s.kind == pb.JOURNEY_STEP_KIND_BRANCH else None,
            s.number, s.on_true_step_id, s.on_false_step_id, s.template_id,
            dict(s.variables), s.coupon_template_id, s.points, s.segment_id))
    return Journey("", j.brand_id, j.name, _enum(TRIGGERS, j.trigger, "journey.trigger"),
                   j.allow_reentry, steps, False, j.conversion_window_days, UNSAVED,
                   j.trigger_days)


def _schedule(request: pb.SendMessageRequest | pb.LaunchCampaignRequest) -> datetime | None:
    return (from_timestamp(request.schedule_time) if request.HasField("schedule_time")
            else None)


def template_pb(t: Template) -> pb.Template:
    return pb.Template(template_id=t.template_id, brand_id=t.brand_id,
                       channel=_back(CHANNELS, t.channel), purpose=_back(PURPOSES, t.purpose),
                       name=t.name, title=t.title, body=t.body,
                       provider_template_code=t.provider_template_code,
                       provider_params=t.provider_params, variables=t.variables,
                       custom_variables=t.custom_variables, link_url=t.link_url,
                       create_time=timestamp(t.created_at))


def campaign_pb(c: Campaign) -> pb.Campaign:
    return pb.Campaign(campaign_id=c.campaign_id, brand_id=c.brand_id, name=c.name,
                       snapshot_id=c.snapshot_id, template_id=c.template_id,
                       channel=_back(CHANNELS, c.channel), status=CAMPAIGN_STATUSES[c.status],
                       variables=c.variables, throttle_per_second=c.throttle_per_second,
                       holdout_basis_points=c.holdout_basis_points,
                       conversion_window_days=c.conversion_window_days,
                       schedule_time=_ts(c.schedule_at), launch_time=_ts(c.launched_at),
                       create_time=timestamp(c.created_at))


def journey_pb(j: Journey) -> pb.Journey:
    return pb.Journey(
        journey_id=j.journey_id, brand_id=j.brand_id, name=j.name,
        trigger=_back(TRIGGERS, j.trigger), allow_reentry=j.allow_reentry, active=j.active,
        conversion_window_days=j.conversion_window_days, create_time=timestamp(j.created_at),
        trigger_days=j.trigger_days, segment_id=j.segment_id,
        steps=[pb.JourneyStep(
            step_id=s.step_id, kind=_back(STEP_KINDS, s.kind), next_step_id=s.next_step_id,
            wait_minutes=s.wait_minutes,
            condition=(_back(CONDITIONS, s.condition) if s.condition
                       else pb.JOURNEY_CONDITION_UNSPECIFIED), number=s.number,
            on_true_step_id=s.on_true_step_id, on_false_step_id=s.on_false_step_id,
            template_id=s.template_id, variables=s.variables,
            coupon_template_id=s.coupon_template_id, points=s.points,
            segment_id=s.segment_id) for s in j.steps])


class MessagingServicer(pb_grpc.MessagingServiceServicer):
    """Each rpc: the request's fields to one use case, its answer (or error) back."""

    def __init__(self, app: MessagingContext) -> None:
        self._app = app
        self._once = app.once

    # --- message box ---

    async def ListInboxMessages(self, request: pb.ListInboxMessagesRequest,
                                context: grpc.aio.ServicerContext
                                ) -> pb.ListInboxMessagesResponse:
        page = await inbox.list_inbox(self._app, request.brand_id, request.account_id,
                                      request.page_size, request.page_token,
                                      request.unread_only)
        return pb.ListInboxMessagesResponse(
            messages=[pb.InboxMessage(message_id=m.message_id, brand_id=m.brand_id,
                                      account_id=m.account_id, title=m.title, body=m.body,
                                      read=m.read, create_time=timestamp(m.created_at))
                      for m in page.messages],
            next_page_token=page.next_page_token,
            unread_count=page.unread_count,
        )

    async def GetInboxUnreadCount(self, request: pb.GetInboxUnreadCountRequest,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.GetInboxUnreadCountResponse:
        count = await inbox.unread_count(self._app, request.brand_id, request.account_id)
        return pb.GetInboxUnreadCountResponse(unread_count=count)

    async def MarkInboxMessagesRead(self, request: pb.MarkInboxMessagesReadRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> pb.MarkInboxMessagesReadResponse:
        def answer(counts: tuple[int, int]) -> pb.MarkInboxMessagesReadResponse:
            return pb.MarkInboxMessagesReadResponse(marked_count=counts[0],
                                                    unread_count=counts[1])

        return await inbox.mark_read(
            self._app, self._once("MarkInboxMessagesRead", request,
                                  pb.MarkInboxMessagesReadResponse, answer),
            request.brand_id, request.account_id, list(request.message_ids), request.all)

    # --- channels, policy, consent ---

    async def ConfigureChannel(self, request: pb.ConfigureChannelRequest,
                               context: grpc.aio.ServicerContext) -> pb.ConfigureChannelResponse:
        channel = _enum(CHANNELS, request.channel, "channel")
        provider = _enum(PROVIDERS, request.provider, "provider")
        return await channels.configure_channel(
            self._app, self._once("ConfigureChannel", request, pb.ConfigureChannelResponse,
                                  lambda c: pb.ConfigureChannelResponse(config=channel_pb(c))),
            request.brand_id, channel, provider, dict(request.settings),
            dict(request.credentials))

    async def ListChannels(self, request: pb.ListChannelsRequest,
                           context: grpc.aio.ServicerContext) -> pb.ListChannelsResponse:
        configs, token = await channels.list_channels(self._app, request.brand_id,
                                                      request.page_size, request.page_token)
        return pb.ListChannelsResponse(channels=[channel_pb(c) for c in configs],
                                       next_page_token=token)

    async def SetMessagingPolicy(self, request: pb.SetMessagingPolicyRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> pb.SetMessagingPolicyResponse:
        p = request.policy
        policy = Policy(p.brand_id, p.daily_cap, p.weekly_cap, p.quiet_start_minute,
                        p.quiet_end_minute)
        return await channels.set_policy(
            self._app, self._once("SetMessagingPolicy", request, pb.SetMessagingPolicyResponse,
                                  lambda s: pb.SetMessagingPolicyResponse(policy=policy_pb(s))),
            policy)

    async def GetMessagingPolicy(self, request: pb.GetMessagingPolicyRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> pb.GetMessagingPolicyResponse:
        policy = await channels.get_policy(self._app, request.brand_id)
        return pb.GetMessagingPolicyResponse(policy=policy_pb(policy))

    async def SetConsent(self, request: pb.SetConsentRequest,
                         context: grpc.aio.ServicerContext) -> pb.SetConsentResponse:
        channel = _enum(CHANNELS, request.channel, "channel")
        purpose = _enum(PURPOSES, request.purpose, "purpose")
        return await channels.set_consent(
            self._app, self._once("SetConsent", request, pb.SetConsentResponse,
                                  lambda c: pb.SetConsentResponse(consent=consent_pb(c))),
            request.brand_id, request.account_id, channel, purpose, request.granted,
            request.source)

    async def ListConsents(self, request: pb.ListConsentsRequest,
                           context: grpc.aio.ServicerContext) -> pb.ListConsentsResponse:
        consents, token = await channels.list_consents(self._app, request.brand_id,
                                                       request.account_id, request.page_size,
                                                       request.page_token)
        return pb.ListConsentsResponse(consents=[consent_pb(c) for c in consents],
                                       next_page_token=token)

    # --- templates and messages ---

    async def CreateTemplate(self, request: pb.CreateTemplateRequest,
                             context: grpc.aio.ServicerContext) -> pb.CreateTemplateResponse:
        draft = template_in(request.template)
        return await templates.create_template(
            self._app, self._once("CreateTemplate", request, pb.CreateTemplateResponse,
                                  lambda t: pb.CreateTemplateResponse(template=template_pb(t))),
            draft)

    async def GetTemplate(self, request: pb.GetTemplateRequest,
                          context: grpc.aio.ServicerContext) -> pb.GetTemplateResponse:
        found = await templates.read_template(self._app, request.brand_id, request.template_id)
        return pb.GetTemplateResponse(template=template_pb(found))

    async def ListTemplates(self, request: pb.ListTemplatesRequest,
                            context: grpc.aio.ServicerContext) -> pb.ListTemplatesResponse:
        channel = (_enum(CHANNELS, request.channel, "channel")
                   if request.channel != pb.CHANNEL_UNSPECIFIED else None)
        found, token = await templates.list_templates(self._app, request.brand_id,
                                                      request.page_size, request.page_token,
                                                      channel)
        return pb.ListTemplatesResponse(templates=[template_pb(t) for t in found],
                                        next_page_token=token)

    async def SendMessage(self, request: pb.SendMessageRequest,
                          context: grpc.aio.ServicerContext) -> pb.SendMessageResponse:
        return await messages.send_message(
            self._app, self._once("SendMessage", request, pb.SendMessageResponse,
                                  lambda m: pb.SendMessageResponse(message=message_pb(m))),
            request.request_id, request.brand_id, request.account_id, request.template_id,
            dict(request.variables), _schedule(request))

    async def GetMessage(self, request: pb.GetMessageRequest,
                         context: grpc.aio.ServicerContext) -> pb.GetMessageResponse:
        message = await messages.get_message(self._app, request.brand_id, request.message_id)
        return pb.GetMessageResponse(message=message_pb(message))

    async def RecordDeliveryReceipt(self, request: pb.RecordDeliveryReceiptRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> pb.RecordDeliveryReceiptResponse:
        channel = _enum(CHANNELS, request.channel, "channel")
        return await messages.receive_receipt(
            self._app, self._once("RecordDeliveryReceipt", request,
                                  pb.RecordDeliveryReceiptResponse,
                                  lambda m: pb.RecordDeliveryReceiptResponse(
                                      message=message_pb(m))),
            request.brand_id, channel, request.provider_message_id, request.delivered,
            request.error_code)

    async def RecordSignedDeliveryReceipts(self, request: pb.RecordSignedDeliveryReceiptsRequest,
                                           context: grpc.aio.ServicerContext
                                           ) -> pb.RecordSignedDeliveryReceiptsResponse:
        channel = _enum(CHANNELS, request.channel, "channel")
        results = await messages.record_signed_receipts(
            self._app, request.brand_id, channel, request.body, request.timestamp,
            request.signature)
        return pb.RecordSignedDeliveryReceiptsResponse(results=[
            pb.ReceiptResult(provider_message_id=r.provider_message_id,
                             outcome=RECEIPT_OUTCOMES[r.outcome], reason=r.reason,
                             message_id=r.message_id) for r in results])

    async def ListSandboxDeliveries(self, request: pb.ListSandboxDeliveriesRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> pb.ListSandboxDeliveriesResponse:
        deliveries, token = await messages.sandbox_page(self._app, request.brand_id,
                                                        request.page_size, request.page_token)
        return pb.ListSandboxDeliveriesResponse(
            deliveries=[sandbox_delivery_pb(d) for d in deliveries], next_page_token=token)

    # --- campaigns ---

    async def CreateCampaign(self, request: pb.CreateCampaignRequest,
                             context: grpc.aio.ServicerContext) -> pb.CreateCampaignResponse:
        draft = campaign_in(request.campaign)
        return await campaigns.create_campaign(
            self._app, self._once("CreateCampaign", request, pb.CreateCampaignResponse,
                                  lambda c: pb.CreateCampaignResponse(campaign=campaign_pb(c))),
            draft)

    async def LaunchCampaign(self, request: pb.LaunchCampaignRequest,
                             context: grpc.aio.ServicerContext) -> pb.LaunchCampaignResponse:
        return await campaigns.launch_campaign(
            self._app, self._once("LaunchCampaign", request, pb.LaunchCampaignResponse,
                                  lambda c: pb.LaunchCampaignResponse(campaign=campaign_pb(c))),
            request.brand_id, request.campaign_id, _schedule(request))

    async def RetryCampaign(self, request: pb.RetryCampaignRequest,
                            context: grpc.aio.ServicerContext) -> pb.RetryCampaignResponse:
        return await campaigns.retry_campaign(
            self._app, self._once("RetryCampaign", request, pb.RetryCampaignResponse,
                                  lambda n: pb.RetryCampaignResponse(requeued_count=n)),
            request.brand_id, request.campaign_id)

    async def GetCampaign(self, request: pb.GetCampaignRequest,
                          context: grpc.aio.ServicerContext) -> pb.GetCampaignResponse:
        found = await campaigns.read_campaign(self._app, request.brand_id, request.campaign_id)
        return pb.GetCampaignResponse(campaign=campaign_pb(found))

    async def ListCampaigns(self, request: pb.ListCampaignsRequest,
                            context: grpc.aio.ServicerContext) -> pb.ListCampaignsResponse:
        status = next((k for k, v in CAMPAIGN_STATUSES.items() if v == request.status), None)
        if status is None and request.status != pb.CAMPAIGN_STATUS_UNSPECIFIED:
            raise InvalidArgument("status must be a known campaign status", field="status",
                                  reason="FIELD_ENUM_INVALID")
        found, token = await campaigns.list_campaigns(self._app, request.brand_id,
                                                      request.page_size, request.page_token,
                                                      status)
        return pb.ListCampaignsResponse(campaigns=[campaign_pb(c) for c in found],
                                        next_page_token=token)

    async def ListCampaignRecipients(self, request: pb.ListCampaignRecipientsRequest,
                                     context: grpc.aio.ServicerContext
                                     ) -> pb.ListCampaignRecipientsResponse:
        recipients, token = await campaigns.campaign_recipients(
            self._app, request.brand_id, request.campaign_id, request.page_size,
            request.page_token)
        return pb.ListCampaignRecipientsResponse(
            recipients=[recipient_pb(r) for r in recipients], next_page_token=token)

    async def GetCampaignReport(self, request: pb.GetCampaignReportRequest,
                                context: grpc.aio.ServicerContext
                                ) -> pb.GetCampaignReportResponse:
        report = await campaigns.campaign_report(self._app, request.brand_id,
                                                 request.campaign_id)
        return pb.GetCampaignReportResponse(report=campaign_report_pb(report))

    # --- journeys ---

    async def CreateJourney(self, request: pb.CreateJourneyRequest,
                            context: grpc.aio.ServicerContext) -> pb.CreateJourneyResponse:
        draft = journey_in(request.journey)
        return await journeys.create_journey(
            self._app, self._once("CreateJourney", request, pb.CreateJourneyResponse,
                                  lambda j: pb.CreateJourneyResponse(journey=journey_pb(j))),
            request.request_id, draft)

    async def SetJourneyActive(self, request: pb.SetJourneyActiveRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.SetJourneyActiveResponse:
        return await journeys.set_journey_active(
            self._app, self._once("SetJourneyActive", request, pb.SetJourneyActiveResponse,
                                  lambda j: pb.SetJourneyActiveResponse(journey=journey_pb(j))),
            request.brand_id, request.journey_id, request.active)

    async def GetJourney(self, request: pb.GetJourneyRequest,
                         context: grpc.aio.ServicerContext) -> pb.GetJourneyResponse:
        journey = await journeys.read_journey(self._app, request.brand_id, request.journey_id)
        return pb.GetJourneyResponse(journey=journey_pb(journey))

    async def ListJourneys(self, request: pb.ListJourneysRequest,
                           context: grpc.aio.ServicerContext) -> pb.ListJourneysResponse:
        states = {pb.JOURNEY_STATE_UNSPECIFIED: None, pb.JOURNEY_STATE_ACTIVE: True,
                  pb.JOURNEY_STATE_INACTIVE: False}
        if request.state not in states:
            raise InvalidArgument("state must be a known journey state", field="state",
                                  reason="FIELD_ENUM_INVALID")
        found, token = await journeys.list_journeys(self._app, request.brand_id,
                                                    request.page_size, request.page_token,
                                                    states[request.state])
        return pb.ListJourneysResponse(journeys=[journey_pb(j) for j in found],
                                       next_page_token=token)

    async def GetJourneyReport(self, request: pb.GetJourneyReportRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.GetJourneyReportResponse:
        report = await journeys.journey_report(self._app, request.brand_id,
                                               request.journey_id)
        return journey_report_pb(report)

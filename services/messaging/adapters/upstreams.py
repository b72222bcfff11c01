"""gRPC clients of membership, identity and benefits behind messaging's ports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

import grpc

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as benefits_grpc
from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from brandclub.membership.v1 import segment_service_pb2 as segment_pb
from brandclub.membership.v1 import segment_service_pb2_grpc as segment_grpc
from libs.cache import TtlCache
from libs.config import Settings
from libs.errors import Code
from libs.grpc_client import answers_found, open_channel, remote_error
from libs.tls import TlsIdentity
from services.messaging.domain.channels import Channel, ChannelConfig
from services.messaging.ports import (
    AudienceMember,
    AudiencePage,
    AudienceSource,
    BenefitsPort,
    BrandDirectory,
    BrandInfo,
    ExpiringAccount,
    ExpiringPage,
    RecipientDirectory,
)

MEMBERSHIP_SERVICE = "brandclub.membership.v1.MembershipService"
SEGMENT_SERVICE = "brandclub.membership.v1.SegmentService"
IDENTITY_SERVICE = "brandclub.identity.v1.IdentityService"
BENEFITS_SERVICE = "brandclub.benefits.v1.BenefitsService"
BENEFITS_ADMIN_SERVICE = "brandclub.benefits.v1.BenefitsAdminService"
SNAPSHOT_PAGE_SIZE = 200
BRAND_CACHE_SECONDS = 60.0


class MembershipClient:
    """Brands (time zone, name) and segment snapshots from the membership process."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._brands = membership_grpc.MembershipServiceStub(channel)
        self._segments = segment_grpc.SegmentServiceStub(channel)
        # A brand's name and time zone change rarely; a minute's staleness is harmless.
        self._brand_cache: TtlCache[str, BrandInfo] = TtlCache(BRAND_CACHE_SECONDS)

    async def brand(self, brand_id: str) -> BrandInfo:
        return await self._brand_cache.get_or_load(brand_id, lambda: self._load_brand(brand_id))

    async def _load_brand(self, brand_id: str) -> BrandInfo:
        try:
            reply = await self._brands.GetBrand(membership_pb.GetBrandRequest(brand_id=brand_id))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        return BrandInfo(reply.brand.brand_id, reply.brand.display_name, reply.brand.time_zone)

    async def snapshot_member_count(self, brand_id: str, snapshot_id: str) -> int:
        try:
            reply = await self._segments.GetSegmentSnapshot(segment_pb.GetSegmentSnapshotRequest(
                brand_id=brand_id, snapshot_id=snapshot_id))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        return int(reply.snapshot.member_count)

    async def create_trigger_segment(self, *, request_id: str, brand_id: str, name: str,
                                     trigger: str, days: int) -> str:
        def condition(operator: str, n: int) -> segment_pb.SegmentRule:
            field = "birthday" if trigger == "birthday" else "last_order_time"
            return segment_pb.SegmentRule(condition=segment_pb.RuleCondition(
                field=field, operator=operator, days=n))

        # Birthday within N days; or a last order between N + 1 and N days ago (the member's
        # day N after the last order falls in the next 24 hours of the daily run).
        rule = (condition("within_days", days) if trigger == "birthday" else
                segment_pb.SegmentRule(group=segment_pb.RuleGroup(
                    operator=segment_pb.RULE_GROUP_OPERATOR_AND,
                    rules=[condition("within_days", days + 1),
                           condition("not_within_days", days)])))
        try:
            reply = await self._segments.CreateSegment(segment_pb.CreateSegmentRequest(
                request_id=request_id, brand_id=brand_id, name=name, rule=rule))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        return reply.segment.segment_id

    async def member_in_segment(self, brand_id: str, segment_id: str,
                                account_id: str) -> bool:
        try:
            reply = await self._segments.EvaluateSegmentForMember(
                segment_pb.EvaluateSegmentForMemberRequest(
                    brand_id=brand_id, segment_id=segment_id, account_id=account_id))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        return reply.matches

    async def segment_exists(self, brand_id: str, segment_id: str) -> bool:
        return await answers_found(self._segments.GetSegment(segment_pb.GetSegmentRequest(
            brand_id=brand_id, segment_id=segment_id)))

    async def snapshot_segment(self, *, request_id: str, brand_id: str,
                               segment_id: str) -> str:
        try:
            reply = await self._segments.CreateSegmentSnapshot(
                segment_pb.CreateSegmentSnapshotRequest(
                    request_id=request_id, brand_id=brand_id, segment_id=segment_id),
                timeout=60)
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        return reply.snapshot.snapshot_id

    async def snapshot_page(self, brand_id: str, snapshot_id: str,
                            page_token: str) -> AudiencePage:
        try:
            reply = await self._segments.ListSnapshotMembers(
                segment_pb.ListSnapshotMembersRequest(
                    brand_id=brand_id, snapshot_id=snapshot_id, page_size=SNAPSHOT_PAGE_SIZE,
                    page_token=page_token), timeout=30)
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        return AudiencePage([AudienceMember(m.account_id, m.level, m.points_balance,
                                            m.order_count) for m in reply.members],
                            reply.next_page_token)


class IdentityRecipients:
    """Phones from the identity vault (revealed per message, audited there) and WeChat
    official-account openids from the linked identities. Nothing is stored here."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._identity = identity_grpc.IdentityServiceStub(channel)

    async def address(self, brand_id: str, account_id: str, config: ChannelConfig,
                      message_id: str) -> str | None:
        app_id = config.settings.get("app_id", "")
        try:
            if config.channel is Channel.SMS:
                reply = await self._identity.RevealPhoneForDelivery(
                    identity_pb.RevealPhoneForDeliveryRequest(
                        account_id=account_id, brand_id=brand_id, message_id=message_id,
                        purpose=identity_pb.REVEAL_PURPOSE_SMS_DELIVERY))
                return reply.phone_e164 or None
            # Asked by kind and app id: the one openid, however many identities are linked.
            linked = await self._identity.ListLinkedIdentities(
                identity_pb.ListLinkedIdentitiesRequest(
                    account_id=account_id, kind=identity_pb.IDENTITY_KIND_WECHAT_OA_OPENID,
                    scope=app_id))
        except grpc.aio.AioRpcError as error:
            failure = remote_error(error)
            if failure.code in (Code.NOT_FOUND, Code.FAILED_PRECONDITION):
                return None
            raise failure from None
        for identity in linked.identities:
            if (identity.kind == identity_pb.IDENTITY_KIND_WECHAT_OA_OPENID
                    and identity.scope == app_id):
                return identity.external_id
        return None


class BenefitsClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._benefits = benefits_grpc.BenefitsServiceStub(channel)
        self._admin = benefits_grpc.BenefitsAdminServiceStub(channel)

    async def coupon_template_exists(self, brand_id: str, template_id: str) -> bool:
        return await answers_found(self._admin.GetCouponTemplate(
            benefits_pb.GetCouponTemplateRequest(brand_id=brand_id, template_id=template_id)))

    async def issue_coupon(self, *, request_id: str, brand_id: str, account_id: str,
                           coupon_template_id: str) -> str:
        try:
            reply = await self._benefits.IssueCoupon(benefits_pb.IssueCouponRequest(
                request_id=request_id, brand_id=brand_id, account_id=account_id,
                coupon_template_id=coupon_template_id, reason_code="JOURNEY"))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        return reply.coupon_id

    async def grant_points(self, *, request_id: str, brand_id: str, account_id: str,
                           points: int) -> None:
        try:
            await self._benefits.GrantPoints(benefits_pb.GrantPointsRequest(
                request_id=request_id, brand_id=brand_id, account_id=account_id, amount=points,
                reason_code="JOURNEY_REWARD", source=benefits_pb.POINTS_SOURCE_RULE))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None

    async def points_expiring_page(self, brand_id: str, within_days: int,
                                   page_token: str) -> ExpiringPage:
        try:
            reply = await self._benefits.ListPointsExpiringSoon(
                benefits_pb.ListPointsExpiringSoonRequest(
                    brand_id=brand_id, within_days=within_days, page_size=200,
                    page_token=page_token))
        except grpc.aio.AioRpcError as error:
            raise remote_error(error) from None
        return ExpiringPage([ExpiringAccount(a.account_id, a.points,
                                             a.earliest_expire_time.ToDatetime(tzinfo=UTC))
                             for a in reply.accounts], reply.next_page_token)


@dataclass(frozen=True)
class Upstreams:
    """The other services messaging calls, each behind the port its use cases depend on."""

    brands: BrandDirectory
    audience: AudienceSource
    recipients: RecipientDirectory
    benefits: BenefitsPort


def open_upstreams(settings: Settings, tls: TlsIdentity, channels: dict[str, grpc.aio.Channel], *,
                   recipients: RecipientDirectory | None = None,
                   benefits: BenefitsPort | None = None) -> Upstreams:
    """Channels to membership, identity and benefits (kept in `channels` to be closed on
    shutdown); `recipients` / `benefits` given by a test replace the real ones."""
    membership_channel = open_channel(settings.address_of("membership"),
                                      service=(MEMBERSHIP_SERVICE, SEGMENT_SERVICE), tls=tls)
    channels["membership"] = membership_channel
    membership = MembershipClient(membership_channel)
    if recipients is None:
        channels["identity"] = open_channel(settings.address_of("identity"),
                                            service=IDENTITY_SERVICE, tls=tls)
        recipients = IdentityRecipients(channels["identity"])
    if benefits is None:
        channels["benefits"] = open_channel(settings.address_of("benefits"),
                                            service=(BENEFITS_SERVICE, BENEFITS_ADMIN_SERVICE),
                                            tls=tls)
        benefits = BenefitsClient(channels["benefits"])
    return Upstreams(brands=membership, audience=membership, recipients=recipients,
                     benefits=benefits)

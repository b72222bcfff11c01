"""gRPC servicer: maps protobuf to use-case calls and back, nothing else."""

from __future__ import annotations

from datetime import date, datetime

import grpc
from google.protobuf import timestamp_pb2

from brandclub.membership.v1 import membership_service_pb2 as pb
from brandclub.membership.v1 import membership_service_pb2_grpc as pb_grpc
from libs.errors import InvalidArgument
from libs.protoconv import from_timestamp, timestamp
from services.membership.domain.model import (
    Brand,
    ConsentState,
    Gender,
    MemberCard,
    MemberRecord,
    MemberStatus,
    PhoneMatch,
    ProgramMode,
    Shop,
    Stats,
)
from services.membership.domain.program import Program, Tier
from services.membership.usecases import (
    brands,
    cards,
    dormancy,
    evaluation,
    facts,
    following,
    members,
    programs,
)
from services.membership.usecases.context import MembershipContext

_MODES = {pb.PROGRAM_MODE_CONNECTED: ProgramMode.CONNECTED,
          pb.PROGRAM_MODE_NON_CONNECTED: ProgramMode.NON_CONNECTED}
_STATUSES = {MemberStatus.LV0: pb.MEMBER_STATUS_LV0,
             MemberStatus.CARD_MEMBER: pb.MEMBER_STATUS_CARD_MEMBER,
             MemberStatus.ENDED: pb.MEMBER_STATUS_ENDED}
_STATUSES_IN = {v: k for k, v in _STATUSES.items()}
_CONSENT = {ConsentState.NONE: pb.CONSENT_STATE_NONE,
            ConsentState.CURRENT: pb.CONSENT_STATE_CURRENT,
            ConsentState.OUTDATED: pb.CONSENT_STATE_OUTDATED}
_GENDERS = {Gender.MALE: pb.GENDER_MALE, Gender.FEMALE: pb.GENDER_FEMALE,
            Gender.UNKNOWN: pb.GENDER_UNSPECIFIED}
_GENDERS_IN = {v: k for k, v in _GENDERS.items()}
_MATCHES = {PhoneMatch.NOT_APPLICABLE: pb.PHONE_MATCH_NOT_APPLICABLE,
            PhoneMatch.MATCHED: pb.PHONE_MATCH_MATCHED, PhoneMatch.NEW: pb.PHONE_MATCH_NEW}
_VALIDITY = {pb.VALIDITY_VALID: False, pb.VALIDITY_DORMANT: True}


def _mode_pb(mode: ProgramMode) -> pb.ProgramMode.ValueType:
    return next(k for k, v in _MODES.items() if v is mode)


def _time(value: timestamp_pb2.Timestamp, present: bool) -> datetime | None:
    return from_timestamp(value) if present else None


def _date(value: date | None) -> str:
    return value.isoformat() if value else ""


def brand_pb(brand: Brand) -> pb.Brand:
    return pb.Brand(brand_id=brand.brand_id, display_name=brand.display_name,
                    mode=_mode_pb(brand.mode), time_zone=brand.time_zone,
                    create_time=timestamp(brand.created_at))


def shop_pb(shop: Shop) -> pb.Shop:
    return pb.Shop(shop_id=shop.shop_id, brand_id=shop.brand_id,
                   display_name=shop.display_name, create_time=timestamp(shop.created_at))


def card_pb(card: MemberCard) -> pb.MemberCard:
    member = card.member
    message = pb.MemberCard(
        brand_id=card.brand.brand_id,
        brand_display_name=card.brand.display_name,
        account_id=member.account_id,
        status=_STATUSES[member.status],
        level=member.level,
        member_since=timestamp(member.member_since),
        lv0_notice_pending=member.lv0_notice_pending,
        followed_shop_ids=card.followed_shop_ids,
        member_id=member.member_id,
        level_name=card.level_name,
        consent_state=_CONSENT[card.consent_state],
        consent_terms_version=member.consent_terms_version if member.is_card_member else "",
        gift_pack_offered=card.gift_pack_offered,
        gift_pack_id=card.brand.lv0_gift_pack_id if card.gift_pack_offered else "",
        growth_cents=card.growth_cents,
        next_level_growth_cents=card.next_level_growth_cents,
    )
    if member.joined_at is not None and member.is_card_member:
        message.join_time.CopyFrom(timestamp(member.joined_at))
    return message


def program_pb(program: Program, brand: Brand) -> pb.Program:
    return pb.Program(
        program_id=program.program_id, brand_id=program.brand_id, mode=_mode_pb(brand.mode),
        terms_version=program.terms_version, terms_url=program.terms_url,
        consent_purposes=program.consent_purposes,
        tiers=[pb.Tier(level=t.level, name=t.name,
                       growth_threshold_cents=t.growth_threshold_cents,
                       privileges=t.privileges,
                       points_multiplier_percent=t.points_multiplier_percent)
               for t in program.tiers],
        growth_window_days=program.growth_window_days, retention_days=program.retention_days,
        dormant_after_days=program.dormant_after_days,
        update_time=timestamp(program.updated_at), lv0_gift_pack_id=brand.lv0_gift_pack_id)


def stats_pb(stats: Stats) -> pb.MemberStats:
    message = pb.MemberStats(order_count=stats.order_count, paid_cents=stats.paid_cents,
                             growth_cents=stats.growth_cents)
    if stats.first_order_at is not None:
        message.first_order_time.CopyFrom(timestamp(stats.first_order_at))
    if stats.last_order_at is not None:
        message.last_order_time.CopyFrom(timestamp(stats.last_order_at))
    return message


def member_pb(record: MemberRecord) -> pb.Member:
    member, profile = record.member, record.profile
    message = pb.Member(
        member_id=member.member_id, brand_id=member.brand_id, account_id=member.account_id,
        status=_STATUSES[member.status], level=member.level,
        source_channel=member.source_channel, member_since=timestamp(member.member_since),
        dormant=member.dormant, birthday=_date(profile.birthday),
        gender=_GENDERS[profile.gender], baby_birthday=_date(profile.baby_birthday),
        has_phone=profile.has_phone, phone_match=_MATCHES[profile.phone_match],
        encrypted_phone=profile.encrypted_phone, crm_member_id=profile.crm_member_id,
        stats=stats_pb(record.stats), invite_code=record.invite_code,
        lv0_notice_pending=member.lv0_notice_pending)
    if member.joined_at is not None:
        message.join_time.CopyFrom(timestamp(member.joined_at))
    if record.ended_at is not None:
        message.end_time.CopyFrom(timestamp(record.ended_at))
    if member.level_since is not None:
        message.level_since.CopyFrom(timestamp(member.level_since))
    if record.consent is not None:
        message.consent.CopyFrom(pb.Consent(
            terms_version=record.consent.terms_version, purposes=record.consent.purposes,
            consent_time=timestamp(record.consent.consented_at),
            channel=record.consent.channel))
    return message


def _tier(message: pb.Tier) -> Tier:
    return Tier(message.level, message.name, message.growth_threshold_cents,
                tuple(message.privileges), message.points_multiplier_percent)


class MembershipServicer(pb_grpc.MembershipServiceServicer):
    """Each RPC: the request translated, one use-case coroutine awaited, its result
    translated; a mutation hands the use case how its result becomes the reply that is
    committed once per request id."""

    def __init__(self, context: MembershipContext) -> None:
        self._context = context

    async def CreateBrand(self, request: pb.CreateBrandRequest,
                          context: grpc.aio.ServicerContext) -> pb.CreateBrandResponse:
        if request.mode not in _MODES:
            raise InvalidArgument("mode must be CONNECTED or NON_CONNECTED", field="mode")
        return await brands.create_brand(
            self._context, request.display_name, _MODES[request.mode], request.time_zone,
            self._context.once("CreateBrand", request, pb.CreateBrandResponse,
                               lambda brand: pb.CreateBrandResponse(brand=brand_pb(brand))))

    async def GetBrand(self, request: pb.GetBrandRequest,
                       context: grpc.aio.ServicerContext) -> pb.GetBrandResponse:
        brand = await brands.get_brand(self._context, request.brand_id)
        return pb.GetBrandResponse(brand=brand_pb(brand))

    async def CreateShop(self, request: pb.CreateShopRequest,
                         context: grpc.aio.ServicerContext) -> pb.CreateShopResponse:
        return await brands.create_shop(
            self._context, request.brand_id, request.display_name,
            self._context.once("CreateShop", request, pb.CreateShopResponse,
                               lambda shop: pb.CreateShopResponse(shop=shop_pb(shop))))

    async def GetShop(self, request: pb.GetShopRequest,
                      context: grpc.aio.ServicerContext) -> pb.GetShopResponse:
        return pb.GetShopResponse(shop=shop_pb(await brands.get_shop(self._context,
                                                                     request.shop_id)))

    async def ListShops(self, request: pb.ListShopsRequest,
                        context: grpc.aio.ServicerContext) -> pb.ListShopsResponse:
        shops, token = await brands.list_shops(self._context, request.brand_id,
                                               request.page_size, request.page_token)
        return pb.ListShopsResponse(shops=[shop_pb(s) for s in shops], next_page_token=token)

    async def FollowShop(self, request: pb.FollowShopRequest,
                         context: grpc.aio.ServicerContext) -> pb.FollowShopResponse:
        def reply(result: following.FollowResult) -> pb.FollowShopResponse:
            return pb.FollowShopResponse(card=card_pb(result.card),
                                         became_member=result.became_member)

        return await following.follow_shop(
            self._context, request.shop_id, request.account_id, request.channel,
            self._context.once("FollowShop", request, pb.FollowShopResponse, reply))

    async def UnfollowShop(self, request: pb.UnfollowShopRequest,
                           context: grpc.aio.ServicerContext) -> pb.UnfollowShopResponse:
        return await following.unfollow_shop(
            self._context, request.shop_id, request.account_id,
            self._context.once("UnfollowShop", request, pb.UnfollowShopResponse,
                               lambda card: pb.UnfollowShopResponse(card=card_pb(card))))

    async def GetMemberCard(self, request: pb.GetMemberCardRequest,
                            context: grpc.aio.ServicerContext) -> pb.GetMemberCardResponse:
        card = await cards.get_member_card(self._context, request.brand_id,
                                           request.account_id,
                                           lambda card: card_pb(card).SerializeToString())
        return pb.GetMemberCardResponse(card=pb.MemberCard.FromString(card))

    # --- program ---------------------------------------------------------------------------

    async def GetProgram(self, request: pb.GetProgramRequest,
                         context: grpc.aio.ServicerContext) -> pb.GetProgramResponse:
        program, brand = await programs.get_program(self._context, request.brand_id)
        return pb.GetProgramResponse(program=program_pb(program, brand))

    async def UpdateProgram(self, request: pb.UpdateProgramRequest,
                            context: grpc.aio.ServicerContext) -> pb.UpdateProgramResponse:
        mode = _MODES.get(request.mode)
        if request.mode != pb.PROGRAM_MODE_UNSPECIFIED and mode is None:
            raise InvalidArgument("mode must be CONNECTED or NON_CONNECTED", field="mode")
        draft = Program("", request.brand_id, request.terms_version, request.terms_url,
                        tuple(request.consent_purposes), tuple(_tier(t) for t in request.tiers),
                        request.growth_window_days, request.retention_days,
                        request.dormant_after_days, datetime.min)

        return await programs.update_program(
            self._context, request.brand_id, mode, draft,
            self._context.once("UpdateProgram", request, pb.UpdateProgramResponse,
                               lambda result: pb.UpdateProgramResponse(
                                   program=program_pb(*result))))

    async def SetLv0GiftPackOffer(self, request: pb.SetLv0GiftPackOfferRequest,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.SetLv0GiftPackOfferResponse:
        return await programs.set_gift_pack_offer(
            self._context, request.brand_id, request.gift_pack_id,
            self._context.once("SetLv0GiftPackOffer", request, pb.SetLv0GiftPackOfferResponse,
                               lambda result: pb.SetLv0GiftPackOfferResponse(
                                   program=program_pb(*result))))

    # --- LV0 ----------------------------------------------------------------------------------

    async def ImportFollowers(self, request: pb.ImportFollowersRequest,
                              context: grpc.aio.ServicerContext) -> pb.ImportFollowersResponse:
        followers = [(f.account_id, _time(f.follow_time, f.HasField("follow_time")))
                     for f in request.followers]
        return await following.import_followers(
            self._context, request.shop_id, followers,
            self._context.once("ImportFollowers", request, pb.ImportFollowersResponse,
                               lambda counts: pb.ImportFollowersResponse(
                                   became_lv0=counts[0], already_members=counts[1])))

    async def ClearLv0Notice(self, request: pb.ClearLv0NoticeRequest,
                             context: grpc.aio.ServicerContext) -> pb.ClearLv0NoticeResponse:
        return await following.clear_lv0_notice(
            self._context, request.brand_id, request.account_id,
            self._context.once("ClearLv0Notice", request, pb.ClearLv0NoticeResponse,
                               lambda card: pb.ClearLv0NoticeResponse(card=card_pb(card))))

    # --- card opening and leaving ---------------------------------------------------------------

    async def OpenCard(self, request: pb.OpenCardRequest,
                       context: grpc.aio.ServicerContext) -> pb.OpenCardResponse:
        join = cards.JoinRequest(
            request.brand_id, request.account_id, request.channel, request.terms_version,
            tuple(request.purposes), bool(request.phone.strip()), request.birthday,
            _GENDERS_IN.get(request.gender, Gender.UNKNOWN), request.baby_birthday,
            request.invite_code, request.shop_id.strip())
        if request.gender not in _GENDERS_IN:
            raise InvalidArgument("gender is not a known value", field="gender")
        # The stored fingerprint must not be a plain hash of the phone number: leave it out.
        fingerprinted = pb.OpenCardRequest()
        fingerprinted.CopyFrom(request)
        fingerprinted.ClearField("phone")

        def reply(result: cards.JoinResult) -> pb.OpenCardResponse:
            return pb.OpenCardResponse(
                card=card_pb(result.card), joined=result.joined,
                phone_match=_MATCHES[result.profile.phone_match],
                encrypted_phone=result.profile.encrypted_phone,
                crm_member_id=result.profile.crm_member_id)

        return await cards.open_card(
            self._context, join, request.phone, request.request_id,
            self._context.once("OpenCard", fingerprinted, pb.OpenCardResponse, reply))

    async def CancelMembership(self, request: pb.CancelMembershipRequest,
                               context: grpc.aio.ServicerContext
                               ) -> pb.CancelMembershipResponse:
        return await cards.cancel_membership(
            self._context, request.brand_id, request.account_id, request.reason,
            self._context.once("CancelMembership", request, pb.CancelMembershipResponse,
                               lambda record: pb.CancelMembershipResponse(
                                   member=member_pb(record))))

    # --- brand-facing reads -----------------------------------------------------------------

    async def GetMember(self, request: pb.GetMemberRequest,
                        context: grpc.aio.ServicerContext) -> pb.GetMemberResponse:
        record = await members.get_member(self._context, request.brand_id, request.member_id,
                                          request.account_id)
        return pb.GetMemberResponse(member=member_pb(record))

    async def ListMembers(self, request: pb.ListMembersRequest,
                          context: grpc.aio.ServicerContext) -> pb.ListMembersResponse:
        status = None
        if request.status != pb.MEMBER_STATUS_UNSPECIFIED:
            if request.status not in _STATUSES_IN:
                raise InvalidArgument("status is not a known value", field="status")
            status = _STATUSES_IN[request.status]
        if request.validity not in (pb.VALIDITY_UNSPECIFIED, *_VALIDITY):
            raise InvalidArgument("validity is not a known value", field="validity")
        records, token = await members.list_members(
            self._context, request.brand_id, status, list(request.levels),
            _VALIDITY.get(request.validity), request.page_size, request.page_token)
        return pb.ListMembersResponse(members=[member_pb(r) for r in records],
                                      next_page_token=token)

    async def CountMembers(self, request: pb.CountMembersRequest,
                           context: grpc.aio.ServicerContext) -> pb.CountMembersResponse:
        counts = await members.count_members(self._context, request.brand_id)
        return pb.CountMembersResponse(
            lv0_valid=counts.lv0_valid, lv0_dormant=counts.lv0_dormant,
            card_valid=counts.card_valid, card_dormant=counts.card_dormant,
            levels=[pb.LevelCount(level=level, valid=valid, dormant=dormant)
                    for level, (valid, dormant) in counts.levels.items()])

    # --- marketplace facts ------------------------------------------------------------------

    async def RecordCartItemAdded(self, request: pb.RecordCartItemAddedRequest,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.RecordCartItemAddedResponse:
        duplicate = await facts.record_cart_item_added(
            self._context, request.event_id, request.shop_id, request.account_id,
            request.sku_id, _time(request.add_time, request.HasField("add_time")))
        return pb.RecordCartItemAddedResponse(duplicate=duplicate)

    async def RecordOrderPaid(self, request: pb.RecordOrderPaidRequest,
                              context: grpc.aio.ServicerContext) -> pb.RecordOrderPaidResponse:
        outcome = await facts.record_order_paid(
            self._context, request.event_id, request.shop_id, request.account_id,
            request.order_id, request.paid_cents,
            _time(request.paid_time, request.HasField("paid_time")),
            _time(request.return_window_end_time, request.HasField("return_window_end_time")))
        return pb.RecordOrderPaidResponse(duplicate=outcome.duplicate,
                                          stats=stats_pb(outcome.stats), level=outcome.level)

    async def RecordOrderRefunded(self, request: pb.RecordOrderRefundedRequest,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.RecordOrderRefundedResponse:
        outcome = await facts.record_order_refunded(
            self._context, request.event_id, request.shop_id, request.account_id,
            request.order_id, request.refund_id, request.refunded_cents,
            _time(request.refund_time, request.HasField("refund_time")))
        return pb.RecordOrderRefundedResponse(duplicate=outcome.duplicate,
                                              stats=stats_pb(outcome.stats),
                                              level=outcome.level)

    async def RecordAccountStatus(self, request: pb.RecordAccountStatusRequest,
                                  context: grpc.aio.ServicerContext
                                  ) -> pb.RecordAccountStatusResponse:
        duplicate = await dormancy.record_account_status(
            self._context, request.event_id, request.account_id, request.abnormal)
        return pb.RecordAccountStatusResponse(duplicate=duplicate)

    async def RecordAccountActivity(self, request: pb.RecordAccountActivityRequest,
                                    context: grpc.aio.ServicerContext
                                    ) -> pb.RecordAccountActivityResponse:
        duplicate = await dormancy.record_account_activity(
            self._context, request.event_id, request.account_id,
            _time(request.last_active_time, request.HasField("last_active_time")))
        return pb.RecordAccountActivityResponse(duplicate=duplicate)

    async def EvaluateMembers(self, request: pb.EvaluateMembersRequest,
                              context: grpc.aio.ServicerContext
                              ) -> pb.EvaluateMembersResponse:
        result = await evaluation.evaluate_members(self._context, request.brand_id)
        return pb.EvaluateMembersResponse(levels_raised=result.raised,
                                          levels_lowered=result.lowered,
                                          became_dormant=result.became_dormant,
                                          became_valid=result.became_valid)

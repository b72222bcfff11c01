"""The member card: reading it, opening it (consent, profile, tier) and cancelling."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime

from brandclub.events.v1 import membership_events_pb2
from libs.db import Connection
from libs.errors import InvalidArgument, NotFound, require
from libs.idempotency import CommitOnce, Reply
from libs.outbox import add_event
from services.membership.adapters.card_cache import NOT_A_MEMBER
from services.membership.adapters.facts_repository import FactRepository
from services.membership.adapters.members_repository import MemberRepository
from services.membership.domain.inputs import valid_account, valid_channel, valid_invite_code
from services.membership.domain.model import (
    Brand,
    Consent,
    Gender,
    Member,
    MemberCard,
    MemberRecord,
    MemberStatus,
    PhoneMatchResult,
    Profile,
    ProgramMode,
    membership_found,
    new_id,
    phone_match_of,
)
from services.membership.domain.program import (
    Program,
    check_consent,
    parse_date,
)
from services.membership.ports import IdentityPort
from services.membership.usecases.brands import existing_brand, existing_shop
from services.membership.usecases.context import MembershipContext
from services.membership.usecases.dormancy import initial_dormancy
from services.membership.usecases.events import PRODUCER, TOPIC
from services.membership.usecases.privacy import erase_cancelled_member
from services.membership.usecases.programs import configured_program


async def get_member_card(context: MembershipContext, brand_id: str, account_id: str,
                          encode: Callable[[MemberCard], bytes]) -> bytes:
    """GetMemberCard's flow: the encoded card from Redis (non-members too), else from
    PostgreSQL, stored only if the cache version has not moved meanwhile."""
    brand_id, account_id = brand_id.strip(), account_id.strip()
    cached, version = (None, b"?")
    if brand_id and account_id:
        cached, version = await context.cards.get(brand_id, account_id)
    if cached is not None:
        return membership_found(None if cached == NOT_A_MEMBER else cached, brand_id,
                                account_id)
    try:
        async with context.db.connection() as conn:
            card = encode(await _member_card(conn, brand_id, account_id, context.clock()))
    except NotFound as error:
        if error.reason == "MEMBER_NOT_FOUND":
            await context.cards.put(brand_id, account_id, NOT_A_MEMBER, version)
        raise
    await context.cards.put(brand_id, account_id, card, version)
    return card


async def _member_card(conn: Connection, brand_id: str, account_id: str,
                       now: datetime) -> MemberCard:
    card = await MemberRepository(conn).member_card(require(brand_id, "brand_id"),
                                                    require(account_id, "account_id"),
                                                    now)
    return membership_found(card, brand_id, account_id)


@dataclass(frozen=True)
class JoinRequest:
    brand_id: str
    account_id: str
    channel: str
    terms_version: str
    purposes: tuple[str, ...]
    has_phone: bool
    birthday: str
    gender: Gender
    baby_birthday: str
    invite_code: str
    shop_id: str


@dataclass(frozen=True)
class JoinPlan:
    brand: Brand
    program: Program
    request: JoinRequest
    purposes: tuple[str, ...]
    birthday: date | None
    baby_birthday: date | None
    already_member: bool


@dataclass(frozen=True)
class JoinResult:
    card: MemberCard
    joined: bool
    profile: Profile


async def _plan_join(conn: Connection, request: JoinRequest, today: date) -> JoinPlan:
    """Everything that can refuse a join, checked before the identity vault is called."""
    program, brand = await configured_program(conn, request.brand_id)
    account_id = valid_account(request.account_id)
    if not request.has_phone:
        raise InvalidArgument("phone is required to open the card", field="phone",
                              reason="FIELD_REQUIRED")
    purposes = check_consent(program, request.terms_version, request.purposes)
    birthday = parse_date(request.birthday, "birthday", today)
    baby = parse_date(request.baby_birthday, "baby_birthday", today)
    valid_invite_code(request.invite_code)
    valid_channel(request.channel, "storefront")
    if request.shop_id:
        shop = await existing_shop(conn, request.shop_id)
        if shop.brand_id != brand.brand_id:
            raise InvalidArgument("shop_id is not a shop of this brand", field="shop_id",
                                  reason="SHOP_OF_ANOTHER_BRAND")
    live = await MemberRepository(conn).live_member(brand.brand_id, account_id)
    return JoinPlan(brand, program, replace(request, account_id=account_id), purposes,
                    birthday, baby, live is not None and live.is_card_member)


async def open_card(context: MembershipContext, request: JoinRequest, phone: str,
                    request_id: str, commit_once: CommitOnce[JoinResult, Reply]) -> Reply:
    """OpenCard's whole flow: every refusal first, then the phone vaulted (and matched for a
    connected brand) in identity, then the join committed once, then the cached card dropped.
    The request id is checked first: it also keys the identity calls, which run before the
    commit."""
    if not request_id:
        raise InvalidArgument("request_id is required for this call", field="request_id",
                              reason="REQUEST_ID_REQUIRED")
    async with context.db.connection() as conn:
        plan = await _plan_join(conn, request, context.clock().date())
    match = None if plan.already_member else await _vault_phone(context.identity, plan, phone,
                                                                 request_id)
    reply = await commit_once(lambda conn: _join(conn, plan, match, context.clock()))
    await context.cards.forget(plan.brand.brand_id, [plan.request.account_id])
    return reply


async def _vault_phone(identity: IdentityPort, plan: JoinPlan, phone: str,
                       request_id: str) -> PhoneMatchResult | None:
    """Both calls are safe to repeat; the join commits only after them."""
    await identity.store_phone(f"{request_id}:phone", plan.request.account_id, phone)
    if plan.brand.mode is not ProgramMode.CONNECTED:
        return None
    return await identity.match_phone(f"{request_id}:match", plan.brand.brand_id,
                                      plan.request.account_id)


async def _join(conn: Connection, plan: JoinPlan, match: PhoneMatchResult | None,
                now: datetime) -> JoinResult:
    """Join: consent, profile, tier from history; joining twice changes nothing."""
    brand, program, request = plan.brand, plan.program, plan.request
    fact_repo = FactRepository(conn)
    member_repo = MemberRepository(conn)
    await member_repo.lock_member_slot(brand.brand_id, request.account_id)
    live = await member_repo.live_member(brand.brand_id, request.account_id)
    if live is not None and live.is_card_member:
        record = await member_repo.member_record(brand.brand_id, member_id=live.member_id, now=now)
        card = await member_repo.member_card(brand.brand_id, request.account_id, now)
        assert record is not None and card is not None
        return JoinResult(card, False, record.profile)
    phone_match, encrypted, crm = phone_match_of(match)
    profile = Profile(plan.birthday, request.gender, plan.baby_birthday, True, phone_match,
                      encrypted, crm)
    channel = valid_channel(request.channel, "storefront")
    growth = await fact_repo.growth(brand.brand_id, request.account_id, program.growth_since(now))
    level = program.level_for(growth)
    member = live or Member(new_id("mbr"), brand.brand_id, request.account_id,
                            MemberStatus.CARD_MEMBER, level, channel, now)
    await member_repo.open_card(member, joined_at=now, level=level, source_channel=channel,
                                profile=profile, invite_code=request.invite_code.strip(),
                                shop_id=request.shop_id,
                                consent=Consent(program.terms_version, plan.purposes, now, channel),
                                existing=live is not None)
    if live is None:
        await initial_dormancy(conn, member, now)
    await add_event(conn, topic=TOPIC, brand_id=brand.brand_id, producer=PRODUCER,
                    payload=membership_events_pb2.MemberJoined(
                        brand_id=brand.brand_id, account_id=request.account_id,
                        member_id=member.member_id, program_id=program.program_id, level=level,
                        channel=channel, invite_code=request.invite_code.strip(),
                        shop_id=request.shop_id, was_lv0=live is not None,
                        consent_purposes=plan.purposes,
                        offered_purposes=program.consent_purposes))
    card = await member_repo.member_card(brand.brand_id, request.account_id, now)
    assert card is not None
    return JoinResult(card, True, profile)


async def cancel_membership(context: MembershipContext, brand_id: str, account_id: str,
                            reason: str, commit_once: CommitOnce[MemberRecord, Reply]) -> Reply:
    """CancelMembership's flow: the cancellation committed once, then the cached card dropped."""
    reply = await commit_once(lambda conn: _cancel(conn, brand_id, account_id, reason,
                                                   context.clock()))
    await context.cards.forget(brand_id.strip(), [account_id.strip()])
    return reply


async def _cancel(conn: Connection, brand_id: str, account_id: str, reason: str,
                  now: datetime) -> MemberRecord:
    """The member leaves; the profile the brand could read is erased in the same change."""
    brand = await existing_brand(conn, brand_id)
    account_id = valid_account(account_id)
    member_repo = MemberRepository(conn)
    await member_repo.lock_member_slot(brand.brand_id, account_id)
    member = membership_found(await member_repo.live_member(brand.brand_id, account_id),
                              brand.brand_id, account_id)
    reason = reason.strip()[:200] or "member_request"
    await member_repo.scrub_and_end(member.member_id, now, reason)
    cancelled = await add_event(conn, topic=TOPIC, brand_id=brand.brand_id, producer=PRODUCER,
                                payload=membership_events_pb2.MemberCancelled(
                                    brand_id=brand.brand_id, account_id=account_id,
                                    member_id=member.member_id, reason=reason,
                                    level=member.level))
    await erase_cancelled_member(conn, brand_id=brand.brand_id, account_id=account_id,
                                 member_id=member.member_id, cancelled=cancelled, now=now)
    record = await member_repo.member_record(brand.brand_id, member_id=member.member_id, now=now)
    assert record is not None
    return record

"""The member card: reading it, opening it (consent, profile, tier) and cancelling."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from brandclub.events.v1 import membership_events_pb2
from libs.db import Connection, Database
from libs.errors import InvalidArgument, NotFound, require
from libs.outbox import add_event
from services.membership.adapters.card_cache import NOT_A_MEMBER, CardCache
from services.membership.adapters.identity_client import IdentityClient, MatchResult
from services.membership.adapters.postgres import MembershipRepository
from services.membership.domain.model import (
    Brand,
    Consent,
    Gender,
    Member,
    MemberCard,
    MemberRecord,
    MemberStatus,
    PhoneMatch,
    Profile,
    ProgramMode,
    new_id,
)
from services.membership.domain.program import (
    Program,
    check_consent,
    parse_date,
)
from services.membership.usecases.brands import get_brand, get_shop
from services.membership.usecases.common import (
    PRODUCER,
    TOPIC,
    CommitOnce,
    Reply,
    member_not_found,
    now_utc,
    valid_account,
    valid_channel,
)
from services.membership.usecases.dormancy import initial_dormancy
from services.membership.usecases.programs import get_program


async def get_member_card(conn: Connection, brand_id: str, account_id: str) -> MemberCard:
    card = await MembershipRepository(conn).member_card(require(brand_id, "brand_id"),
                                                        require(account_id, "account_id"),
                                                        now_utc())
    if card is None:
        raise NotFound(f"account {account_id} is not a member of brand {brand_id}",
                       reason="MEMBER_NOT_FOUND", metadata={"brand_id": brand_id})
    return card


async def read_member_card(db: Database, cache: CardCache, brand_id: str, account_id: str,
                           encode: Callable[[MemberCard], bytes]) -> bytes:
    """GetMemberCard's flow: the encoded card from Redis (non-members too), else from
    PostgreSQL, stored only if the cache version has not moved meanwhile."""
    brand_id, account_id = brand_id.strip(), account_id.strip()
    cached, version = (None, b"?")
    if brand_id and account_id:
        cached, version = await cache.get(brand_id, account_id)
    if cached == NOT_A_MEMBER:
        raise await member_not_found(brand_id, account_id)
    if cached is not None:
        return cached
    try:
        async with db.connection() as conn:
            card = encode(await get_member_card(conn, brand_id, account_id))
    except NotFound as error:
        if error.reason == "MEMBER_NOT_FOUND":
            await cache.put(brand_id, account_id, NOT_A_MEMBER, version)
        raise
    await cache.put(brand_id, account_id, card, version)
    return card

_INVITE = re.compile(r"^[A-Za-z0-9_\-]{0,64}$")


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


async def plan_join(conn: Connection, request: JoinRequest) -> JoinPlan:
    """Everything that can refuse a join, checked before the identity vault is called."""
    program, brand = await get_program(conn, request.brand_id)
    account_id = valid_account(request.account_id)
    if not request.has_phone:
        raise InvalidArgument("phone is required to open the card", field="phone",
                              reason="FIELD_REQUIRED")
    purposes = check_consent(program, request.terms_version, request.purposes)
    today = now_utc().date()
    birthday = parse_date(request.birthday, "birthday", today)
    baby = parse_date(request.baby_birthday, "baby_birthday", today)
    if not _INVITE.match(request.invite_code.strip()):
        raise InvalidArgument("invite_code must be at most 64 letters, digits, _ or -",
                              field="invite_code")
    valid_channel(request.channel, "storefront")
    if request.shop_id:
        shop = await get_shop(conn, request.shop_id)
        if shop.brand_id != brand.brand_id:
            raise InvalidArgument("shop_id is not a shop of this brand", field="shop_id",
                                  reason="SHOP_OF_ANOTHER_BRAND")
    live = await MembershipRepository(conn).live_member(brand.brand_id, account_id)
    return JoinPlan(brand, program, replace(request, account_id=account_id), purposes,
                    birthday, baby, live is not None and live.is_card_member)


async def join(db: Database, identity: IdentityClient, cache: CardCache, request: JoinRequest,
               phone: str, request_id: str,
               commit_once: CommitOnce[JoinResult, Reply]) -> Reply:
    """OpenCard's whole flow: every refusal first, then the phone vaulted (and matched for a
    connected brand) in identity, then the join committed once, then the cached card dropped."""
    async with db.connection() as conn:
        plan = await plan_join(conn, request)
    match = None if plan.already_member else await _vault_phone(identity, plan, phone,
                                                                 request_id)
    reply = await commit_once(lambda conn: open_card(conn, plan, match))
    await cache.forget(plan.brand.brand_id, [plan.request.account_id])
    return reply


async def _vault_phone(identity: IdentityClient, plan: JoinPlan, phone: str,
                       request_id: str) -> MatchResult | None:
    """Both calls are safe to repeat; the join commits only after them."""
    await identity.store_phone(f"{request_id}:phone", plan.request.account_id, phone)
    if plan.brand.mode is not ProgramMode.CONNECTED:
        return None
    return await identity.match_phone(f"{request_id}:match", plan.brand.brand_id,
                                      plan.request.account_id)

async def open_card(conn: Connection, plan: JoinPlan, match: MatchResult | None) -> JoinResult:
    """Join: consent, profile, tier from history; joining twice changes nothing."""
    brand, program, request = plan.brand, plan.program, plan.request
    repo = MembershipRepository(conn)
    await repo.lock_member_slot(brand.brand_id, request.account_id)
    now = now_utc()
    live = await repo.live_member(brand.brand_id, request.account_id)
    if live is not None and live.is_card_member:
        record = await repo.member_record(brand.brand_id, member_id=live.member_id, now=now)
        card = await repo.member_card(brand.brand_id, request.account_id, now)
        assert record is not None and card is not None
        return JoinResult(card, False, record.profile)
    if match is None:
        phone_match, encrypted, crm = PhoneMatch.NOT_APPLICABLE, "", ""
    elif match.matched:
        phone_match, encrypted, crm = PhoneMatch.MATCHED, match.encrypted_phone, \
            match.crm_member_id
    else:
        phone_match, encrypted, crm = PhoneMatch.NEW, "", ""
    profile = Profile(plan.birthday, request.gender, plan.baby_birthday, True, phone_match,
                      encrypted, crm)
    channel = valid_channel(request.channel, "storefront")
    growth = await repo.growth(brand.brand_id, request.account_id, program.growth_since(now))
    level = program.level_for(growth)
    member = live or Member(new_id("mbr"), brand.brand_id, request.account_id,
                            MemberStatus.CARD_MEMBER, level, channel, now)
    await repo.open_card(member, joined_at=now, level=level, source_channel=channel,
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
    card = await repo.member_card(brand.brand_id, request.account_id, now)
    assert card is not None
    return JoinResult(card, True, profile)


async def cancel_membership(cache: CardCache, brand_id: str, account_id: str, reason: str,
                            commit_once: CommitOnce[MemberRecord, Reply]) -> Reply:
    """CancelMembership's flow: the cancellation committed once, then the cached card dropped."""
    reply = await commit_once(lambda conn: _cancel(conn, brand_id, account_id, reason))
    await cache.forget(brand_id.strip(), [account_id.strip()])
    return reply


async def _cancel(conn: Connection, brand_id: str, account_id: str,
                  reason: str) -> MemberRecord:
    """The member leaves; the profile the brand could read is erased in the same change."""
    brand = await get_brand(conn, brand_id)
    account_id = valid_account(account_id)
    repo = MembershipRepository(conn)
    await repo.lock_member_slot(brand.brand_id, account_id)
    member = await repo.live_member(brand.brand_id, account_id)
    if member is None:
        raise await member_not_found(brand.brand_id, account_id)
    now = now_utc()
    reason = reason.strip()[:200] or "member_request"
    await repo.scrub_and_end(member.member_id, now, reason)
    await add_event(conn, topic=TOPIC, brand_id=brand.brand_id, producer=PRODUCER,
                    payload=membership_events_pb2.MemberCancelled(
                        brand_id=brand.brand_id, account_id=account_id,
                        member_id=member.member_id, reason=reason, level=member.level))
    record = await repo.member_record(brand.brand_id, member_id=member.member_id, now=now)
    assert record is not None
    return record

"""Membership use cases: each runs inside the caller's transaction and writes its events to
the outbox in that same transaction."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from brandclub.events.v1 import membership_events_pb2
from libs.db import Connection, Database
from libs.errors import FailedPrecondition, InvalidArgument, NotFound, require
from libs.outbox import add_event
from libs.paging import decode_page_token, encode_page_token, page_size
from libs.protoconv import timestamp
from services.membership.adapters.identity_client import MatchResult
from services.membership.adapters.postgres import MembershipRepository
from services.membership.dashboards import usecases as dashboards
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
    Shop,
    Stats,
    after_unfollow,
    member_from_follow,
    new_id,
    valid_display_name,
    valid_time_zone,
)
from services.membership.domain.program import (
    DEFAULT_DORMANT_AFTER_DAYS,
    Program,
    TierReason,
    check_consent,
    is_dormant,
    parse_date,
    valid_program,
)

TOPIC = "membership"
PRODUCER = "membership"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FollowResult:
    card: MemberCard
    became_member: bool


async def create_brand(conn: Connection, display_name: str, mode: ProgramMode,
                       time_zone: str) -> Brand:
    brand = Brand(new_id("brd"), valid_display_name(display_name), mode,
                  valid_time_zone(time_zone), _now())
    await MembershipRepository(conn).add_brand(brand)
    await add_event(conn, topic=TOPIC, brand_id=brand.brand_id, producer=PRODUCER,
                    payload=membership_events_pb2.BrandCreated(brand_id=brand.brand_id,
                                                               time_zone=brand.time_zone))
    return brand


async def get_brand(conn: Connection, brand_id: str) -> Brand:
    brand = await MembershipRepository(conn).get_brand(require(brand_id, "brand_id"))
    if brand is None:
        raise NotFound(f"brand {brand_id} does not exist", reason="BRAND_NOT_FOUND",
                       metadata={"brand_id": brand_id})
    return brand


async def create_shop(conn: Connection, brand_id: str, display_name: str) -> Shop:
    await get_brand(conn, brand_id)
    shop = Shop(new_id("shp"), brand_id, valid_display_name(display_name), _now())
    await MembershipRepository(conn).add_shop(shop)
    return shop


async def get_shop(conn: Connection, shop_id: str) -> Shop:
    shop = await MembershipRepository(conn).get_shop(require(shop_id, "shop_id"))
    if shop is None:
        raise NotFound(f"shop {shop_id} does not exist", reason="SHOP_NOT_FOUND",
                       metadata={"shop_id": shop_id})
    return shop


async def follow_shop(conn: Connection, shop_id: str, account_id: str,
                      channel: str) -> FollowResult:
    account_id = require(account_id, "account_id")
    shop = await get_shop(conn, shop_id)
    repo = MembershipRepository(conn)
    await repo.lock_member_slot(shop.brand_id, account_id)
    now = _now()
    followed = await repo.add_follow(shop.brand_id, shop.shop_id, account_id, now)
    became_member = False
    if await repo.live_member(shop.brand_id, account_id) is None:
        member = member_from_follow(shop.brand_id, account_id, channel, now)
        if await repo.add_member(member):
            await _initial_dormancy(conn, member, now)
            became_member = True
    if followed:
        await repo.add_behaviours(shop.brand_id, "followed", [(account_id, now)])
        await add_event(conn, topic=TOPIC, brand_id=shop.brand_id, producer=PRODUCER,
                        payload=membership_events_pb2.MemberFollowed(
                            brand_id=shop.brand_id, shop_id=shop.shop_id,
                            account_id=account_id, became_lv0=became_member, channel=channel))
    card = await repo.member_card(shop.brand_id, account_id, now)
    assert card is not None  # just ensured a live membership in this transaction
    return FollowResult(card, became_member)


async def unfollow_shop(conn: Connection, shop_id: str, account_id: str) -> MemberCard:
    """Returns the card after the unfollow; its status is ENDED when LV0 membership ended."""
    account_id = require(account_id, "account_id")
    shop = await get_shop(conn, shop_id)
    repo = MembershipRepository(conn)
    await repo.lock_member_slot(shop.brand_id, account_id)
    card = await repo.member_card(shop.brand_id, account_id, _now())
    removed = await repo.remove_follow(shop.shop_id, account_id)
    if card is None:
        raise NotFound(f"account {account_id} is not a member of brand {shop.brand_id}",
                       reason="MEMBER_NOT_FOUND", metadata={"brand_id": shop.brand_id})
    member = after_unfollow(card.member, await repo.count_follows(shop.brand_id, account_id))
    ended = member.status is MemberStatus.ENDED and card.member.status is not MemberStatus.ENDED
    if ended:
        await repo.end_member(member.member_id, _now())
    if removed:
        await add_event(conn, topic=TOPIC, brand_id=shop.brand_id, producer=PRODUCER,
                        payload=membership_events_pb2.MemberUnfollowed(
                            brand_id=shop.brand_id, shop_id=shop.shop_id,
                            account_id=account_id, lv0_ended=ended))
    remaining = [s for s in card.followed_shop_ids if s != shop.shop_id]
    return replace(card, member=member, followed_shop_ids=remaining)


async def get_member_card(conn: Connection, brand_id: str, account_id: str) -> MemberCard:
    card = await MembershipRepository(conn).member_card(require(brand_id, "brand_id"),
                                                        require(account_id, "account_id"),
                                                        _now())
    if card is None:
        raise NotFound(f"account {account_id} is not a member of brand {brand_id}",
                       reason="MEMBER_NOT_FOUND", metadata={"brand_id": brand_id})
    return card


MAX_IMPORT_BATCH = 1000
MAX_ID_LENGTH = 128
EVALUATION_BATCH = 500
_ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_\-.@:]{1,128}$")
_CHANNEL = re.compile(r"^[a-z0-9_\-.]{0,40}$")
_INVITE = re.compile(r"^[A-Za-z0-9_\-]{0,64}$")


def _account(value: str, field: str = "account_id") -> str:
    value = require(value, field)
    if not _ACCOUNT_ID.match(value):
        raise InvalidArgument(f"{field} must be 1-128 letters, digits or _-.@:", field=field)
    return value


def _identifier(value: str, field: str) -> str:
    value = require(value, field)
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument(f"{field} must be at most {MAX_ID_LENGTH} characters",
                              field=field)
    return value


def _channel(value: str, default: str) -> str:
    value = value.strip().lower() or default
    if not _CHANNEL.match(value):
        raise InvalidArgument("channel must be at most 40 lower-case letters, digits or _-.",
                              field="channel")
    return value


async def _member_not_found(brand_id: str, account_id: str) -> NotFound:
    return NotFound(f"account {account_id} is not a member of brand {brand_id}",
                    reason="MEMBER_NOT_FOUND", metadata={"brand_id": brand_id})


# --- shops and programs -----------------------------------------------------------------------

async def list_shops(conn: Connection, brand_id: str, requested_size: int,
                     token: str) -> tuple[list[Shop], str]:
    brand = await get_brand(conn, brand_id)
    size = page_size(requested_size)
    position = decode_page_token(token, ("after",))
    shops = await MembershipRepository(conn).list_shops(
        brand.brand_id, str(position["after"]) if position else "", size + 1)
    next_token = encode_page_token({"after": shops[size - 1].shop_id}) if len(shops) > size else ""
    return shops[:size], next_token


async def get_program(conn: Connection, brand_id: str) -> tuple[Program, Brand]:
    brand = await get_brand(conn, brand_id)
    program = await MembershipRepository(conn).get_program(brand.brand_id)
    if program is None:
        raise FailedPrecondition(f"brand {brand_id} has not configured its program yet",
                                 reason="PROGRAM_NOT_CONFIGURED",
                                 metadata={"brand_id": brand.brand_id})
    return program, brand


async def update_program(conn: Connection, brand_id: str, mode: ProgramMode | None,
                         draft: Program) -> tuple[Program, Brand]:
    """Replace the program's configuration (tiers included) as one change."""
    repo = MembershipRepository(conn)
    brand = await repo.get_brand(require(brand_id, "brand_id"), for_update=True)
    if brand is None:
        raise NotFound(f"brand {brand_id} does not exist", reason="BRAND_NOT_FOUND",
                       metadata={"brand_id": brand_id})
    existing = await repo.get_program(brand.brand_id)
    program = valid_program(replace(
        draft, program_id=existing.program_id if existing else new_id("prg"),
        brand_id=brand.brand_id, updated_at=_now()))
    if mode is not None and mode is not brand.mode:
        await repo.set_brand_mode(brand.brand_id, mode)
        brand = replace(brand, mode=mode)
    await repo.put_program(program)
    await add_event(conn, topic=TOPIC, brand_id=brand.brand_id, producer=PRODUCER,
                    payload=program_changed(program))
    return program, brand


def program_changed(program: Program) -> membership_events_pb2.ProgramChanged:
    """What other services apply from the program (benefits: each tier's points multiplier);
    they keep a projection of it and never a setting of their own."""
    return membership_events_pb2.ProgramChanged(
        brand_id=program.brand_id, program_id=program.program_id,
        update_time=timestamp(program.updated_at),
        tier_multipliers=[membership_events_pb2.ProgramTierMultiplier(
            level=t.level, points_multiplier_percent=t.points_multiplier_percent)
            for t in program.tiers])


async def set_gift_pack_offer(conn: Connection, brand_id: str,
                              gift_pack_id: str) -> tuple[Program, Brand]:
    gift_pack_id = gift_pack_id.strip()
    if len(gift_pack_id) > MAX_ID_LENGTH:
        raise InvalidArgument("gift_pack_id is too long", field="gift_pack_id")
    program, brand = await get_program(conn, brand_id)
    await MembershipRepository(conn).set_gift_pack(brand.brand_id, gift_pack_id)
    return program, replace(brand, lv0_gift_pack_id=gift_pack_id)


# --- LV0 import and notice -----------------------------------------------------------------

async def import_followers(conn: Connection, shop_id: str,
                           followers: Sequence[tuple[str, datetime | None]]
                           ) -> tuple[int, int, str, list[str]]:
    """Existing marketplace followers become LV0 with the notice pending; no events, so that
    no follow reward or journey fires for a follow that happened long ago."""
    if not followers:
        raise InvalidArgument("followers must not be empty", field="followers")
    if len(followers) > MAX_IMPORT_BATCH:
        raise InvalidArgument(f"at most {MAX_IMPORT_BATCH} followers per call",
                              field="followers")
    shop = await get_shop(conn, shop_id)
    now = _now()
    unique: dict[str, datetime] = {}
    for index, (account_id, followed_at) in enumerate(followers):
        account = _account(account_id, f"followers[{index}].account_id")
        when = followed_at or now
        if when > now:
            raise InvalidArgument("follow_time must not be in the future",
                                  field=f"followers[{index}].follow_time")
        unique[account] = min(when, unique.get(account, when))
    repo = MembershipRepository(conn)
    new_follows = await repo.add_follows(shop.brand_id, shop.shop_id, list(unique.items()))
    await repo.add_behaviours(shop.brand_id, "followed", new_follows)
    members = [replace(member_from_follow(shop.brand_id, account, "marketplace_import",
                                          followed_at), lv0_notice_pending=True)
               for account, followed_at in unique.items()]
    became = await repo.add_lv0_members(members)
    return became, len(unique) - became, shop.brand_id, list(unique)


async def clear_lv0_notice(conn: Connection, brand_id: str, account_id: str) -> MemberCard:
    brand_id, account_id = require(brand_id, "brand_id"), _account(account_id)
    repo = MembershipRepository(conn)
    await repo.lock_member_slot(brand_id, account_id)
    member = await repo.live_member(brand_id, account_id)
    if member is None:
        raise await _member_not_found(brand_id, account_id)
    now = _now()
    if member.lv0_notice_pending:
        await repo.clear_notice(member.member_id, now)
    card = await repo.member_card(brand_id, account_id, now)
    assert card is not None
    return card


# --- opening the card ----------------------------------------------------------------------

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
    account_id = _account(request.account_id)
    if not request.has_phone:
        raise InvalidArgument("phone is required to open the card", field="phone",
                              reason="FIELD_REQUIRED")
    purposes = check_consent(program, request.terms_version, request.purposes)
    today = _now().date()
    birthday = parse_date(request.birthday, "birthday", today)
    baby = parse_date(request.baby_birthday, "baby_birthday", today)
    if not _INVITE.match(request.invite_code.strip()):
        raise InvalidArgument("invite_code must be at most 64 letters, digits, _ or -",
                              field="invite_code")
    _channel(request.channel, "storefront")
    if request.shop_id:
        shop = await get_shop(conn, request.shop_id)
        if shop.brand_id != brand.brand_id:
            raise InvalidArgument("shop_id is not a shop of this brand", field="shop_id",
                                  reason="SHOP_OF_ANOTHER_BRAND")
    live = await MembershipRepository(conn).live_member(brand.brand_id, account_id)
    return JoinPlan(brand, program, replace(request, account_id=account_id), purposes,
                    birthday, baby, live is not None and live.is_card_member)


async def open_card(conn: Connection, plan: JoinPlan, match: MatchResult | None) -> JoinResult:
    """Join: consent, profile, tier from history; joining twice changes nothing."""
    brand, program, request = plan.brand, plan.program, plan.request
    repo = MembershipRepository(conn)
    await repo.lock_member_slot(brand.brand_id, request.account_id)
    now = _now()
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
    channel = _channel(request.channel, "storefront")
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
        await _initial_dormancy(conn, member, now)
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


async def cancel_membership(conn: Connection, brand_id: str, account_id: str,
                            reason: str) -> MemberRecord:
    """The member leaves; the profile the brand could read is erased in the same change."""
    brand = await get_brand(conn, brand_id)
    account_id = _account(account_id)
    repo = MembershipRepository(conn)
    await repo.lock_member_slot(brand.brand_id, account_id)
    member = await repo.live_member(brand.brand_id, account_id)
    if member is None:
        raise await _member_not_found(brand.brand_id, account_id)
    now = _now()
    reason = reason.strip()[:200] or "member_request"
    await repo.scrub_and_end(member.member_id, now, reason)
    await add_event(conn, topic=TOPIC, brand_id=brand.brand_id, producer=PRODUCER,
                    payload=membership_events_pb2.MemberCancelled(
                        brand_id=brand.brand_id, account_id=account_id,
                        member_id=member.member_id, reason=reason, level=member.level))
    record = await repo.member_record(brand.brand_id, member_id=member.member_id, now=now)
    assert record is not None
    return record


# --- brand-facing reads --------------------------------------------------------------------

async def get_member(conn: Connection, brand_id: str, member_id: str,
                     account_id: str) -> MemberRecord:
    brand_id = require(brand_id, "brand_id")
    if bool(member_id.strip()) == bool(account_id.strip()):
        raise InvalidArgument("give exactly one of member_id and account_id",
                              field="member_id", reason="ONE_OF_REQUIRED")
    record = await MembershipRepository(conn).member_record(
        brand_id, member_id=member_id.strip(), account_id=account_id.strip(), now=_now())
    if record is None:
        raise NotFound("no such member of this brand", reason="MEMBER_NOT_FOUND",
                       metadata={"brand_id": brand_id})
    return record


async def list_members(conn: Connection, brand_id: str, status: MemberStatus | None,
                       levels: Sequence[int], dormant: bool | None, requested_size: int,
                       token: str) -> tuple[list[MemberRecord], str]:
    brand = await get_brand(conn, brand_id)
    size = page_size(requested_size)
    for index, level in enumerate(levels):
        if not 0 <= level <= 100:
            raise InvalidArgument("levels must be between 0 and 100", field=f"levels[{index}]")
    statuses = ([status.value] if status is not None
                else [MemberStatus.LV0.value, MemberStatus.CARD_MEMBER.value])
    position = decode_page_token(token, ("after",))
    records = await MembershipRepository(conn).list_members(
        brand.brand_id, statuses, list(levels), dormant,
        str(position["after"]) if position else "", size + 1, _now())
    next_token = (encode_page_token({"after": records[size - 1].member.member_id})
                  if len(records) > size else "")
    return records[:size], next_token


@dataclass(frozen=True)
class MemberCounts:
    lv0_valid: int
    lv0_dormant: int
    card_valid: int
    card_dormant: int
    levels: dict[int, tuple[int, int]]


async def count_members(conn: Connection, brand_id: str) -> MemberCounts:
    brand = await get_brand(conn, brand_id)
    lv0 = [0, 0]
    card = [0, 0]
    levels: dict[int, list[int]] = {}
    for row in await MembershipRepository(conn).count_members(brand.brand_id):
        slot = 1 if row["dormant"] else 0
        if row["status"] == MemberStatus.LV0.value:
            lv0[slot] += row["n"]
        else:
            card[slot] += row["n"]
            levels.setdefault(row["level"], [0, 0])[slot] += row["n"]
    return MemberCounts(lv0[0], lv0[1], card[0], card[1],
                        {level: (v[0], v[1]) for level, v in sorted(levels.items())})


# --- marketplace facts -----------------------------------------------------------------------

@dataclass(frozen=True)
class OrderOutcome:
    duplicate: bool
    stats: Stats
    level: int
    brand_id: str


async def _level_after_growth(conn: Connection, brand_id: str, account_id: str,
                              now: datetime) -> tuple[int, int]:
    """Raise a card member's tier at once when growth crosses a threshold."""
    repo = MembershipRepository(conn)
    member = await repo.live_member(brand_id, account_id)
    program = await repo.get_program(brand_id)
    if program is None:
        return (member.level if member else 0), 0
    growth = await repo.growth(brand_id, account_id, program.growth_since(now))
    if member is None or not member.is_card_member:
        return 0, growth
    target = program.level_for(growth)
    if target > member.level:
        await _change_level(conn, member, target, TierReason.GROWTH_REACHED, growth, now)
        return target, growth
    return member.level, growth


async def _change_level(conn: Connection, member: Member, level: int, reason: str,
                        growth: int, now: datetime) -> None:
    await MembershipRepository(conn).set_level(member.member_id, level, now)
    await add_event(conn, topic=TOPIC, brand_id=member.brand_id, producer=PRODUCER,
                    payload=membership_events_pb2.MemberTierChanged(
                        brand_id=member.brand_id, account_id=member.account_id,
                        from_level=member.level, to_level=level, reason=reason,
                        member_id=member.member_id, growth_cents=growth))


def _occurred(value: datetime | None, field: str, now: datetime) -> datetime:
    if value is None:
        raise InvalidArgument(f"{field} is required", field=field, reason="FIELD_REQUIRED")
    return value


async def record_order_paid(conn: Connection, event_id: str, shop_id: str, account_id: str,
                            order_id: str, paid_cents: int, paid_at: datetime | None,
                            return_window_end: datetime | None) -> OrderOutcome:
    event_id = _identifier(event_id, "event_id")
    order_id = _identifier(order_id, "order_id")
    account_id = _account(account_id)
    if paid_cents <= 0:
        raise InvalidArgument("paid_cents must be positive", field="paid_cents")
    now = _now()
    paid_at = _occurred(paid_at, "paid_time", now)
    shop = await get_shop(conn, shop_id)
    repo = MembershipRepository(conn)
    await repo.lock_member_slot(shop.brand_id, account_id)
    fresh = (await repo.claim_fact(shop.brand_id, event_id, "order_paid")
             and await repo.add_order(shop.brand_id, order_id, shop.shop_id, account_id,
                                      paid_cents, paid_at, return_window_end))
    if fresh:
        await repo.stats_after_paid(shop.brand_id, account_id, paid_cents, paid_at)
        await repo.add_behaviours(shop.brand_id, "purchased", [(account_id, paid_at)])
        buyer = await repo.live_member(shop.brand_id, account_id)
        event = membership_events_pb2.OrderPaid(
            brand_id=shop.brand_id, shop_id=shop.shop_id, account_id=account_id,
            order_id=order_id, paid_cents=paid_cents, paid_time=timestamp(paid_at),
            buyer_is_member=buyer is not None)
        if return_window_end is not None:
            event.return_window_end_time.CopyFrom(timestamp(return_window_end))
        await add_event(conn, topic=TOPIC, brand_id=shop.brand_id, producer=PRODUCER,
                        payload=event)
    level, growth = await _level_after_growth(conn, shop.brand_id, account_id, now)
    return OrderOutcome(not fresh, await repo.stats(shop.brand_id, account_id, growth), level,
                        shop.brand_id)


async def record_order_refunded(conn: Connection, event_id: str, shop_id: str,
                                account_id: str, order_id: str, refund_id: str,
                                refunded_cents: int,
                                refunded_at: datetime | None) -> OrderOutcome:
    """A (partial) refund lowers stats and growth at once; the tier waits for the periodic
    evaluation after the retention window."""
    event_id = _identifier(event_id, "event_id")
    order_id = _identifier(order_id, "order_id")
    refund_id = _identifier(refund_id, "refund_id")
    account_id = _account(account_id)
    if refunded_cents <= 0:
        raise InvalidArgument("refunded_cents must be positive", field="refunded_cents")
    now = _now()
    refunded_at = _occurred(refunded_at, "refund_time", now)
    shop = await get_shop(conn, shop_id)
    repo = MembershipRepository(conn)
    await repo.lock_member_slot(shop.brand_id, account_id)
    fresh = await repo.claim_fact(shop.brand_id, event_id, "order_refunded")
    if fresh:
        order = await repo.get_order(shop.brand_id, order_id)
        if order is None:
            raise FailedPrecondition(f"order {order_id} has not been reported paid",
                                     reason="ORDER_NOT_FOUND", metadata={"order_id": order_id})
        if order["account_id"] != account_id:
            raise InvalidArgument("the order belongs to another account", field="account_id",
                                  reason="ORDER_OF_ANOTHER_ACCOUNT")
        fresh = await repo.add_refund(shop.brand_id, refund_id, order_id, refunded_cents,
                                      refunded_at)
        if fresh:
            if order["refunded_cents"] + refunded_cents > order["paid_cents"]:
                raise InvalidArgument(
                    "refunds of this order would exceed its paid amount",
                    field="refunded_cents", reason="REFUND_EXCEEDS_PAID",
                    metadata={"order_paid_cents": str(order["paid_cents"]),
                              "order_refunded_cents": str(order["refunded_cents"])})
            total = await repo.refund_order(shop.brand_id, order_id, refunded_cents)
            await repo.stats_after_refund(shop.brand_id, account_id, refunded_cents,
                                          total == order["paid_cents"])
            await add_event(conn, topic=TOPIC, brand_id=shop.brand_id, producer=PRODUCER,
                            payload=membership_events_pb2.OrderRefunded(
                                brand_id=shop.brand_id, shop_id=shop.shop_id,
                                account_id=account_id, order_id=order_id, refund_id=refund_id,
                                refunded_cents=refunded_cents,
                                refund_time=timestamp(refunded_at),
                                order_paid_cents=order["paid_cents"],
                                order_refunded_cents=total))
    member = await repo.live_member(shop.brand_id, account_id)
    program = await repo.get_program(shop.brand_id)
    growth = (await repo.growth(shop.brand_id, account_id, program.growth_since(now))
              if program else 0)
    level = member.level if member else 0
    return OrderOutcome(not fresh, await repo.stats(shop.brand_id, account_id, growth), level,
                        shop.brand_id)


async def record_cart_item_added(conn: Connection, event_id: str, shop_id: str,
                                 account_id: str, sku_id: str,
                                 added_at: datetime | None) -> tuple[bool, str]:
    event_id = _identifier(event_id, "event_id")
    sku_id = _identifier(sku_id, "sku_id")
    account_id = _account(account_id)
    added_at = _occurred(added_at, "add_time", _now())
    shop = await get_shop(conn, shop_id)
    repo = MembershipRepository(conn)
    if not await repo.claim_fact(shop.brand_id, event_id, "cart_item_added"):
        return True, shop.brand_id
    await repo.add_behaviours(shop.brand_id, "cart_added", [(account_id, added_at)])
    shopper = await repo.live_member(shop.brand_id, account_id)
    await add_event(conn, topic=TOPIC, brand_id=shop.brand_id, producer=PRODUCER,
                    payload=membership_events_pb2.CartItemAdded(
                        brand_id=shop.brand_id, shop_id=shop.shop_id, account_id=account_id,
                        sku_id=sku_id, add_time=timestamp(added_at),
                        shopper_is_member=shopper is not None))
    return False, shop.brand_id


async def _refresh_dormancy(conn: Connection, member: Member, abnormal: bool,
                            last_active: datetime | None, reason_on: str, reason_off: str,
                            now: datetime) -> bool:
    repo = MembershipRepository(conn)
    program = await repo.get_program(member.brand_id)
    days = program.dormant_after_days if program else DEFAULT_DORMANT_AFTER_DAYS
    dormant = is_dormant(abnormal, last_active, member.member_since, days, now)
    if dormant == member.dormant:
        return False
    await repo.set_dormant(member.member_id, dormant, now)
    await dashboards.record_dormancy_change(
        conn, brand_id=member.brand_id, member_id=member.member_id,
        account_id=member.account_id, dormant=dormant,
        reason=reason_on if dormant else reason_off, at=now)
    await add_event(conn, topic=TOPIC, brand_id=member.brand_id, producer=PRODUCER,
                    payload=membership_events_pb2.MemberDormancyChanged(
                        brand_id=member.brand_id, account_id=member.account_id,
                        member_id=member.member_id, dormant=dormant,
                        reason=reason_on if dormant else reason_off))
    return True


async def _initial_dormancy(conn: Connection, member: Member, now: datetime) -> None:
    """A new membership of an account the marketplace reported abnormal is dormant at once."""
    abnormal, last_active = await MembershipRepository(conn).account_state(member.account_id)
    if abnormal:
        await _refresh_dormancy(conn, member, abnormal, last_active, "ACCOUNT_ABNORMAL",
                                "ACCOUNT_NORMAL", now)


async def record_account_status(conn: Connection, event_id: str, account_id: str,
                                abnormal: bool) -> tuple[bool, list[str]]:
    """(duplicate, brands whose member of this account changed)."""
    event_id = _identifier(event_id, "event_id")
    account_id = _account(account_id)
    repo = MembershipRepository(conn)
    if not await repo.claim_fact("", event_id, "account_status"):
        return True, []
    now = _now()
    await repo.set_account_abnormal(account_id, abnormal, now)
    _, last_active = await repo.account_state(account_id)
    changed = []
    for member in await repo.live_members_of_account(account_id):
        if await _refresh_dormancy(conn, member, abnormal, last_active, "ACCOUNT_ABNORMAL",
                                   "ACCOUNT_NORMAL", now):
            changed.append(member.brand_id)
    return False, changed


async def record_account_activity(conn: Connection, event_id: str, account_id: str,
                                  active_at: datetime | None) -> tuple[bool, list[str]]:
    event_id = _identifier(event_id, "event_id")
    account_id = _account(account_id)
    now = _now()
    active_at = _occurred(active_at, "last_active_time", now)
    repo = MembershipRepository(conn)
    if not await repo.claim_fact("", event_id, "account_activity"):
        return True, []
    await repo.set_account_active(account_id, min(active_at, now), now)
    abnormal, last_active = await repo.account_state(account_id)
    changed = []
    for member in await repo.live_members_of_account(account_id):
        if await _refresh_dormancy(conn, member, abnormal, last_active, "INACTIVE", "ACTIVE",
                                   now):
            changed.append(member.brand_id)
    return False, changed


# --- periodic evaluation ---------------------------------------------------------------------

@dataclass
class Evaluation:
    raised: int = 0
    lowered: int = 0
    became_dormant: int = 0
    became_valid: int = 0
    changed_accounts: list[str] | None = None


async def evaluate_brand(db: Database, brand_id: str) -> Evaluation:
    """Tiers: up where growth allows, down once the retention window has passed since the
    level was reached. Dormancy: from abnormal flags and inactivity. Batches of members, each
    change in its own transaction under the member's lock."""
    result = Evaluation(changed_accounts=[])
    assert result.changed_accounts is not None
    async with db.connection() as conn:
        brand = await get_brand(conn, brand_id)
        program = await MembershipRepository(conn).get_program(brand.brand_id)
    now = _now()
    if program is not None:
        after = ""
        while True:
            async with db.connection() as conn:
                rows = await MembershipRepository(conn).card_members_with_growth(
                    brand.brand_id, program.growth_since(now), after, EVALUATION_BATCH)
            if not rows:
                break
            after = rows[-1]["member_id"]
            for row in rows:
                target = program.level_for(int(row["growth"]))
                if target == row["level"] or (
                        target < row["level"]
                        and not program.retention_over(row["level_since"], now)):
                    continue
                async with db.transaction() as conn:
                    moved = await _evaluate_member_tier(conn, program, brand.brand_id,
                                                        row["account_id"], now)
                if moved > 0:
                    result.raised += 1
                elif moved < 0:
                    result.lowered += 1
                if moved:
                    result.changed_accounts.append(row["account_id"])
    days = program.dormant_after_days if program else DEFAULT_DORMANT_AFTER_DAYS
    after = ""
    while True:
        async with db.connection() as conn:
            rows = await MembershipRepository(conn).dormancy_candidates(brand.brand_id, after,
                                                                        EVALUATION_BATCH)
        if not rows:
            break
        after = rows[-1]["member_id"]
        for row in rows:
            dormant = is_dormant(row["abnormal"], row["last_active_at"], row["member_since"],
                                 days, now)
            if dormant == row["dormant"]:
                continue
            async with db.transaction() as conn:
                repo = MembershipRepository(conn)
                await repo.lock_member_slot(brand.brand_id, row["account_id"])
                member = await repo.live_member(brand.brand_id, row["account_id"])
                if member is None or member.member_id != row["member_id"]:
                    continue
                abnormal, last_active = await repo.account_state(row["account_id"])
                if await _refresh_dormancy(conn, member, abnormal, last_active, "INACTIVE",
                                           "ACTIVE", now):
                    if dormant:
                        result.became_dormant += 1
                    else:
                        result.became_valid += 1
                    result.changed_accounts.append(row["account_id"])
    return result


async def _evaluate_member_tier(conn: Connection, program: Program, brand_id: str,
                                account_id: str, now: datetime) -> int:
    repo = MembershipRepository(conn)
    await repo.lock_member_slot(brand_id, account_id)
    member = await repo.live_member(brand_id, account_id)
    if member is None or not member.is_card_member:
        return 0
    growth = await repo.growth(brand_id, account_id, program.growth_since(now))
    target = program.level_for(growth)
    if target > member.level:
        await _change_level(conn, member, target, TierReason.GROWTH_REACHED, growth, now)
    elif target < member.level and program.retention_over(member.level_since, now):
        await _change_level(conn, member, target, TierReason.RETENTION_EXPIRED, growth, now)
    else:
        return 0
    return target - member.level


async def brand_ids(db: Database) -> list[str]:
    async with db.connection() as conn:
        return await MembershipRepository(conn).brand_ids()

"""Brands, shops and members, and the rules of the fused LV0 model."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from libs.errors import InvalidArgument, found, require

T = TypeVar("T")

DEFAULT_TIME_ZONE = "Asia/Shanghai"
MAX_NAME_LENGTH = 100


class ProgramMode(enum.Enum):
    CONNECTED = "connected"
    NON_CONNECTED = "non_connected"


class MemberStatus(enum.Enum):
    LV0 = "lv0"
    CARD_MEMBER = "card_member"
    ENDED = "ended"


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def valid_display_name(value: str, field_name: str = "display_name") -> str:
    name = require(value, field_name)
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"{field_name} must be at most {MAX_NAME_LENGTH} characters",
                              field=field_name, reason="NAME_TOO_LONG")
    return name


def valid_time_zone(value: str) -> str:
    zone = value.strip() or DEFAULT_TIME_ZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"time_zone {zone!r} is not an IANA time zone", field="time_zone",
                              reason="UNKNOWN_TIME_ZONE") from None
    return zone


@dataclass(frozen=True)
class Brand:
    brand_id: str
    display_name: str
    mode: ProgramMode
    time_zone: str
    created_at: datetime
    lv0_gift_pack_id: str = ""


@dataclass(frozen=True)
class Shop:
    shop_id: str
    brand_id: str
    display_name: str
    created_at: datetime


@dataclass(frozen=True)
class Member:
    member_id: str
    brand_id: str
    account_id: str
    status: MemberStatus
    level: int
    source_channel: str
    member_since: datetime
    lv0_notice_pending: bool = False
    joined_at: datetime | None = None
    level_since: datetime | None = None
    consent_terms_version: str = ""
    dormant: bool = False

    @property
    def is_card_member(self) -> bool:
        return self.status is MemberStatus.CARD_MEMBER


class Gender(enum.Enum):
    MALE = "male"
    FEMALE = "female"
    UNKNOWN = "unknown"


class PhoneMatch(enum.Enum):
    NOT_APPLICABLE = "not_applicable"
    MATCHED = "matched"
    NEW = "new"


class ConsentState(enum.Enum):
    NONE = "none"
    CURRENT = "current"
    OUTDATED = "outdated"


@dataclass(frozen=True)
class MemberCard:
    brand: Brand
    member: Member
    followed_shop_ids: list[str] = field(default_factory=list)
    level_name: str = ""
    current_terms_version: str = ""
    growth_cents: int = 0
    next_level_growth_cents: int = 0

    @property
    def consent_state(self) -> ConsentState:
        if not self.member.is_card_member or not self.member.consent_terms_version:
            return ConsentState.NONE
        if self.member.consent_terms_version == self.current_terms_version:
            return ConsentState.CURRENT
        return ConsentState.OUTDATED

    @property
    def gift_pack_offered(self) -> bool:
        """An LV0 shopper entering a shop of a brand with a gift pack sees it offered."""
        return self.member.status is MemberStatus.LV0 and bool(self.brand.lv0_gift_pack_id)


@dataclass(frozen=True)
class Stats:
    order_count: int = 0
    paid_cents: int = 0
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    growth_cents: int = 0


@dataclass(frozen=True)
class PhoneMatchResult:
    """What identity answered when the shopper's vaulted phone was matched against a connected
    brand's CRM."""

    matched: bool
    encrypted_phone: str
    crm_member_id: str


def phone_match_of(result: PhoneMatchResult | None) -> tuple[PhoneMatch, str, str]:
    """(match, encrypted phone, CRM member id) for the profile; a non-connected brand (no
    result) never matches, and only a match carries the brand's identifiers."""
    if result is None:
        return PhoneMatch.NOT_APPLICABLE, "", ""
    if result.matched:
        return PhoneMatch.MATCHED, result.encrypted_phone, result.crm_member_id
    return PhoneMatch.NEW, "", ""


@dataclass(frozen=True)
class Profile:
    """What a card member authorised the brand to receive (never a plaintext phone)."""

    birthday: date | None = None
    gender: Gender = Gender.UNKNOWN
    baby_birthday: date | None = None
    has_phone: bool = False
    phone_match: PhoneMatch = PhoneMatch.NOT_APPLICABLE
    encrypted_phone: str = ""
    crm_member_id: str = ""


@dataclass(frozen=True)
class Consent:
    terms_version: str
    purposes: tuple[str, ...]
    consented_at: datetime
    channel: str


@dataclass(frozen=True)
class MemberRecord:
    """A member as the brand reads it."""

    member: Member
    profile: Profile
    consent: Consent | None
    stats: Stats
    invite_code: str
    ended_at: datetime | None


@dataclass(frozen=True)
class MemberGroup:
    """How many live members of a brand share a status, a level and a dormancy."""

    status: MemberStatus
    level: int
    dormant: bool
    count: int


@dataclass(frozen=True)
class MemberCounts:
    lv0_valid: int
    lv0_dormant: int
    card_valid: int
    card_dormant: int
    levels: dict[int, tuple[int, int]]
    """level -> (valid, dormant) card members, levels in increasing order."""


def tally(groups: Iterable[MemberGroup]) -> MemberCounts:
    """The brand's counts: LV0 and card members, valid and dormant, and card members per
    level (LV0 members have no level of their own to count)."""
    lv0 = [0, 0]
    card = [0, 0]
    levels: dict[int, list[int]] = {}
    for group in groups:
        slot = 1 if group.dormant else 0
        if group.status is MemberStatus.LV0:
            lv0[slot] += group.count
        else:
            card[slot] += group.count
            levels.setdefault(group.level, [0, 0])[slot] += group.count
    return MemberCounts(lv0[0], lv0[1], card[0], card[1],
                        {level: (v[0], v[1]) for level, v in sorted(levels.items())})


def member_from_follow(brand_id: str, account_id: str, channel: str, now: datetime) -> Member:
    """A follower who is not yet a member of the brand becomes LV0 (the fused model)."""
    return Member(
        member_id=new_id("mbr"),
        brand_id=brand_id,
        account_id=account_id,
        status=MemberStatus.LV0,
        level=0,
        source_channel=channel or "storefront",
        member_since=now,
    )


def after_unfollow(member: Member, shops_still_followed: int) -> Member:
    """An LV0 membership lasts as long as the shopper follows one of the brand's shops;
    a card member stays a member whatever they follow."""
    if member.status is MemberStatus.LV0 and shops_still_followed == 0:
        return replace(member, status=MemberStatus.ENDED)
    return member


def membership_found(value: T | None, brand_id: str, account_id: str) -> T:
    """`value` (the account's membership, its card...), or NotFound MEMBER_NOT_FOUND."""
    return found(value, f"membership of account {account_id} in brand {brand_id}",
                 reason="MEMBER_NOT_FOUND", brand_id=brand_id)

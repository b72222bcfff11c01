"""Membership use cases: each runs inside the caller's transaction and writes its events to
the outbox in that same transaction."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from brandclub.events.v1 import membership_events_pb2
from libs.db import Connection
from libs.errors import NotFound, require
from libs.outbox import add_event
from services.membership.adapters.postgres import MembershipRepository
from services.membership.domain.model import (
    Brand,
    MemberCard,
    MemberStatus,
    ProgramMode,
    Shop,
    after_unfollow,
    member_from_follow,
    new_id,
    valid_display_name,
    valid_time_zone,
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
        await repo.add_member(member_from_follow(shop.brand_id, account_id, channel, now))
        became_member = True
    if followed:
        await add_event(conn, topic=TOPIC, brand_id=shop.brand_id, producer=PRODUCER,
                        payload=membership_events_pb2.MemberFollowed(
                            brand_id=shop.brand_id, shop_id=shop.shop_id,
                            account_id=account_id, became_lv0=became_member, channel=channel))
    card = await repo.member_card(shop.brand_id, account_id)
    assert card is not None  # just ensured a live membership in this transaction
    return FollowResult(card, became_member)


async def unfollow_shop(conn: Connection, shop_id: str, account_id: str) -> MemberCard:
    """Returns the card after the unfollow; its status is ENDED when LV0 membership ended."""
    account_id = require(account_id, "account_id")
    shop = await get_shop(conn, shop_id)
    repo = MembershipRepository(conn)
    await repo.lock_member_slot(shop.brand_id, account_id)
    card = await repo.member_card(shop.brand_id, account_id)
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
                                                        require(account_id, "account_id"))
    if card is None:
        raise NotFound(f"account {account_id} is not a member of brand {brand_id}",
                       reason="MEMBER_NOT_FOUND", metadata={"brand_id": brand_id})
    return card

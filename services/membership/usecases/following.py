"""Following shops: LV0 membership, the import of marketplace followers and the LV0 notice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from brandclub.events.v1 import membership_events_pb2
from libs.db import Connection
from libs.errors import InvalidArgument, require
from libs.idempotency import CommitOnce, Reply
from libs.outbox import add_event
from services.membership.adapters.facts_repository import FactRepository
from services.membership.adapters.follows_repository import FollowRepository
from services.membership.adapters.members_repository import MemberRepository
from services.membership.domain.inputs import valid_account
from services.membership.domain.model import (
    MemberCard,
    MemberStatus,
    after_unfollow,
    member_from_follow,
    membership_found,
)
from services.membership.usecases.brands import existing_shop
from services.membership.usecases.context import MembershipContext
from services.membership.usecases.dormancy import initial_dormancy
from services.membership.usecases.events import PRODUCER, TOPIC


@dataclass(frozen=True)
class FollowResult:
    card: MemberCard
    became_member: bool


async def follow_shop(context: MembershipContext, shop_id: str, account_id: str,
                      channel: str, commit_once: CommitOnce[FollowResult, Reply]) -> Reply:
    """FollowShop's flow: the follow committed once, then the follower's cached card dropped."""
    reply = await commit_once(lambda conn: _follow(context, conn, shop_id, account_id,
                                                   channel))
    await _forget_card(context, shop_id, account_id)
    return reply


async def unfollow_shop(context: MembershipContext, shop_id: str, account_id: str,
                        commit_once: CommitOnce[MemberCard, Reply]) -> Reply:
    """UnfollowShop's flow: the unfollow committed once, then the cached card dropped."""
    reply = await commit_once(lambda conn: _unfollow(context, conn, shop_id, account_id))
    await _forget_card(context, shop_id, account_id)
    return reply


async def _forget_card(context: MembershipContext, shop_id: str, account_id: str) -> None:
    async with context.db.connection() as conn:
        shop = await existing_shop(conn, shop_id)
    await context.cards.forget(shop.brand_id, [account_id.strip()])


async def _follow(context: MembershipContext, conn: Connection, shop_id: str,
                  account_id: str, channel: str) -> FollowResult:
    account_id = require(account_id, "account_id")
    shop = await existing_shop(conn, shop_id)
    fact_repo = FactRepository(conn)
    follow_repo = FollowRepository(conn)
    member_repo = MemberRepository(conn)
    await member_repo.lock_member_slot(shop.brand_id, account_id)
    now = context.clock()
    followed = await follow_repo.add_follow(shop.brand_id, shop.shop_id, account_id, now)
    became_member = False
    if await member_repo.live_member(shop.brand_id, account_id) is None:
        member = member_from_follow(shop.brand_id, account_id, channel, now)
        if await member_repo.add_member(member):
            await initial_dormancy(conn, member, now)
            became_member = True
    if followed:
        await fact_repo.add_behaviours(shop.brand_id, "followed", [(account_id, now)])
        await add_event(conn, topic=TOPIC, brand_id=shop.brand_id, producer=PRODUCER,
                        payload=membership_events_pb2.MemberFollowed(
                            brand_id=shop.brand_id, shop_id=shop.shop_id,
                            account_id=account_id, became_lv0=became_member, channel=channel))
    card = await member_repo.member_card(shop.brand_id, account_id, now)
    assert card is not None  # just ensured a live membership in this transaction
    return FollowResult(card, became_member)


async def _unfollow(context: MembershipContext, conn: Connection, shop_id: str,
                    account_id: str) -> MemberCard:
    """Returns the card after the unfollow; its status is ENDED when LV0 membership ended."""
    account_id = require(account_id, "account_id")
    shop = await existing_shop(conn, shop_id)
    follow_repo = FollowRepository(conn)
    member_repo = MemberRepository(conn)
    await member_repo.lock_member_slot(shop.brand_id, account_id)
    card = await member_repo.member_card(shop.brand_id, account_id, context.clock())
    removed = await follow_repo.remove_follow(shop.shop_id, account_id)
    card = membership_found(card, shop.brand_id, account_id)
    member = after_unfollow(card.member, await follow_repo.count_follows(shop.brand_id, account_id))
    ended = member.status is MemberStatus.ENDED and card.member.status is not MemberStatus.ENDED
    if ended:
        await member_repo.end_member(member.member_id, context.clock())
    if removed:
        await add_event(conn, topic=TOPIC, brand_id=shop.brand_id, producer=PRODUCER,
                        payload=membership_events_pb2.MemberUnfollowed(
                            brand_id=shop.brand_id, shop_id=shop.shop_id,
                            account_id=account_id, lv0_ended=ended))
    remaining = [s for s in card.followed_shop_ids if s != shop.shop_id]
    return replace(card, member=member, followed_shop_ids=remaining)


MAX_IMPORT_BATCH = 1000


async def import_followers(context: MembershipContext, shop_id: str,
                           followers: Sequence[tuple[str, datetime | None]],
                           commit_once: CommitOnce[tuple[int, int], Reply]) -> Reply:
    """ImportFollowers' flow: the import committed once, (LV0 made, already members); then the
    cached cards of the imported accounts dropped (none on a replay)."""
    touched: list[tuple[str, list[str]]] = []

    async def work(conn: Connection) -> tuple[int, int]:
        became, already, brand_id, accounts = await _import(conn, shop_id, followers,
                                                            context.clock())
        touched.append((brand_id, accounts))
        return became, already

    reply = await commit_once(work)
    for brand_id, accounts in touched:
        await context.cards.forget(brand_id, accounts)
    return reply


async def _import(conn: Connection, shop_id: str,
                  followers: Sequence[tuple[str, datetime | None]],
                  now: datetime) -> tuple[int, int, str, list[str]]:
    """Existing marketplace followers become LV0 with the notice pending; no events, so that
    no follow reward or journey fires for a follow that happened long ago."""
    if not followers:
        raise InvalidArgument("followers must not be empty", field="followers")
    if len(followers) > MAX_IMPORT_BATCH:
        raise InvalidArgument(f"at most {MAX_IMPORT_BATCH} followers per call",
                              field="followers")
    shop = await existing_shop(conn, shop_id)
    unique: dict[str, datetime] = {}
    for index, (account_id, followed_at) in enumerate(followers):
        account = valid_account(account_id, f"followers[{index}].account_id")
        when = followed_at or now
        if when > now:
            raise InvalidArgument("follow_time must not be in the future",
                                  field=f"followers[{index}].follow_time")
        unique[account] = min(when, unique.get(account, when))
    fact_repo = FactRepository(conn)
    follow_repo = FollowRepository(conn)
    member_repo = MemberRepository(conn)
    new_follows = await follow_repo.add_follows(shop.brand_id, shop.shop_id, list(unique.items()))
    await fact_repo.add_behaviours(shop.brand_id, "followed", new_follows)
    members = [replace(member_from_follow(shop.brand_id, account, "marketplace_import",
                                          followed_at), lv0_notice_pending=True)
               for account, followed_at in unique.items()]
    became = await member_repo.add_lv0_members(members)
    return became, len(unique) - became, shop.brand_id, list(unique)


async def clear_lv0_notice(context: MembershipContext, brand_id: str, account_id: str,
                           commit_once: CommitOnce[MemberCard, Reply]) -> Reply:
    """ClearLv0Notice's flow: the notice cleared once, then the cached card dropped."""
    reply = await commit_once(lambda conn: _clear_notice(conn, brand_id, account_id,
                                                         context.clock()))
    await context.cards.forget(brand_id.strip(), [account_id.strip()])
    return reply


async def _clear_notice(conn: Connection, brand_id: str, account_id: str,
                        now: datetime) -> MemberCard:
    brand_id, account_id = require(brand_id, "brand_id"), valid_account(account_id)
    member_repo = MemberRepository(conn)
    await member_repo.lock_member_slot(brand_id, account_id)
    member = membership_found(await member_repo.live_member(brand_id, account_id), brand_id,
                              account_id)
    if member.lv0_notice_pending:
        await member_repo.clear_notice(member.member_id, now)
    card = await member_repo.member_card(brand_id, account_id, now)
    assert card is not None
    return card

"""Marketplace facts: orders, refunds, carts, account state; tiers and dormancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from brandclub.events.v1 import membership_events_pb2 as events
from brandclub.membership.v1 import membership_service_pb2 as pb
from libs.grpc_client import remote_error
from libs.protoconv import timestamp
from tests.services.membership.conftest import Club, rid


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def refund(club: Club, shop_id: str, account: str, order_id: str, refund_id: str,
                 cents: int, event_id: str | None = None) -> pb.RecordOrderRefundedResponse:
    return await club.membership.RecordOrderRefunded(pb.RecordOrderRefundedRequest(
        event_id=event_id or rid(), shop_id=shop_id, account_id=account, order_id=order_id,
        refund_id=refund_id, refunded_cents=cents, refund_time=timestamp(datetime.now(UTC))))


async def test_redelivered_order_is_counted_once(club: Club) -> None:
    """The same event id, or the same order under another event id, counts once: stats,
    behaviours and the OrderPaid event."""
    _, shop_id = await club.brand()
    account = await club.account("ivy")
    first = await club.pay(shop_id, account, "o-1", 12_345, event_id="ev-1")
    again = await club.pay(shop_id, account, "o-1", 12_345, event_id="ev-1")
    other_event = await club.pay(shop_id, account, "o-1", 12_345, event_id="ev-2")
    assert (first.duplicate, again.duplicate, other_event.duplicate) == (False, True, True)
    assert (other_event.stats.order_count, other_event.stats.paid_cents) == (1, 12_345)
    paid = await club.events(events.OrderPaid)
    assert [(e.order_id, e.paid_cents) for e in paid] == [("o-1", 12_345)]
    rows = await club.sql("SELECT count(*) AS n FROM member_behaviours WHERE account_id = $1 "
                          "AND kind = 'purchased'", account)
    assert rows[0]["n"] == 1


async def test_growth_raises_tier_at_once_and_refund_waits_for_retention(club: Club) -> None:
    """Crossing a threshold raises the tier immediately; a refund after the upgrade lowers
    stats and growth but keeps the tier until the retention window has passed, then the
    evaluation lowers it with RETENTION_EXPIRED."""
    brand_id, shop_id = await club.brand(retention_days=30)
    account = await club.account("jack")
    await club.join(brand_id, account)
    upgraded = await club.pay(shop_id, account, "o-1", 55_000)
    assert upgraded.level == 2
    refunded = await refund(club, shop_id, account, "o-1", "r-1", 10_000)
    assert (refunded.level, refunded.stats.paid_cents, refunded.stats.growth_cents,
            refunded.stats.order_count) == (2, 45_000, 45_000, 1)
    card = (await club.membership.GetMemberCard(pb.GetMemberCardRequest(
        brand_id=brand_id, account_id=account))).card
    assert (card.level, card.growth_cents) == (2, 45_000)
    early = await club.membership.EvaluateMembers(pb.EvaluateMembersRequest(brand_id=brand_id))
    assert early.levels_lowered == 0
    await club.sql("UPDATE members SET level_since = now() - interval '31 days' "
                   "WHERE account_id = $1", account)
    late = await club.membership.EvaluateMembers(pb.EvaluateMembersRequest(brand_id=brand_id))
    assert late.levels_lowered == 1
    card = (await club.membership.GetMemberCard(pb.GetMemberCardRequest(
        brand_id=brand_id, account_id=account))).card
    assert (card.level, card.level_name) == (1, "Silver")
    changes = await club.events(events.MemberTierChanged)
    assert [(c.from_level, c.to_level, c.reason) for c in changes] == [
        (1, 2, "GROWTH_REACHED"), (2, 1, "RETENTION_EXPIRED")]
    assert changes[1].growth_cents == 45_000


async def test_partial_refunds_and_bad_refunds(club: Club) -> None:
    """Partial refunds add up (a full refund removes the order from the count); a refund past
    the paid amount, of an unknown order or a repeated refund id changes nothing."""
    _, shop_id = await club.brand()
    account = await club.account("kate")
    await club.pay(shop_id, account, "o-1", 10_000)
    await refund(club, shop_id, account, "o-1", "r-1", 3_000)
    repeated = await refund(club, shop_id, account, "o-1", "r-1", 3_000)
    assert repeated.duplicate and repeated.stats.paid_cents == 7_000
    error = await failure(refund(club, shop_id, account, "o-1", "r-2", 8_000))
    assert (error.code(), remote_error(error).reason) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                          "REFUND_EXCEEDS_PAID")
    error = await failure(refund(club, shop_id, account, "o-404", "r-3", 100))
    assert (error.code(), remote_error(error).reason) == (grpc.StatusCode.FAILED_PRECONDITION,
                                                          "ORDER_NOT_FOUND")
    final = await refund(club, shop_id, account, "o-1", "r-4", 7_000)
    assert (final.stats.paid_cents, final.stats.order_count) == (0, 0)
    refunds = await club.events(events.OrderRefunded)
    assert [(e.refund_id, e.refunded_cents, e.order_refunded_cents) for e in refunds] == [
        ("r-1", 3_000, 3_000), ("r-4", 7_000, 10_000)]


async def test_fact_input_is_validated(club: Club) -> None:
    """Facts without an event id, with a non-positive amount or an unknown shop are refused."""
    _, shop_id = await club.brand()
    error = await failure(club.membership.RecordOrderPaid(pb.RecordOrderPaidRequest(
        shop_id=shop_id, account_id="a", order_id="o", paid_cents=1,
        paid_time=timestamp(datetime.now(UTC)))))
    assert remote_error(error).metadata["field"] == "event_id"
    error = await failure(club.membership.RecordOrderPaid(pb.RecordOrderPaidRequest(
        event_id="e", shop_id=shop_id, account_id="a", order_id="o", paid_cents=0,
        paid_time=timestamp(datetime.now(UTC)))))
    assert remote_error(error).metadata["field"] == "paid_cents"
    error = await failure(club.membership.RecordCartItemAdded(pb.RecordCartItemAddedRequest(
        event_id="e", shop_id="shp_nope", account_id="a", sku_id="s",
        add_time=timestamp(datetime.now(UTC)))))
    assert remote_error(error).reason == "SHOP_NOT_FOUND"


async def test_cart_fact_is_recorded_once(club: Club) -> None:
    """An added-to-cart fact becomes a behaviour and a CartItemAdded event, once."""
    _, shop_id = await club.brand()
    request = pb.RecordCartItemAddedRequest(
        event_id="cart-1", shop_id=shop_id, account_id="acc_cart", sku_id="sku-9",
        add_time=timestamp(datetime.now(UTC)))
    assert not (await club.membership.RecordCartItemAdded(request)).duplicate
    assert (await club.membership.RecordCartItemAdded(request)).duplicate
    added = await club.events(events.CartItemAdded)
    assert [(e.account_id, e.sku_id) for e in added] == [("acc_cart", "sku-9")]


async def test_abnormal_and_inactive_members_are_dormant(club: Club) -> None:
    """An abnormal account is dormant at once; an account inactive past dormant_after_days
    becomes dormant at the evaluation; counts split valid and dormant."""
    brand_id, shop_id = await club.brand()
    odd, idle, fine = [await club.account(n) for n in ("odd", "idle", "fine")]
    for account in (odd, idle, fine):
        await club.join(brand_id, account)
    await club.membership.FollowShop(pb.FollowShopRequest(request_id=rid(), shop_id=shop_id,
                                                          account_id="acc_lv0"))
    status = pb.RecordAccountStatusRequest(event_id="st-1", account_id=odd, abnormal=True)
    assert not (await club.membership.RecordAccountStatus(status)).duplicate
    assert (await club.membership.RecordAccountStatus(status)).duplicate
    long_ago = datetime.now(UTC) - timedelta(days=120)
    await club.membership.RecordAccountActivity(pb.RecordAccountActivityRequest(
        event_id="act-1", account_id=idle, last_active_time=timestamp(long_ago)))
    await club.membership.RecordAccountActivity(pb.RecordAccountActivityRequest(
        event_id="act-2", account_id=fine, last_active_time=timestamp(datetime.now(UTC))))
    evaluated = await club.membership.EvaluateMembers(pb.EvaluateMembersRequest(
        brand_id=brand_id))
    assert evaluated.became_dormant == 0  # the activity fact already applied it
    counts = await club.membership.CountMembers(pb.CountMembersRequest(brand_id=brand_id))
    assert (counts.card_valid, counts.card_dormant, counts.lv0_valid, counts.lv0_dormant) == (
        1, 2, 1, 0)
    assert [(c.level, c.valid, c.dormant) for c in counts.levels] == [(1, 1, 2)]
    dormant = (await club.membership.ListMembers(pb.ListMembersRequest(
        brand_id=brand_id, validity=pb.VALIDITY_DORMANT))).members
    assert sorted(m.account_id for m in dormant) == sorted([odd, idle])
    reasons = {(e.account_id, e.reason) for e in await club.events(events.MemberDormancyChanged)}
    assert reasons == {(odd, "ACCOUNT_ABNORMAL"), (idle, "INACTIVE")}
    await club.sql("UPDATE members SET member_since = now() - interval '100 days' "
                   "WHERE account_id = 'acc_lv0'")
    later = await club.membership.EvaluateMembers(pb.EvaluateMembersRequest(brand_id=brand_id))
    assert later.became_dormant == 1


async def test_list_members_pages_and_filters_by_level(club: Club) -> None:
    """Members page through with next_page_token; a level filter returns only that level."""
    brand_id, shop_id = await club.brand()
    accounts = [await club.account(f"p{i}") for i in range(5)]
    for account in accounts:
        await club.join(brand_id, account)
    await club.pay(shop_id, accounts[0], "big", 60_000)
    seen: list[str] = []
    token = ""
    while True:
        page = await club.membership.ListMembers(pb.ListMembersRequest(
            brand_id=brand_id, page_size=2, page_token=token))
        seen += [m.account_id for m in page.members]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(accounts)
    gold = (await club.membership.ListMembers(pb.ListMembersRequest(
        brand_id=brand_id, levels=[2]))).members
    assert [(m.account_id, m.stats.paid_cents) for m in gold] == [(accounts[0], 60_000)]
    error = await failure(club.membership.ListMembers(pb.ListMembersRequest(
        brand_id=brand_id, page_token="garbage")))
    assert remote_error(error).reason == "PAGE_TOKEN_INVALID"


async def test_order_and_cart_events_say_whether_the_shopper_was_a_member(club: Club) -> None:
    """OrderPaid and CartItemAdded carry whether the shopper was a member when it happened, so
    that earning can apply the eligibility rule: before joining, no; after joining, yes."""
    brand_id, shop_id = await club.brand()
    account = await club.account("ned")
    await club.pay(shop_id, account, "before", 1_000)
    await club.membership.RecordCartItemAdded(pb.RecordCartItemAddedRequest(
        event_id=rid(), shop_id=shop_id, account_id=account, sku_id="sku-1",
        add_time=timestamp(datetime.now(UTC))))
    await club.join(brand_id, account)
    await club.pay(shop_id, account, "after", 1_000)
    await club.membership.RecordCartItemAdded(pb.RecordCartItemAddedRequest(
        event_id=rid(), shop_id=shop_id, account_id=account, sku_id="sku-2",
        add_time=timestamp(datetime.now(UTC))))
    paid = await club.events(events.OrderPaid)
    assert [(e.order_id, e.HasField("buyer_is_member"), e.buyer_is_member) for e in paid] == [
        ("before", True, False), ("after", True, True)]
    added = await club.events(events.CartItemAdded)
    assert [(e.sku_id, e.shopper_is_member) for e in added] == [("sku-1", False),
                                                                ("sku-2", True)]

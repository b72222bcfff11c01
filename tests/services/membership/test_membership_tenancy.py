"""Every brand-scoped rpc of the membership process, called as another brand, sees nothing.

Brand A has a card member (with orders, a followed shop, a tier above LV1), an imported LV0
follower with its notice pending, a segment and a snapshot. Every rpc of MembershipService,
SegmentService and DashboardService that takes a brand (or a shop, which belongs to a brand)
is then called for brand B with A's ids: reads find nothing, writes touch nothing of A, and
the join flow in B starts from B's own history. A's state is compared before and after.
`test_every_brand_scoped_rpc_has_a_case` keeps the table complete: a new rpc that takes a
brand_id or shop_id fails until it has its cross-brand case here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from brandclub.identity.v1 import identity_service_pb2_grpc as identity_grpc
from brandclub.membership.v1 import dashboard_service_pb2 as dpb
from brandclub.membership.v1 import dashboard_service_pb2_grpc as dgrpc
from brandclub.membership.v1 import membership_service_pb2 as pb
from brandclub.membership.v1 import membership_service_pb2_grpc as pb_grpc
from brandclub.membership.v1 import segment_service_pb2 as spb
from brandclub.membership.v1 import segment_service_pb2_grpc as sgrpc
from libs import contract
from libs.protoconv import timestamp
from libs.testing import contract_channel, running_service, service_settings
from services.identity.main import compose as identity_compose
from services.membership.main import compose as membership_compose
from tests.services.membership.conftest import Club, rid

SERVICES = ("brandclub.membership.v1.MembershipService", "brandclub.membership.v1.SegmentService",
            "brandclub.membership.v1.DashboardService")
EVERY_MEMBER = spb.SegmentRule(condition=spb.RuleCondition(field="tier", operator="gte",
                                                           number=0))


@dataclass
class World:
    club: Club
    segments: sgrpc.SegmentServiceStub
    dashboards: dgrpc.DashboardServiceStub
    brand_a: str = ""
    shop_a: str = ""
    brand_b: str = ""
    shop_b: str = ""
    card_member: str = ""  # account: card member of A at LV2
    card_member_id: str = ""
    follower: str = ""  # account: imported LV0 of A, notice pending
    segment_a: str = ""
    snapshot_a: str = ""

    @property
    def membership(self) -> pb_grpc.MembershipServiceStub:
        return self.club.membership


@pytest.fixture
async def world(db_url: str, redis_url: str) -> AsyncIterator[World]:
    async with running_service(service_settings("identity", db_url, redis_url),
                               identity_compose) as identity:
        settings = service_settings("membership", db_url, redis_url,
                                    IDENTITY_ADDR=identity.address)
        async with running_service(settings, membership_compose) as membership, \
                contract_channel(membership) as channel, \
                contract_channel(identity) as identity_channel:
            club = Club(pb_grpc.MembershipServiceStub(channel),
                        identity_grpc.IdentityServiceStub(identity_channel), db_url, redis_url)
            w = World(club, sgrpc.SegmentServiceStub(channel),
                      dgrpc.DashboardServiceStub(channel))
            w.brand_a, w.shop_a = await club.brand("A")
            w.brand_b, w.shop_b = await club.brand("B")
            w.card_member = await club.account("alice")
            joined = await club.join(w.brand_a, w.card_member)
            w.card_member_id = joined.card.member_id
            await club.membership.FollowShop(pb.FollowShopRequest(
                request_id=rid(), shop_id=w.shop_a, account_id=w.card_member))
            assert (await club.pay(w.shop_a, w.card_member, "order-a", 60_000)).level == 2
            w.follower = await club.account("fred")
            await club.membership.ImportFollowers(pb.ImportFollowersRequest(
                request_id=rid(), shop_id=w.shop_a,
                followers=[pb.ImportedFollower(account_id=w.follower)]))
            w.segment_a = (await w.segments.CreateSegment(spb.CreateSegmentRequest(
                request_id=rid(), brand_id=w.brand_a, name="all", rule=EVERY_MEMBER))
            ).segment.segment_id
            w.snapshot_a = (await w.segments.CreateSegmentSnapshot(
                spb.CreateSegmentSnapshotRequest(request_id=rid(), brand_id=w.brand_a,
                                                 segment_id=w.segment_a))).snapshot.snapshot_id
            yield w


async def not_found(call: Awaitable[Any],
                    code: grpc.StatusCode = grpc.StatusCode.NOT_FOUND) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()


async def state_of_a(w: World) -> tuple[Any, ...]:
    """Everything brand A shows of its members (cards read past the cache from PostgreSQL)."""
    rows = await w.club.sql(
        "SELECT account_id, status, level, lv0_notice_pending, dormant, member_id "
        "FROM members WHERE brand_id = $1 ORDER BY account_id", w.brand_a)
    stats = await w.club.sql("SELECT account_id, order_count, paid_cents FROM member_stats "
                             "WHERE brand_id = $1 ORDER BY account_id", w.brand_a)
    orders = await w.club.sql("SELECT order_id, refunded_cents FROM orders WHERE brand_id = $1",
                              w.brand_a)
    follows = await w.club.sql("SELECT shop_id, account_id FROM follows WHERE brand_id = $1 "
                               "ORDER BY account_id", w.brand_a)
    program = await w.membership.GetProgram(pb.GetProgramRequest(brand_id=w.brand_a))
    card = (await w.membership.GetMemberCard(pb.GetMemberCardRequest(
        brand_id=w.brand_a, account_id=w.card_member))).card
    return (tuple(map(tuple, rows)), tuple(map(tuple, stats)), tuple(map(tuple, orders)),
            tuple(map(tuple, follows)), program.SerializeToString(deterministic=True),
            card.gift_pack_offered, card.level, card.growth_cents)


# --- one case per rpc: called for brand B (or B's shop) with A's ids -----------------------

async def get_member_card(w: World) -> None:
    for account in (w.card_member, w.follower):
        await not_found(w.membership.GetMemberCard(pb.GetMemberCardRequest(
            brand_id=w.brand_b, account_id=account)))


async def get_member(w: World) -> None:
    await not_found(w.membership.GetMember(pb.GetMemberRequest(
        brand_id=w.brand_b, member_id=w.card_member_id)))
    await not_found(w.membership.GetMember(pb.GetMemberRequest(
        brand_id=w.brand_b, account_id=w.card_member)))


async def list_members(w: World) -> None:
    for status in (pb.MEMBER_STATUS_UNSPECIFIED, pb.MEMBER_STATUS_LV0,
                   pb.MEMBER_STATUS_CARD_MEMBER, pb.MEMBER_STATUS_ENDED):
        reply = await w.membership.ListMembers(pb.ListMembersRequest(
            brand_id=w.brand_b, status=status))
        assert list(reply.members) == []


async def count_members(w: World) -> None:
    counts = await w.membership.CountMembers(pb.CountMembersRequest(brand_id=w.brand_b))
    assert (counts.lv0_valid, counts.lv0_dormant, counts.card_valid,
            counts.card_dormant) == (0, 0, 0, 0)
    assert all(level.count == 0 for level in counts.levels)


async def list_shops(w: World) -> None:
    shops = (await w.membership.ListShops(pb.ListShopsRequest(brand_id=w.brand_b))).shops
    assert [s.shop_id for s in shops] == [w.shop_b]


async def get_brand(w: World) -> None:
    brand = (await w.membership.GetBrand(pb.GetBrandRequest(brand_id=w.brand_b))).brand
    assert (brand.brand_id, brand.display_name) == (w.brand_b, "B")


async def get_shop(w: World) -> None:
    """Shop ids are global; a shop answers with its own brand, which callers check."""
    shop = (await w.membership.GetShop(pb.GetShopRequest(shop_id=w.shop_b))).shop
    assert shop.brand_id == w.brand_b


async def get_program(w: World) -> None:
    program = (await w.membership.GetProgram(pb.GetProgramRequest(brand_id=w.brand_b))).program
    assert program.brand_id == w.brand_b


async def update_program(w: World) -> None:
    await w.membership.UpdateProgram(pb.UpdateProgramRequest(
        request_id=rid(), brand_id=w.brand_b, terms_version="2024-06",
        consent_purposes=["profile"], tiers=[
            pb.Tier(level=1, name="Only", growth_threshold_cents=0,
                    points_multiplier_percent=100)],
        growth_window_days=30, retention_days=1, dormant_after_days=30))


async def set_lv0_gift_pack_offer(w: World) -> None:
    await w.membership.SetLv0GiftPackOffer(pb.SetLv0GiftPackOfferRequest(
        request_id=rid(), brand_id=w.brand_b, gift_pack_id="gp_b"))


async def evaluate_members(w: World) -> None:
    reply = await w.membership.EvaluateMembers(pb.EvaluateMembersRequest(brand_id=w.brand_b))
    assert (reply.levels_raised, reply.levels_lowered, reply.became_dormant,
            reply.became_valid) == (0, 0, 0, 0)


async def clear_lv0_notice(w: World) -> None:
    await not_found(w.membership.ClearLv0Notice(pb.ClearLv0NoticeRequest(
        request_id=rid(), brand_id=w.brand_b, account_id=w.follower)))


async def cancel_membership(w: World) -> None:
    await not_found(w.membership.CancelMembership(pb.CancelMembershipRequest(
        request_id=rid(), brand_id=w.brand_b, account_id=w.card_member, reason="probe")))


async def unfollow_shop(w: World) -> None:
    await not_found(w.membership.UnfollowShop(pb.UnfollowShopRequest(
        request_id=rid(), shop_id=w.shop_b, account_id=w.card_member)))


async def record_order_refunded(w: World) -> None:
    """A refund through B's shop of A's order id refunds nothing of A's."""
    await not_found(w.membership.RecordOrderRefunded(pb.RecordOrderRefundedRequest(
        event_id=rid(), shop_id=w.shop_b, account_id=w.card_member, order_id="order-a",
        refund_id="refund-b", refunded_cents=60_000,
        refund_time=timestamp(datetime.now(UTC)))), grpc.StatusCode.FAILED_PRECONDITION)


async def record_order_paid(w: World) -> None:
    """An order in B's shop counts for B only, from B's zero."""
    reply = await w.club.pay(w.shop_b, w.card_member, "order-b", 1_000)
    assert (reply.stats.paid_cents, reply.stats.order_count) == (1_000, 1)


async def record_cart_item_added(w: World) -> None:
    await w.membership.RecordCartItemAdded(pb.RecordCartItemAddedRequest(
        event_id=rid(), shop_id=w.shop_b, account_id=w.follower, sku_id="sku",
        add_time=timestamp(datetime.now(UTC))))


async def follow_shop(w: World) -> None:
    """Following B's shop makes an LV0 of B with none of A's state (no pending notice)."""
    card = (await w.membership.FollowShop(pb.FollowShopRequest(
        request_id=rid(), shop_id=w.shop_b, account_id=w.follower))).card
    assert (card.brand_id, card.status, card.lv0_notice_pending, card.growth_cents) == (
        w.brand_b, pb.MEMBER_STATUS_LV0, False, 0)
    assert list(card.followed_shop_ids) == [w.shop_b]


async def import_followers(w: World) -> None:
    """A's card member imported as B's follower is new to B (LV0), not 'already a member'."""
    reply = await w.membership.ImportFollowers(pb.ImportFollowersRequest(
        request_id=rid(), shop_id=w.shop_b,
        followers=[pb.ImportedFollower(account_id=w.card_member)]))
    assert (reply.became_lv0, reply.already_members) == (1, 0)


async def open_card(w: World) -> None:
    """Joining B is a new membership at B's own tier from B's own history (the 1,000 cents
    paid in B's shop, not A's 60,000), whatever A holds."""
    reply = await w.club.join(w.brand_b, w.card_member)
    card = reply.card
    assert reply.joined and card.member_id != w.card_member_id
    assert (card.brand_id, card.level, card.growth_cents) == (w.brand_b, 1, 1_000)
    assert list(card.followed_shop_ids) == [w.shop_b]


async def preview_segment(w: World) -> None:
    reply = await w.segments.PreviewSegment(spb.PreviewSegmentRequest(
        brand_id=w.brand_b, rule=EVERY_MEMBER))
    assert reply.member_count == 0


async def create_segment(w: World) -> None:
    segment = (await w.segments.CreateSegment(spb.CreateSegmentRequest(
        request_id=rid(), brand_id=w.brand_b, name="b", rule=EVERY_MEMBER))).segment
    count = await w.segments.CountSegment(spb.CountSegmentRequest(
        brand_id=w.brand_b, segment_id=segment.segment_id))
    assert count.member_count == 0


async def get_segment(w: World) -> None:
    await not_found(w.segments.GetSegment(spb.GetSegmentRequest(
        brand_id=w.brand_b, segment_id=w.segment_a)))


async def list_segments(w: World) -> None:
    listed = (await w.segments.ListSegments(spb.ListSegmentsRequest(
        brand_id=w.brand_b))).segments
    assert w.segment_a not in {s.segment_id for s in listed}


async def count_segment(w: World) -> None:
    await not_found(w.segments.CountSegment(spb.CountSegmentRequest(
        brand_id=w.brand_b, segment_id=w.segment_a)))


async def evaluate_segment_for_member(w: World) -> None:
    await not_found(w.segments.EvaluateSegmentForMember(spb.EvaluateSegmentForMemberRequest(
        brand_id=w.brand_b, segment_id=w.segment_a, account_id=w.card_member)))


async def create_segment_snapshot(w: World) -> None:
    await not_found(w.segments.CreateSegmentSnapshot(spb.CreateSegmentSnapshotRequest(
        request_id=rid(), brand_id=w.brand_b, segment_id=w.segment_a)))


async def get_segment_snapshot(w: World) -> None:
    await not_found(w.segments.GetSegmentSnapshot(spb.GetSegmentSnapshotRequest(
        brand_id=w.brand_b, snapshot_id=w.snapshot_a)))


async def list_snapshot_members(w: World) -> None:
    await not_found(w.segments.ListSnapshotMembers(spb.ListSnapshotMembersRequest(
        brand_id=w.brand_b, snapshot_id=w.snapshot_a)))


async def get_member_overview(w: World) -> None:
    overview = (await w.dashboards.GetMemberOverview(dpb.GetMemberOverviewRequest(
        brand_id=w.brand_b))).overview
    assert (overview.lv0_valid, overview.card_valid, overview.card_total) == (0, 0, 0)


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


async def get_daily_dashboard(w: World) -> None:
    days = (await w.dashboards.GetDailyDashboard(dpb.GetDailyDashboardRequest(
        brand_id=w.brand_b, start_date=_today(), end_date=_today()))).days
    assert sum(d.new_members for d in days) == 0


async def refresh_dashboard(w: World) -> None:
    await w.dashboards.RefreshDashboard(dpb.RefreshDashboardRequest(
        request_id=rid(), brand_id=w.brand_b, start_date=_today(), end_date=_today()))
    await get_daily_dashboard(w)


# Reads first, then writes; the join flow (follow, import, open card) last since it gives
# the shoppers a membership of B.
CASES: dict[str, Callable[[World], Awaitable[None]]] = {
    "GetMemberCard": get_member_card, "GetMember": get_member, "ListMembers": list_members,
    "CountMembers": count_members, "ListShops": list_shops, "GetBrand": get_brand,
    "GetShop": get_shop,
    "GetProgram": get_program, "EvaluateMembers": evaluate_members,
    "PreviewSegment": preview_segment, "GetSegment": get_segment,
    "ListSegments": list_segments, "CountSegment": count_segment,
    "EvaluateSegmentForMember": evaluate_segment_for_member,
    "GetSegmentSnapshot": get_segment_snapshot, "ListSnapshotMembers": list_snapshot_members,
    "CreateSegmentSnapshot": create_segment_snapshot, "CreateSegment": create_segment,
    "GetMemberOverview": get_member_overview, "GetDailyDashboard": get_daily_dashboard,
    "RefreshDashboard": refresh_dashboard,
    "UpdateProgram": update_program, "SetLv0GiftPackOffer": set_lv0_gift_pack_offer,
    "ClearLv0Notice": clear_lv0_notice, "CancelMembership": cancel_membership,
    "UnfollowShop": unfollow_shop, "RecordOrderRefunded": record_order_refunded,
    "RecordCartItemAdded": record_cart_item_added, "RecordOrderPaid": record_order_paid,
    "FollowShop": follow_shop, "ImportFollowers": import_followers, "OpenCard": open_card,
}
# Brand-scoped by the caller's own request, with nothing of another brand to reach.
NOT_CROSS_BRAND = {"CreateShop": "creates a shop in the brand named; reads nothing"}


def test_every_brand_scoped_rpc_has_a_case() -> None:
    """Each rpc taking a brand_id or shop_id in these services has a cross-brand case."""
    scoped = {method.name for name in SERVICES for method in contract.services()[name].methods
              if {"brand_id", "shop_id"} & {f.name for f in method.input_type.fields}}
    assert scoped - set(CASES) - set(NOT_CROSS_BRAND) == set()
    assert set(CASES) - scoped == set()


async def test_another_brand_sees_and_changes_nothing_of_a_brand(world: World) -> None:
    """Every brand-scoped rpc called for brand B with brand A's ids finds nothing of A and
    leaves A exactly as it was."""
    before = await state_of_a(world)
    failed: list[str] = []
    for name, case in CASES.items():
        try:
            await case(world)
        except (AssertionError, grpc.aio.AioRpcError, pytest.fail.Exception) as error:
            failed.append(f"{name}: {error!r}")
    assert not failed, "\n".join(failed)
    assert await state_of_a(world) == before
    # A's own reads still see A's members: the probes above were refused for B only.
    card = (await world.membership.GetMemberCard(pb.GetMemberCardRequest(
        brand_id=world.brand_a, account_id=world.follower))).card
    assert (card.status, card.lv0_notice_pending) == (pb.MEMBER_STATUS_LV0, True)

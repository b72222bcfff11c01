"""Programs, opening the card, cancelling, LV0 import and the cached member card."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac

import grpc
import pytest

from brandclub.events.v1 import membership_events_pb2 as events
from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from brandclub.membership.v1 import membership_service_pb2 as pb
from libs.grpc_client import remote_error
from libs.redis import connect_redis
from services.membership.adapters.card_cache import card_key
from tests.services.membership.conftest import TIERS, Club, rid


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_program_configuration_round_trips_and_validates(club: Club) -> None:
    """A program keeps its tiers, windows and terms; gaps in levels and falling thresholds are
    refused naming the tier field."""
    brand_id, _ = await club.brand()
    program = (await club.membership.GetProgram(pb.GetProgramRequest(brand_id=brand_id))).program
    assert [(t.level, t.name, t.points_multiplier_percent) for t in program.tiers] == [
        (1, "Silver", 100), (2, "Gold", 150), (3, "Diamond", 200)]
    assert (program.terms_version, program.growth_window_days, program.retention_days,
            program.mode) == ("2024-06", 365, 30, pb.PROGRAM_MODE_NON_CONNECTED)
    gap = [TIERS[0], pb.Tier(level=3, name="X", growth_threshold_cents=9,
                             points_multiplier_percent=100)]
    error = await failure(club.membership.UpdateProgram(pb.UpdateProgramRequest(
        request_id=rid(), brand_id=brand_id, terms_version="v2", tiers=gap,
        growth_window_days=365, retention_days=30, dormant_after_days=90)))
    assert remote_error(error).metadata["field"] == "tiers[1].level"
    falling = [TIERS[0], pb.Tier(level=2, name="X", growth_threshold_cents=0,
                                 points_multiplier_percent=100)]
    error = await failure(club.membership.UpdateProgram(pb.UpdateProgramRequest(
        request_id=rid(), brand_id=brand_id, terms_version="v2", tiers=falling,
        growth_window_days=365, retention_days=30, dormant_after_days=90)))
    assert remote_error(error).reason == "TIER_THRESHOLDS_NOT_INCREASING"
    error = await failure(club.membership.UpdateProgram(pb.UpdateProgramRequest(
        request_id=rid(), brand_id=brand_id, terms_version="v2", tiers=TIERS,
        growth_window_days=0, retention_days=30, dormant_after_days=90)))
    assert remote_error(error).metadata["field"] == "growth_window_days"
    changed = (await club.membership.UpdateProgram(pb.UpdateProgramRequest(
        request_id=rid(), brand_id=brand_id, mode=pb.PROGRAM_MODE_CONNECTED,
        terms_version="2025-01", tiers=TIERS[:2], growth_window_days=180, retention_days=0,
        dormant_after_days=30))).program
    assert (changed.program_id, changed.mode, len(changed.tiers)) == (
        program.program_id, pb.PROGRAM_MODE_CONNECTED, 2)


async def test_a_created_brand_publishes_its_time_zone(club: Club) -> None:
    """CreateBrand publishes BrandCreated with the brand's time zone (benefits counts its days
    in it)."""
    brand = (await club.membership.CreateBrand(pb.CreateBrandRequest(
        request_id=rid(), display_name="Zoned", mode=pb.PROGRAM_MODE_NON_CONNECTED,
        time_zone="Europe/Berlin"))).brand
    created = [e for e in await club.events(events.BrandCreated) if e.brand_id == brand.brand_id]
    assert [e.time_zone for e in created] == ["Europe/Berlin"]


async def test_every_saved_program_publishes_its_tier_multipliers(club: Club) -> None:
    """Each saved program publishes ProgramChanged with every tier's points multiplier and its
    update time (benefits earns by it); a refused update publishes nothing."""
    brand_id, _ = await club.brand()
    await failure(club.membership.UpdateProgram(pb.UpdateProgramRequest(
        request_id=rid(), brand_id=brand_id, terms_version="v2", tiers=TIERS,
        growth_window_days=0, retention_days=30, dormant_after_days=90)))
    gold = pb.Tier()
    gold.CopyFrom(TIERS[1])
    gold.points_multiplier_percent = 300
    saved = (await club.membership.UpdateProgram(pb.UpdateProgramRequest(
        request_id=rid(), brand_id=brand_id, terms_version="v3", tiers=[TIERS[0], gold],
        growth_window_days=365, retention_days=30, dormant_after_days=90))).program
    changes = [e for e in await club.events(events.ProgramChanged) if e.brand_id == brand_id]
    assert [[(t.level, t.points_multiplier_percent) for t in e.tier_multipliers]
            for e in changes] == [[(1, 100), (2, 150), (3, 200)], [(1, 100), (2, 300)]]
    assert changes[-1].program_id == saved.program_id
    assert changes[-1].update_time == saved.update_time


async def test_open_card_records_consent_profile_and_emits_joined(club: Club) -> None:
    """An LV0 follower who opens the card becomes LV1 with consent and profile recorded, the
    brand reads no phone number, and MemberJoined carries the invite code."""
    brand_id, shop_id = await club.brand()
    account = await club.account("alice")
    await club.membership.FollowShop(pb.FollowShopRequest(request_id=rid(), shop_id=shop_id,
                                                          account_id=account))
    joined = await club.join(brand_id, account, invite_code="INV123")
    assert joined.joined
    card = joined.card
    assert (card.status, card.level, card.level_name, card.consent_state) == (
        pb.MEMBER_STATUS_CARD_MEMBER, 1, "Silver", pb.CONSENT_STATE_CURRENT)
    assert card.join_time.seconds > 0 and card.next_level_growth_cents == 50_000
    assert joined.phone_match == pb.PHONE_MATCH_NOT_APPLICABLE
    member = (await club.membership.GetMember(pb.GetMemberRequest(
        brand_id=brand_id, account_id=account))).member
    assert (member.birthday, member.gender, member.baby_birthday, member.has_phone) == (
        "1990-05-17", pb.GENDER_FEMALE, "2023-01-02", True)
    assert (member.consent.terms_version, list(member.consent.purposes),
            member.consent.channel) == ("2024-06", ["profile"], "storefront")
    assert "13812345678" not in str(member)
    assert member.encrypted_phone == ""
    joined_events = await club.events(events.MemberJoined)
    assert [(e.account_id, e.level, e.invite_code, e.was_lv0) for e in joined_events] == [
        (account, 1, "INV123", True)]
    assert joined_events[0].program_id.startswith("prg_")
    assert (list(joined_events[0].consent_purposes), list(joined_events[0].offered_purposes)) == (
        ["profile"], ["profile", "marketing_sms"])


async def test_joining_twice_is_idempotent(club: Club) -> None:
    """A second join (new request id) changes nothing and reports joined=false."""
    brand_id, _ = await club.brand()
    account = await club.account("bob")
    first = await club.join(brand_id, account)
    second = await club.join(brand_id, account)
    assert first.joined and not second.joined
    assert first.card.member_id == second.card.member_id
    assert len(await club.events(events.MemberJoined)) == 1


async def test_concurrent_joins_make_one_membership(club: Club) -> None:
    """Ten joins of the same shopper at once leave exactly one membership and one event."""
    brand_id, _ = await club.brand()
    account = await club.account("carol")
    replies = await asyncio.gather(*(club.join(brand_id, account) for _ in range(10)))
    assert sum(reply.joined for reply in replies) == 1
    assert len({reply.card.member_id for reply in replies}) == 1
    rows = await club.sql("SELECT count(*) AS n FROM members WHERE brand_id = $1", brand_id)
    assert rows[0]["n"] == 1
    assert len(await club.events(events.MemberJoined)) == 1


async def test_join_tier_comes_from_history(club: Club) -> None:
    """A shopper who already spent past the Gold threshold joins at LV2."""
    brand_id, shop_id = await club.brand()
    account = await club.account("dave")
    await club.pay(shop_id, account, "o-1", 60_000)
    joined = await club.join(brand_id, account)
    assert (joined.card.level, joined.card.level_name, joined.card.growth_cents) == (
        2, "Gold", 60_000)


async def test_join_refuses_bad_input(club: Club) -> None:
    """Old terms, a missing or malformed phone, a future birthday and an unconfigured program
    are refused with their reasons, and nothing is joined."""
    brand_id, _ = await club.brand()
    account = await club.account("erin")
    base: dict[str, object] = {"brand_id": brand_id, "account_id": account,
                               "terms_version": "2024-06", "phone": "13812345678"}
    cases: list[tuple[dict[str, object], grpc.StatusCode, str]] = [
        ({"terms_version": "2023-01"}, grpc.StatusCode.FAILED_PRECONDITION,
         "TERMS_VERSION_MISMATCH"),
        ({"phone": ""}, grpc.StatusCode.INVALID_ARGUMENT, "FIELD_REQUIRED"),
        ({"phone": "555"}, grpc.StatusCode.INVALID_ARGUMENT, "PHONE_INVALID"),
        ({"birthday": "2999-01-01"}, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        ({"purposes": ["spam"]}, grpc.StatusCode.INVALID_ARGUMENT, "PURPOSE_UNKNOWN"),
    ]
    for change, code, reason in cases:
        fields: dict[str, object] = {**base, **change}
        error = await failure(club.membership.OpenCard(pb.OpenCardRequest(
            request_id=rid(), **fields)))  # type: ignore[arg-type]
        assert (error.code(), remote_error(error).reason) == (code, reason), change
    bare = (await club.membership.CreateBrand(pb.CreateBrandRequest(
        request_id=rid(), display_name="Bare", mode=pb.PROGRAM_MODE_NON_CONNECTED))).brand
    error = await failure(club.join(bare.brand_id, account))
    assert remote_error(error).reason == "PROGRAM_NOT_CONFIGURED"
    assert await club.sql("SELECT 1 FROM members WHERE account_id = $1", account) == []


async def test_connected_brand_gets_match_result_on_join(club: Club) -> None:
    """In a connected brand a shopper whose phone the brand imported is MATCHED with the CRM id
    and encrypted phone; an unknown phone is NEW and hands over nothing."""
    brand_id, _ = await club.brand("Conn", connected=True)
    key = base64.b64decode((await club.identity.GetPhoneMatchKey(
        identity_pb.GetPhoneMatchKeyRequest(brand_id=brand_id))).key_base64)
    known = hmac.new(key, b"+8613911112222", hashlib.sha256).hexdigest()
    started = await club.identity.StartPhoneMatchImport(identity_pb.StartPhoneMatchImportRequest(
        request_id=rid(), brand_id=brand_id))
    await club.identity.AppendPhoneMatchRows(identity_pb.AppendPhoneMatchRowsRequest(
        request_id=rid(), brand_id=brand_id, import_id=started.phone_import.import_id,
        chunk_index=0, csv=f"{known},VIP-42\n".encode()))
    matched = await club.join(brand_id, await club.account("m1"), phone="139 1111 2222")
    assert (matched.phone_match, matched.crm_member_id, matched.encrypted_phone) == (
        pb.PHONE_MATCH_MATCHED, "VIP-42", known)
    fresh_account = await club.account("m2")
    fresh = await club.join(brand_id, fresh_account, phone="13933334444")
    assert (fresh.phone_match, fresh.crm_member_id, fresh.encrypted_phone) == (
        pb.PHONE_MATCH_NEW, "", "")
    member = (await club.membership.GetMember(pb.GetMemberRequest(
        brand_id=brand_id, account_id=fresh_account))).member
    assert (member.phone_match, member.encrypted_phone) == (pb.PHONE_MATCH_NEW, "")


async def test_cancellation_scrubs_profile_and_rejoin_starts_new_membership(club: Club) -> None:
    """After cancelling, every brand-facing read has no profile; a later join is a new
    membership with a new member id."""
    brand_id, _ = await club.brand("Conn", connected=True)
    account = await club.account("frank")
    first = await club.join(brand_id, account)
    cancelled = (await club.membership.CancelMembership(pb.CancelMembershipRequest(
        request_id=rid(), brand_id=brand_id, account_id=account, reason="moving"))).member
    assert cancelled.status == pb.MEMBER_STATUS_ENDED
    assert (cancelled.birthday, cancelled.baby_birthday, cancelled.gender, cancelled.has_phone,
            cancelled.crm_member_id, cancelled.HasField("consent")) == (
        "", "", pb.GENDER_UNSPECIFIED, False, "", False)
    by_id = (await club.membership.GetMember(pb.GetMemberRequest(
        brand_id=brand_id, member_id=first.card.member_id))).member
    assert by_id.birthday == "" and by_id.end_time.seconds > 0
    error = await failure(club.membership.GetMember(pb.GetMemberRequest(
        brand_id=brand_id, account_id=account)))
    assert remote_error(error).reason == "MEMBER_NOT_FOUND"
    error = await failure(club.membership.GetMemberCard(pb.GetMemberCardRequest(
        brand_id=brand_id, account_id=account)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    listed = (await club.membership.ListMembers(pb.ListMembersRequest(
        brand_id=brand_id))).members
    assert listed == []
    rows = await club.sql("SELECT birthday, baby_birthday, encrypted_phone, crm_member_id "
                          "FROM members WHERE member_id = $1", first.card.member_id)
    assert tuple(rows[0]) == (None, None, "", "")
    cancelled_events = await club.events(events.MemberCancelled)
    assert [(e.member_id, e.reason) for e in cancelled_events] == [
        (first.card.member_id, "moving")]
    again = await club.join(brand_id, account)
    assert again.joined and again.card.member_id != first.card.member_id


async def test_imported_followers_become_lv0_with_a_one_time_notice(club: Club) -> None:
    """Imported followers are LV0 with the notice pending until the storefront clears it;
    existing members are left alone."""
    brand_id, shop_id = await club.brand()
    member = await club.account("already")
    await club.join(brand_id, member)
    reply = await club.membership.ImportFollowers(pb.ImportFollowersRequest(
        request_id=rid(), shop_id=shop_id,
        followers=[pb.ImportedFollower(account_id=a) for a in ("f1", "f2", member, "f1")]))
    assert (reply.became_lv0, reply.already_members) == (2, 1)
    card = (await club.membership.GetMemberCard(pb.GetMemberCardRequest(
        brand_id=brand_id, account_id="f1"))).card
    assert (card.status, card.lv0_notice_pending, card.consent_state) == (
        pb.MEMBER_STATUS_LV0, True, pb.CONSENT_STATE_NONE)
    cleared = (await club.membership.ClearLv0Notice(pb.ClearLv0NoticeRequest(
        request_id=rid(), brand_id=brand_id, account_id="f1"))).card
    assert not cleared.lv0_notice_pending
    card = (await club.membership.GetMemberCard(pb.GetMemberCardRequest(
        brand_id=brand_id, account_id="f1"))).card
    assert not card.lv0_notice_pending
    joined = (await club.membership.GetMemberCard(pb.GetMemberCardRequest(
        brand_id=brand_id, account_id=member))).card
    assert (joined.status, joined.lv0_notice_pending) == (pb.MEMBER_STATUS_CARD_MEMBER, False)
    assert await club.events(events.MemberFollowed) == []


async def test_member_card_is_cached_and_invalidated_on_change(club: Club) -> None:
    """The card read fills Redis; a join afterwards is visible at once (no stale card), and a
    non-member answer is cached and invalidated by a follow."""
    brand_id, shop_id = await club.brand()
    gina = await club.account("gina")
    redis = connect_redis(club.redis_url)
    try:
        error = await failure(club.membership.GetMemberCard(pb.GetMemberCardRequest(
            brand_id=brand_id, account_id=gina)))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert await redis.get(card_key(brand_id, gina)) == b"-"
        await club.membership.FollowShop(pb.FollowShopRequest(
            request_id=rid(), shop_id=shop_id, account_id=gina))
        card = (await club.membership.GetMemberCard(pb.GetMemberCardRequest(
            brand_id=brand_id, account_id=gina))).card
        assert card.status == pb.MEMBER_STATUS_LV0
        cached = await redis.get(card_key(brand_id, gina))
        assert isinstance(cached, bytes) and pb.MemberCard.FromString(cached) == card
        await club.join(brand_id, gina)
        card = (await club.membership.GetMemberCard(pb.GetMemberCardRequest(
            brand_id=brand_id, account_id=gina))).card
        assert card.status == pb.MEMBER_STATUS_CARD_MEMBER
    finally:
        await redis.aclose()


async def test_gift_pack_is_offered_to_lv0_only(club: Club) -> None:
    """With a card-opening gift pack set, LV0 cards offer it and card members' do not."""
    brand_id, shop_id = await club.brand()
    lv0 = await club.account("lv0")
    await club.membership.FollowShop(pb.FollowShopRequest(request_id=rid(), shop_id=shop_id,
                                                          account_id=lv0))
    before = (await club.membership.GetMemberCard(pb.GetMemberCardRequest(
        brand_id=brand_id, account_id=lv0))).card
    assert not before.gift_pack_offered
    await club.membership.SetLv0GiftPackOffer(pb.SetLv0GiftPackOfferRequest(
        request_id=rid(), brand_id=brand_id, gift_pack_id="gp_welcome"))
    after = (await club.membership.GetMemberCard(pb.GetMemberCardRequest(
        brand_id=brand_id, account_id=lv0))).card
    assert (after.gift_pack_offered, after.gift_pack_id) == (True, "gp_welcome")
    joined = (await club.join(brand_id, lv0)).card
    assert (joined.gift_pack_offered, joined.gift_pack_id) == (False, "")


async def test_one_brand_reads_nothing_of_another_brands_members(club: Club) -> None:
    """A merchant token is scoped to its brand, and that brand's reads see none of another
    brand's members, even by member id."""
    brand_a, _ = await club.brand("A")
    brand_b, _ = await club.brand("B")
    joined = await club.join(brand_b, await club.account("hank"))
    user = (await club.identity.CreateMerchantUser(identity_pb.CreateMerchantUserRequest(
        request_id=rid(), brand_id=brand_a, login_name="ops-a", display_name="Ops"))).user
    token = (await club.identity.IssueMerchantToken(identity_pb.IssueMerchantTokenRequest(
        merchant_user_id=user.merchant_user_id))).token
    scope = (await club.identity.VerifyToken(identity_pb.VerifyTokenRequest(token=token)))
    assert scope.brand_id == brand_a
    assert (await club.membership.ListMembers(pb.ListMembersRequest(
        brand_id=scope.brand_id))).members == []
    error = await failure(club.membership.GetMember(pb.GetMemberRequest(
        brand_id=scope.brand_id, member_id=joined.card.member_id)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    counts = await club.membership.CountMembers(pb.CountMembersRequest(brand_id=scope.brand_id))
    assert (counts.card_valid, counts.card_dormant) == (0, 0)


async def test_brand_lists_its_shops(club: Club) -> None:
    """A brand with several shops lists them page by page; an unknown brand is NOT_FOUND."""
    brand_id, first = await club.brand()
    created = [first]
    for name in ("Outlet", "Mall"):
        created.append((await club.membership.CreateShop(pb.CreateShopRequest(
            request_id=rid(), brand_id=brand_id, display_name=name))).shop.shop_id)
    page = await club.membership.ListShops(pb.ListShopsRequest(brand_id=brand_id, page_size=2))
    rest = await club.membership.ListShops(pb.ListShopsRequest(
        brand_id=brand_id, page_size=2, page_token=page.next_page_token))
    assert sorted(s.shop_id for s in [*page.shops, *rest.shops]) == sorted(created)
    assert rest.next_page_token == ""
    error = await failure(club.membership.ListShops(pb.ListShopsRequest(brand_id="brd_nope")))
    assert remote_error(error).reason == "BRAND_NOT_FOUND"

"""Storefront and console routes end to end through real HTTP with their real effects: points
mall redemption, the message box, invites, expiring points, console mall items, earning rules,
activity updates and the program; each with a refusal across members or brands."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from tests.services.gateway.conftest import Suite
from tests.services.gateway.helpers import (
    coupon_template,
    create_coupon_mall_item,
    eventually,
    get_json,
    send_json,
    sign_in_spec,
)


async def follow(suite: Suite, shop_id: str, token: str) -> None:
    status, body = await send_json(suite, "POST", f"/storefront/v1/shops/{shop_id}/follow", token)
    assert status == 200, body


async def test_redeem_spends_points_and_issues_the_coupon(suite: Suite) -> None:
    """A console-created coupon item redeemed through the storefront lowers the balance, issues
    the coupon and lists the redemption, for the redeemer only."""
    brand_id, shop_id = await suite.brand_and_shop()
    merchant = await suite.merchant_token(brand_id)
    template_id = await coupon_template(suite, brand_id)
    item = await create_coupon_mall_item(suite, merchant, template_id)
    status, listed = await get_json(suite, "/console/v1/mall/items", merchant)
    assert status == 200 and [i["item_id"] for i in listed["items"]] == [item["item_id"]]
    alice_id, alice = await suite.shopper("pin-redeem-alice")
    _, bob = await suite.shopper("pin-redeem-bob")
    for token in (alice, bob):
        await follow(suite, shop_id, token)
    await suite.benefits.GrantPoints(benefits_pb.GrantPointsRequest(
        request_id="t:grant:redeem", brand_id=brand_id, account_id=alice_id, amount=100,
        reason_code="TEST", source=benefits_pb.POINTS_SOURCE_OPERATOR))
    base = f"/storefront/v1/brands/{brand_id}"
    status, redeemed = await send_json(
        suite, "POST", f"{base}/mall/items/{item['item_id']}/redeem", alice, {"quantity": 1})
    assert status == 200, redeemed
    redemption = redeemed["redemption"]
    assert redemption["state"] == "REDEMPTION_STATE_COMPLETED"
    assert len(redemption["coupon_ids"]) == 1
    _, points = await get_json(suite, f"{base}/points", alice)
    assert points["points"]["available"] == 70
    _, coupons = await get_json(suite, f"{base}/coupons", alice)
    assert [c["coupon_id"] for c in coupons["coupons"]] == redemption["coupon_ids"]
    _, mine = await get_json(suite, f"{base}/mall/redemptions", alice)
    assert [r["redemption_id"] for r in mine["redemptions"]] == [redemption["redemption_id"]]
    _, theirs = await get_json(suite, f"{base}/mall/redemptions", bob)
    assert theirs.get("redemptions", []) == []
    status, refused = await send_json(
        suite, "POST", f"{base}/mall/items/{item['item_id']}/redeem", bob,
        {"quantity": 1, "account_id": alice_id})
    assert status == 400 and refused["error"]["reason"] == "FIELD_NOT_ALLOWED"
    _, points = await get_json(suite, f"{base}/points", alice)
    assert points["points"]["available"] == 70


async def test_redeem_refuses_an_item_of_another_brand(suite: Suite) -> None:
    """An item of brand A redeemed under brand B's path is refused and spends nothing."""
    brand_a, _ = await suite.brand_and_shop("Alpha")
    brand_b, shop_b = await suite.brand_and_shop("Beta")
    template_id = await coupon_template(suite, brand_a)
    item = await create_coupon_mall_item(suite, await suite.merchant_token(brand_a), template_id)
    account_id, token = await suite.shopper("pin-crossbrand")
    await follow(suite, shop_b, token)
    await suite.benefits.GrantPoints(benefits_pb.GrantPointsRequest(
        request_id="t:grant:cross", brand_id=brand_b, account_id=account_id, amount=100,
        reason_code="TEST", source=benefits_pb.POINTS_SOURCE_OPERATOR))
    status, body = await send_json(
        suite, "POST", f"/storefront/v1/brands/{brand_b}/mall/items/{item['item_id']}/redeem",
        token, {"quantity": 1})
    assert status in (404, 409), body
    _, points = await get_json(suite, f"/storefront/v1/brands/{brand_b}/points", token)
    assert points["points"]["available"] == 100


async def test_console_mall_item_is_scoped_to_the_brand(suite: Suite) -> None:
    """A console-created mall item is listed for its brand only; brand_id in the body is
    refused."""
    brand_a, _ = await suite.brand_and_shop("Alpha")
    brand_b, _ = await suite.brand_and_shop("Beta")
    template_id = await coupon_template(suite, brand_a)
    merchant_a = await suite.merchant_token(brand_a)
    merchant_b = await suite.merchant_token(brand_b)
    item = await create_coupon_mall_item(suite, merchant_a, template_id)
    assert item["brand_id"] == brand_a
    _, listed = await get_json(suite, "/console/v1/mall/items", merchant_b)
    assert listed.get("items", []) == []
    status, body = await send_json(suite, "POST", "/console/v1/mall/items", merchant_b, {
        "item": {"brand_id": brand_a, "kind": "MALL_ITEM_KIND_VIRTUAL", "title": "x",
                 "price_points": 1, "stock_total": 1}})
    assert status == 400 and body["error"]["reason"] == "FIELD_NOT_ALLOWED"


async def seed_inbox(db_url: str, brand_id: str, account_id: str, count: int) -> list[str]:
    """Messages delivered to a member's box (as messaging's dispatcher stores them)."""
    ids = [f"msg_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    conn = await asyncpg.connect(db_url)
    try:
        now = datetime.now(UTC)
        await conn.executemany(
            "INSERT INTO messaging.inbox_messages (message_id, brand_id, account_id, title, "
            "body, created_at) VALUES ($1, $2, $3, 'Hello', 'Body', $4)",
            [(mid, brand_id, account_id, now + timedelta(seconds=i)) for i, mid in enumerate(ids)])
    finally:
        await conn.close()
    return ids


async def test_mark_read_lowers_unread_and_never_touches_another_members_box(
        full_suite: Suite, db_url: str) -> None:
    """Marking one own message read lowers the unread count by one; marking another member's
    message is refused and leaves their box unread."""
    suite = full_suite
    brand_id, _ = await suite.brand_and_shop()
    alice_id, alice = await suite.shopper("pin-box-alice")
    bob_id, bob = await suite.shopper("pin-box-bob")
    mine = await seed_inbox(db_url, brand_id, alice_id, 2)
    theirs = await seed_inbox(db_url, brand_id, bob_id, 1)
    base = f"/storefront/v1/brands/{brand_id}/messages"
    _, box = await get_json(suite, base, alice)
    assert box["unread_count"] == 2 and len(box["messages"]) == 2
    status, marked = await send_json(suite, "POST", f"{base}/read", alice,
                                     {"message_ids": [mine[0]]})
    assert status == 200, marked
    assert marked["marked_count"] == 1 and marked.get("unread_count", 0) == 1
    _, box = await get_json(suite, f"{base}?unread_only=true", alice)
    assert [m["message_id"] for m in box["messages"]] == [mine[1]]
    status, refused = await send_json(suite, "POST", f"{base}/read", alice,
                                      {"message_ids": theirs})
    assert status == 404, refused
    _, box = await get_json(suite, base, bob)
    assert box["unread_count"] == 1
    status, everything = await send_json(suite, "POST", f"{base}/read", alice, {"all": True})
    assert status == 200 and everything.get("unread_count", 0) == 0
    _, box = await get_json(suite, base, bob)
    assert box["unread_count"] == 1


async def test_invite_code_and_invites_list_the_inviters_own(full_suite: Suite) -> None:
    """A friend who opens the card with the inviter's code shows in the inviter's invites, and
    in nobody else's."""
    suite = full_suite
    brand_id, shop_id = await suite.brand_and_shop()
    merchant = await suite.merchant_token(brand_id)
    spec = {**sign_in_spec("Invite"), "invite": {"inviter_reward": {"points": 10}}}
    del spec["sign_in"]
    status, created = await send_json(suite, "POST", "/console/v1/activities", merchant,
                                      {"spec": spec, "publish": True})
    assert status == 200, created
    activity_id = created["activity"]["activity_id"]
    _, alice = await suite.shopper("pin-inviter")
    friend_id, friend = await suite.shopper("pin-invitee")
    _, carol = await suite.shopper("pin-bystander")
    for token in (alice, carol):
        await follow(suite, shop_id, token)
    activity = f"/storefront/v1/brands/{brand_id}/activities/{activity_id}"
    status, code = await get_json(suite, f"{activity}/invite-code", alice)
    assert status == 200 and code["code"], code
    _, again = await get_json(suite, f"{activity}/invite-code", alice)
    assert again["code"] == code["code"]
    _, carols = await get_json(suite, f"{activity}/invite-code", carol)
    assert carols["code"] != code["code"]
    status, joined = await send_json(
        suite, "POST", f"/storefront/v1/brands/{brand_id}/card/open", friend,
        {"terms_version": "2024-06", "purposes": ["profile"], "phone": "13812345679",
         "invite_code": code["code"]})
    assert status == 200, joined

    async def listed() -> bool:
        _, invites = await get_json(suite, f"{activity}/invites", alice)
        return [i["invitee_account_id"] for i in invites.get("invites", [])] == [friend_id]

    assert await eventually(listed)
    _, others = await get_json(suite, f"{activity}/invites", carol)
    assert others.get("invites", []) == []


async def test_expiring_points_show_real_lots_for_their_owner(suite: Suite) -> None:
    """With rolling expiry, granted points are listed under their expiry date, for the owner
    only (another shopper, not a member, reads nothing: 404)."""
    brand_id, shop_id = await suite.brand_and_shop()
    await suite.benefits_admin.UpdatePointsPolicy(benefits_pb.UpdatePointsPolicyRequest(
        request_id="t:policy", policy=benefits_pb.PointsPolicy(
            brand_id=brand_id, expiry_mode=benefits_pb.EXPIRY_MODE_ROLLING_DAYS,
            expiry_days=30)))  # the time zone is the brand's
    alice_id, alice = await suite.shopper("pin-expiring-alice")
    await suite.member(shop_id, "pin-expiring-alice")
    _, bob = await suite.shopper("pin-expiring-bob")
    await suite.benefits.GrantPoints(benefits_pb.GrantPointsRequest(
        request_id="t:grant:expiring", brand_id=brand_id, account_id=alice_id, amount=50,
        reason_code="TEST", source=benefits_pb.POINTS_SOURCE_OPERATOR))
    url = f"/storefront/v1/brands/{brand_id}/points/expiring"
    status, body = await get_json(suite, url, alice)
    assert status == 200, body
    assert [int(e["points"]) for e in body["expiring"]] == [50]
    expires = datetime.fromisoformat(body["expiring"][0]["expire_time"].replace("Z", "+00:00"))
    assert timedelta(days=29) < expires - datetime.now(UTC) < timedelta(days=32)
    status, other = await get_json(suite, url, bob)
    assert (status, other["error"]["reason"]) == (404, "MEMBER_NOT_FOUND")


async def test_console_earning_rule_grants_points_in_its_brand_only(suite: Suite) -> None:
    """A follow rule created in the console is listed for its brand and grants its points to a
    new follower; another brand sees no rule."""
    brand_a, shop_a = await suite.brand_and_shop("Alpha")
    brand_b, _ = await suite.brand_and_shop("Beta")
    merchant_a = await suite.merchant_token(brand_a)
    status, created = await send_json(suite, "POST", "/console/v1/earning-rules", merchant_a, {
        "rule": {"trigger": "EARNING_TRIGGER_FOLLOW", "title": "Follow us", "points": 7,
                 "enabled": True}})
    assert status == 200, created
    assert created["rule"]["brand_id"] == brand_a
    _, listed = await get_json(suite, "/console/v1/earning-rules", merchant_a)
    assert [r["rule_id"] for r in listed["rules"]] == [created["rule"]["rule_id"]]
    _, other = await get_json(suite, "/console/v1/earning-rules",
                              await suite.merchant_token(brand_b))
    assert other.get("rules", []) == []
    _, shopper = await suite.shopper("pin-earner")
    await follow(suite, shop_a, shopper)

    async def earned() -> bool:
        _, points = await get_json(suite, f"/storefront/v1/brands/{brand_a}/points", shopper)
        return bool(points["points"]["available"] + points["points"]["pending"] == 7)

    assert await eventually(earned)


async def test_console_activity_update_is_scoped_to_the_owner_brand(full_suite: Suite) -> None:
    """The owning brand renames its activity; another brand's merchant cannot change it."""
    suite = full_suite
    brand_a, _ = await suite.brand_and_shop("Alpha")
    brand_b, _ = await suite.brand_and_shop("Beta")
    merchant_a = await suite.merchant_token(brand_a)
    merchant_b = await suite.merchant_token(brand_b)
    status, created = await send_json(suite, "POST", "/console/v1/activities", merchant_a,
                                      {"spec": sign_in_spec(), "publish": True})
    assert status == 200, created
    activity = created["activity"]
    url = f"/console/v1/activities/{activity['activity_id']}"
    status, refused = await send_json(suite, "PUT", url, merchant_b,
                                      {"spec": {**activity["spec"], "title": "Hijacked"}})
    assert status in (403, 404), refused
    status, updated = await send_json(suite, "PUT", url, merchant_a,
                                      {"spec": {**activity["spec"], "title": "Renamed"}})
    assert status == 200, updated
    assert updated["activity"]["spec"]["title"] == "Renamed"
    _, listed = await get_json(suite, "/console/v1/activities", merchant_a)
    assert [a["spec"]["title"] for a in listed["activities"]] == ["Renamed"]


async def test_console_program_put_replaces_tiers_of_its_brand_only(suite: Suite) -> None:
    """PUT /program replaces the brand's tiers (read back by GET); another brand's program is
    untouched and brand_id in the body is refused."""
    brand_a, _ = await suite.brand_and_shop("Alpha")
    brand_b, _ = await suite.brand_and_shop("Beta")
    merchant_a = await suite.merchant_token(brand_a)
    merchant_b = await suite.merchant_token(brand_b)
    program = {"terms_version": "2025-01", "consent_purposes": ["profile"],
               "tiers": [{"level": 1, "name": "Silver", "growth_threshold_cents": 0,
                          "points_multiplier_percent": 100},
                         {"level": 2, "name": "Gold", "growth_threshold_cents": 100000,
                          "points_multiplier_percent": 150}],
               "growth_window_days": 365, "retention_days": 30, "dormant_after_days": 90}
    status, body = await send_json(suite, "PUT", "/console/v1/program", merchant_a, program)
    assert status == 200, body
    _, got = await get_json(suite, "/console/v1/program", merchant_a)
    assert [t["name"] for t in got["program"]["tiers"]] == ["Silver", "Gold"]
    assert got["program"]["terms_version"] == "2025-01"
    _, other = await get_json(suite, "/console/v1/program", merchant_b)
    assert [t["name"] for t in other["program"]["tiers"]] == ["Silver"]
    assert other["program"]["terms_version"] == "2024-06"
    status, refused = await send_json(suite, "PUT", "/console/v1/program", merchant_b,
                                      {**program, "brand_id": brand_a})
    assert status == 400 and refused["error"]["reason"] == "FIELD_NOT_ALLOWED"
    _, got = await get_json(suite, "/console/v1/program", merchant_a)
    assert got["program"]["terms_version"] == "2025-01"


async def test_published_gift_pack_is_offered_on_lv0_cards_until_closed(suite: Suite) -> None:
    """Publishing a card-opening gift pack in the console offers it on an LV0 shopper's card;
    closing it withdraws the offer; another brand's merchant cannot close it."""
    brand_id, shop_id = await suite.brand_and_shop()
    other_brand, _ = await suite.brand_and_shop("Other")
    merchant = await suite.merchant_token(brand_id)
    _, shopper = await suite.shopper("pin-lv0-gift")
    await follow(suite, shop_id, shopper)
    card_url = f"/storefront/v1/brands/{brand_id}/card"
    _, before = await get_json(suite, card_url, shopper)
    assert before["card"]["status"] == "LV0" and before["card"]["gift_pack_offered"] is False
    status, created = await send_json(suite, "POST", "/console/v1/gift-packs", merchant, {
        "gift_pack": {"title": "Welcome", "points": 50, "enabled": True,
                      "start_time": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}})
    assert status == 200, created
    pack_id = created["gift_pack"]["gift_pack_id"]
    _, offered = await get_json(suite, card_url, shopper)
    assert offered["card"]["gift_pack_offered"] is True
    assert offered["card"]["gift_pack_id"] == pack_id
    status, refused = await send_json(suite, "POST", f"/console/v1/gift-packs/{pack_id}/close",
                                      await suite.merchant_token(other_brand))
    assert status == 404, refused
    _, still = await get_json(suite, card_url, shopper)
    assert still["card"]["gift_pack_offered"] is True
    status, closed = await send_json(suite, "POST", f"/console/v1/gift-packs/{pack_id}/close",
                                     merchant)
    assert status == 200, closed
    assert closed["gift_pack"].get("enabled", False) is False
    _, withdrawn = await get_json(suite, card_url, shopper)
    assert withdrawn["card"]["gift_pack_offered"] is False
    assert withdrawn["card"]["gift_pack_id"] == ""
    status, updated = await send_json(suite, "PUT", f"/console/v1/gift-packs/{pack_id}",
                                      merchant, {"gift_pack": {"title": "Welcome back",
                                                               "points": 60, "enabled": True}})
    assert status == 200, updated
    _, republished = await get_json(suite, card_url, shopper)
    assert republished["card"]["gift_pack_id"] == pack_id

"""Member scan, coupons and gift packs over the open platform, against the real services."""

from __future__ import annotations

from typing import Any

from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from tests.services.gateway.conftest import Suite
from tests.services.gateway.openplatform_helpers import (
    COUPON_TEMPLATE,
    call,
    error_code,
    ready,
    result,
    signed,
)


async def test_member_scan_pages_through_the_brands_members_only(suite: Suite) -> None:
    """member.scan pages through every member of the authorising brand and no other's."""
    app_key, secret, token, first = await ready(suite)
    _, other_shop = await suite.brand_and_shop("Other")
    await suite.member(other_shop, "pin-elsewhere")
    seen: list[str] = []
    page_token = ""
    for _ in range(5):
        body = await call(suite.http, signed(app_key, secret, "brandclub.member.scan",
                                             {"page_size": 1, "page_token": page_token}, token))
        data = result(body, "brandclub.member.scan")["data"]
        seen += [m["account_id"] for m in data["members"]]
        page_token = data["next_page_token"]
        if not page_token:
            break
    assert seen == [first]


async def test_coupon_create_list_issue_close(suite: Suite) -> None:
    """An ISV creates a coupon, finds it in the list, issues it to a member, and closes it;
    after closing, issuing is a business failure."""
    app_key, secret, token, account_id = await ready(suite)

    async def run(method: str, business: dict[str, Any]) -> dict[str, Any]:
        return result(await call(suite.http, signed(app_key, secret, method, business, token)),
                      method)

    created = await run("brandclub.coupon.create",
                        {"template": COUPON_TEMPLATE, "businessId": "c1"})
    assert created["success"] is True, created
    template_id = created["data"]["template"]["template_id"]
    listed = await run("brandclub.coupon.list", {})
    assert [t["template_id"] for t in listed["data"]["templates"]] == [template_id]
    issued = await run("brandclub.coupon.issue", {"account_id": account_id, "businessId": "i1",
                                                  "coupon_template_id": template_id})
    assert issued["success"] is True and issued["data"]["coupon_id"]
    closed = await run("brandclub.coupon.close", {"template_id": template_id})
    assert closed["data"]["template"]["state"] == "COUPON_TEMPLATE_STATE_CLOSED"
    refused = await run("brandclub.coupon.issue", {"account_id": account_id, "businessId": "i2",
                                                   "coupon_template_id": template_id})
    assert refused["success"] is False


async def test_giftpack_create_and_list(suite: Suite) -> None:
    """An ISV creates a gift pack of points and finds it in the list."""
    app_key, secret, token, _ = await ready(suite)
    body = await call(suite.http, signed(app_key, secret, "brandclub.giftpack.create", {
        "gift_pack": {"title": "Welcome", "points": 100, "enabled": True},
        "businessId": "gp1"}, token))
    created = result(body, "brandclub.giftpack.create")
    assert created["success"] is True, created
    body = await call(suite.http, signed(app_key, secret, "brandclub.giftpack.list", {}, token))
    packs = result(body, "brandclub.giftpack.list")["data"]["gift_packs"]
    assert [p["gift_pack_id"] for p in packs] == [created["data"]["gift_pack"]["gift_pack_id"]]


async def test_object_parameters_must_match_the_contract(suite: Suite) -> None:
    """An unknown field or a wrong type inside `template` is code 1003, naming the field."""
    app_key, secret, token, _ = await ready(suite)
    for template in ({**COUPON_TEMPLATE, "free_money": True},
                     {**COUPON_TEMPLATE, "total_stock": "lots"}, "not an object"):
        body = await call(suite.http, signed(app_key, secret, "brandclub.coupon.create",
                                             {"template": template, "businessId": "c"}, token))
        assert error_code(body) == "1003", body
        assert "template" in body["error_response"]["en_desc"]


async def test_isv_gift_pack_is_offered_on_lv0_cards(suite: Suite) -> None:
    """A card-opening gift pack an ISV publishes shows on the brand's LV0 cards at once."""
    app_key, secret, token, account_id = await ready(suite)
    body = await call(suite.http, signed(app_key, secret, "brandclub.giftpack.create", {
        "gift_pack": {"title": "Welcome", "points": 100, "enabled": True},
        "businessId": "gp-offer"}, token))
    created = result(body, "brandclub.giftpack.create")
    assert created["success"] is True, created
    brand_id = created["data"]["gift_pack"]["brand_id"]
    card = (await suite.membership.GetMemberCard(membership_pb.GetMemberCardRequest(
        brand_id=brand_id, account_id=account_id))).card
    assert card.gift_pack_offered
    assert card.gift_pack_id == created["data"]["gift_pack"]["gift_pack_id"]

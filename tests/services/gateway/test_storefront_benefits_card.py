"""Storefront flows beyond follow: open the card, coupons (claim, list), points history, the
mall, cancelling; each shopper reaches only their own data; claims are rate limited."""

from __future__ import annotations

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from tests.services.gateway.conftest import Suite
from tests.services.gateway.helpers import bearer, coupon_template


async def test_open_card_then_cancel(suite: Suite) -> None:
    """A shopper opens the card (LV1), then cancels; the card is then gone."""
    brand_id, _ = await suite.brand_and_shop()
    _, token = await suite.shopper("pin-join")
    async with suite.http.post(f"/storefront/v1/brands/{brand_id}/card/open", json={
            "terms_version": "2024-06", "purposes": ["profile"], "phone": "13812345678",
            "gender": "GENDER_FEMALE"}, headers=bearer(token)) as response:
        assert response.status == 200, await response.text()
    async with suite.http.get(f"/storefront/v1/brands/{brand_id}/card",
                              headers=bearer(token)) as response:
        card = (await response.json())["card"]
    assert card["status"] == "CARD_MEMBER" and card["level"] == 1
    async with suite.http.post(f"/storefront/v1/brands/{brand_id}/card/cancel",
                               json={"reason": "moving"}, headers=bearer(token)) as response:
        assert response.status == 200, await response.text()
    async with suite.http.get(f"/storefront/v1/brands/{brand_id}/card",
                              headers=bearer(token)) as response:
        assert response.status == 404


async def test_open_card_refuses_someone_elses_account_in_the_body(suite: Suite) -> None:
    """The account comes from the token: naming one in the body is refused."""
    brand_id, _ = await suite.brand_and_shop()
    victim, _ = await suite.shopper("pin-victim")
    _, token = await suite.shopper("pin-attacker")
    async with suite.http.post(f"/storefront/v1/brands/{brand_id}/card/open", json={
            "account_id": victim, "terms_version": "2024-06", "phone": "13812345678"},
            headers=bearer(token)) as response:
        assert response.status == 400
        assert (await response.json())["error"]["reason"] == "FIELD_NOT_ALLOWED"
    async with suite.http.post(f"/storefront/v1/brands/{brand_id}/card/open", json={
            "terms_version": 2024, "phone": "x"}, headers=bearer(token)) as response:
        assert response.status == 400
        assert (await response.json())["error"]["reason"] == "BODY_INVALID"


async def test_claimed_coupon_is_listed_for_its_owner_only(suite: Suite) -> None:
    """A claimed coupon appears in the claimer's list and not in another shopper's."""
    brand_id, shop_id = await suite.brand_and_shop()
    template_id = await coupon_template(suite, brand_id)
    _, alice = await suite.shopper("alice")
    _, bob = await suite.shopper("bob")
    for token in (alice, bob):
        await (await suite.http.post(f"/storefront/v1/shops/{shop_id}/follow",
                                     headers=bearer(token))).read()
    async with suite.http.post(f"/storefront/v1/brands/{brand_id}/coupons/{template_id}/claim",
                               headers=bearer(alice)) as response:
        assert response.status == 200, await response.text()
    async with suite.http.get(f"/storefront/v1/brands/{brand_id}/coupons",
                              headers=bearer(alice)) as response:
        assert len((await response.json())["coupons"]) == 1
    async with suite.http.get(f"/storefront/v1/brands/{brand_id}/coupons",
                              headers=bearer(bob)) as response:
        assert (await response.json())["coupons"] == []


async def test_claims_are_rate_limited_per_shopper(suite: Suite) -> None:
    """A shopper hammering claim is cut off with 429 after the per-minute allowance."""
    brand_id, _ = await suite.brand_and_shop()
    _, token = await suite.shopper("pin-hammer")
    statuses = []
    for _ in range(22):
        async with suite.http.post(f"/storefront/v1/brands/{brand_id}/coupons/tpl_none/claim",
                                   headers=bearer(token)) as response:
            statuses.append(response.status)
    assert 429 not in statuses[:20] and statuses[20:] == [429, 429]


async def test_points_history_and_mall_read_the_shoppers_own(suite: Suite) -> None:
    """Points granted to a member show in their history only (a shopper who is not a member
    of the brand reads none: 404); the mall lists (empty)."""
    brand_id, shop_id = await suite.brand_and_shop()
    alice_id, alice = await suite.shopper("alice")
    await suite.member(shop_id, "alice")
    _, bob = await suite.shopper("bob")
    await suite.benefits.GrantPoints(benefits_pb.GrantPointsRequest(
        request_id="t:grant", brand_id=brand_id, account_id=alice_id, amount=40,
        reason_code="TEST", source=benefits_pb.POINTS_SOURCE_OPERATOR))
    async with suite.http.get(f"/storefront/v1/brands/{brand_id}/points/entries",
                              headers=bearer(alice)) as response:
        assert response.status == 200
        assert [int(e["amount"]) for e in (await response.json())["entries"]] == [40]
    async with suite.http.get(f"/storefront/v1/brands/{brand_id}/points/entries",
                              headers=bearer(bob)) as response:
        assert response.status == 404
        assert (await response.json())["error"]["reason"] == "MEMBER_NOT_FOUND"
    async with suite.http.get(f"/storefront/v1/brands/{brand_id}/mall/items",
                              headers=bearer(alice)) as response:
        assert response.status == 200
    async with suite.http.get(f"/storefront/v1/brands/{brand_id}/points/expiring",
                              headers=bearer(alice)) as response:
        assert response.status == 200


async def test_claimable_coupons_page_through_every_template(suite: Suite) -> None:
    """Claimable coupons come a page at a time with a next_page_token until every template
    was listed once; each template's delivery page says it may be claimed."""
    brand_id, shop_id = await suite.brand_and_shop()
    templates = {await coupon_template(suite, brand_id, stock=100 + n) for n in range(3)}
    _, shopper = await suite.shopper("pager")
    await (await suite.http.post(f"/storefront/v1/shops/{shop_id}/follow",
                                 headers=bearer(shopper))).read()
    listed: list[str] = []
    token = ""
    for _ in range(len(templates) + 1):
        async with suite.http.get(f"/storefront/v1/brands/{brand_id}/coupons/claimable",
                                  params={"page_size": "1", "page_token": token},
                                  headers=bearer(shopper)) as response:
            assert response.status == 200, await response.text()
            page = await response.json()
        listed += [t["template_id"] for t in page.get("templates", [])]
        token = page.get("next_page_token", "")
        if not token:
            break
    assert sorted(listed) == sorted(templates)
    for template_id in templates:
        async with suite.http.get(f"/storefront/v1/brands/{brand_id}/coupons/{template_id}",
                                  headers=bearer(shopper)) as response:
            assert (await response.json())["claimable"] is True
    async with suite.http.get(f"/storefront/v1/brands/{brand_id}/points/expiring",
                              params={"page_size": "1"}, headers=bearer(shopper)) as response:
        assert response.status == 200
        assert set(await response.json()) == {"expiring", "next_page_token"}

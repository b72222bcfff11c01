"""Storefront HTTP API: follow, member card, unfollow, and authentication."""

from __future__ import annotations

from tests.services.gateway.conftest import Storefront


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_follow_then_card_shows_lv0(storefront: Storefront) -> None:
    """A shopper who follows a shop reads an LV0 card of its brand."""
    brand_id, shop_id = await storefront.brand_and_shop()
    _, token = await storefront.shopper_token("pin-1")
    async with storefront.http.post(f"/storefront/v1/shops/{shop_id}/follow",
                                    headers=bearer(token)) as response:
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["became_member"] is True
    async with storefront.http.get(f"/storefront/v1/brands/{brand_id}/card",
                                   headers=bearer(token)) as response:
        assert response.status == 200
        card = (await response.json())["card"]
    assert card["status"] == "LV0"
    assert card["level"] == 0
    assert card["brand"] == {"id": brand_id, "name": "Acme"}
    assert card["followed_shop_ids"] == [shop_id]


async def test_unfollow_ends_lv0_and_card_is_gone(storefront: Storefront) -> None:
    """Unfollowing the only followed shop ends LV0; the card then answers 404."""
    brand_id, shop_id = await storefront.brand_and_shop()
    _, token = await storefront.shopper_token("pin-2")
    await (await storefront.http.post(f"/storefront/v1/shops/{shop_id}/follow",
                                      headers=bearer(token))).read()
    async with storefront.http.delete(f"/storefront/v1/shops/{shop_id}/follow",
                                      headers=bearer(token)) as response:
        assert response.status == 200
        assert (await response.json())["card"]["status"] == "ENDED"
    async with storefront.http.get(f"/storefront/v1/brands/{brand_id}/card",
                                   headers=bearer(token)) as response:
        assert response.status == 404
        error = (await response.json())["error"]
        assert error["reason"] == "MEMBER_NOT_FOUND"


async def test_card_requires_a_token(storefront: Storefront) -> None:
    """Without a bearer token the storefront answers 401 with a JSON error."""
    async with storefront.http.get("/storefront/v1/brands/brd_x/card") as response:
        assert response.status == 401
        assert (await response.json())["error"]["reason"] == "TOKEN_MISSING"


async def test_forged_token_is_refused(storefront: Storefront) -> None:
    """A token whose signature does not verify is refused with 401."""
    _, token = await storefront.shopper_token("pin-3")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    async with storefront.http.get("/storefront/v1/brands/brd_x/card",
                                   headers=bearer(forged)) as response:
        assert response.status == 401
        assert (await response.json())["error"]["reason"] == "TOKEN_SIGNATURE_INVALID"


async def test_shopper_reads_only_own_card(storefront: Storefront) -> None:
    """The card endpoint answers for the token's account only: another shopper's follow
    does not make this shopper a member."""
    brand_id, shop_id = await storefront.brand_and_shop()
    _, alice = await storefront.shopper_token("alice")
    _, bob = await storefront.shopper_token("bob")
    await (await storefront.http.post(f"/storefront/v1/shops/{shop_id}/follow",
                                      headers=bearer(alice))).read()
    async with storefront.http.get(f"/storefront/v1/brands/{brand_id}/card",
                                   headers=bearer(bob)) as response:
        assert response.status == 404


async def test_unknown_route_is_json_404(storefront: Storefront) -> None:
    """An unknown path answers 404 in the same JSON error shape."""
    async with storefront.http.get("/storefront/v1/nope") as response:
        assert response.status == 404
        assert "error" in await response.json()

"""JSON bodies that would crash a parser are bad input (400), never a server error."""

from __future__ import annotations

from tests.services.gateway.conftest import Storefront


async def test_deeply_nested_body_is_a_400(storefront: Storefront) -> None:
    """A body nested far beyond the decoder's recursion limit is refused as invalid JSON."""
    brand_id, _ = await storefront.brand_and_shop("Nested")
    _, token = await storefront.shopper_token("pin-nested")
    body = b"[" * 100_000 + b"]" * 100_000
    async with storefront.http.post(f"/storefront/v1/brands/{brand_id}/card/open", data=body,
                                    headers={"Authorization": f"Bearer {token}",
                                             "Content-Type": "application/json"}) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["details"]["field"] == "body"
    assert error["reason"] == "INVALID_JSON"
    assert "not valid JSON" in error["message"]

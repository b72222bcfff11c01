"""Merchant console over the services: program, members, coupons, gift packs, mall items,
earning rules and activities, each scoped to the merchant token's brand."""

from __future__ import annotations

from typing import Any

from tests.services.gateway.conftest import Suite
from tests.services.gateway.helpers import sign_in_spec
from tests.services.gateway.openplatform_helpers import COUPON_TEMPLATE


async def console(suite: Suite, brand_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {await suite.merchant_token(brand_id)}"}


async def test_program_and_members_are_the_brands_own(suite: Suite) -> None:
    """The console reads its program and members; another brand's member is not found, and
    no plaintext phone is ever in a member's detail."""
    brand_id, shop_id = await suite.brand_and_shop()
    _, other_shop = await suite.brand_and_shop("Other")
    mine = await suite.member(shop_id, "pin-mine")
    theirs = await suite.member(other_shop, "pin-theirs")
    headers = await console(suite, brand_id)
    async with suite.http.get("/console/v1/program", headers=headers) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["program"]["terms_version"] == "2024-06"
    async with suite.http.get("/console/v1/members", headers=headers) as response:
        members = (await response.json())["members"]
    assert [m["account_id"] for m in members] == [mine]
    async with suite.http.get(f"/console/v1/members/{mine}", headers=headers) as response:
        assert response.status == 200
        detail: dict[str, Any] = (await response.json())["member"]
    assert "phone" not in detail
    async with suite.http.get(f"/console/v1/members/{theirs}", headers=headers) as response:
        assert response.status == 404
    async with suite.http.get("/console/v1/members/count", headers=headers) as response:
        assert response.status == 200, await response.text()


async def test_console_coupons_and_gift_packs(suite: Suite) -> None:
    """A coupon created in the console is listed and closed; a body naming another brand is
    refused; gift packs and mall items list."""
    brand_id, _ = await suite.brand_and_shop()
    headers = await console(suite, brand_id)
    async with suite.http.post("/console/v1/coupons", json={"template": COUPON_TEMPLATE},
                               headers=headers) as response:
        assert response.status == 200, await response.text()
        template_id = (await response.json())["template"]["template_id"]
    async with suite.http.post("/console/v1/coupons", headers=headers, json={
            "template": {**COUPON_TEMPLATE, "brand_id": "brd_other"}}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["reason"] == "FIELD_NOT_ALLOWED"
    async with suite.http.get("/console/v1/coupons", headers=headers) as response:
        assert [t["template_id"] for t in (await response.json())["templates"]] == [template_id]
    async with suite.http.post(f"/console/v1/coupons/{template_id}/close",
                               headers=headers) as response:
        assert response.status == 200, await response.text()
    other = await console(suite, (await suite.brand_and_shop("Other"))[0])
    async with suite.http.get("/console/v1/coupons", headers=other) as response:
        assert (await response.json()).get("templates", []) == []
    async with suite.http.post("/console/v1/gift-packs", headers=headers, json={
            "gift_pack": {"title": "Welcome", "points": 50, "enabled": True}}) as response:
        assert response.status == 200, await response.text()
    for path in ("/console/v1/gift-packs", "/console/v1/mall/items",
                 "/console/v1/earning-rules"):
        async with suite.http.get(path, headers=headers) as response:
            assert response.status == 200, (path, await response.text())


async def test_console_activities(full_suite: Suite) -> None:
    """The brand creates, lists and closes its own activity in the console."""
    brand_id, _ = await full_suite.brand_and_shop()
    headers = await console(full_suite, brand_id)
    async with full_suite.http.post("/console/v1/activities", headers=headers, json={
            "spec": sign_in_spec(), "publish": True}) as response:
        assert response.status == 200, await response.text()
        activity = (await response.json())["activity"]
    assert activity["owner"]["kind"] == "OWNER_KIND_BRAND"
    async with full_suite.http.get("/console/v1/activities", headers=headers) as response:
        listed = (await response.json())["activities"]
    assert [a["activity_id"] for a in listed] == [activity["activity_id"]]
    async with full_suite.http.post(f"/console/v1/activities/{activity['activity_id']}/close",
                                    headers=headers) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["activity"]["state"] == "ACTIVITY_STATE_CLOSED"


async def test_encrypted_phone_import(suite: Suite) -> None:
    """A brand reads its phone-encryption key, uploads a CSV chunk of encrypted phones,
    completes the import, and reads its counts; another brand cannot read the import."""
    brand_id, _ = await suite.brand_and_shop()
    headers = await console(suite, brand_id)
    async with suite.http.get("/console/v1/phone-match/key", headers=headers) as response:
        assert response.status == 200, await response.text()
    async with suite.http.post("/console/v1/phone-imports", json={"expected_rows": 2},
                               headers=headers) as response:
        assert response.status == 200, await response.text()
        import_id = (await response.json())["phone_import"]["import_id"]
    csv = "phone_hash,crm_member_id\n" + "a" * 64 + ",crm-1\n" + "b" * 64 + ",crm-2\n"
    async with suite.http.put(f"/console/v1/phone-imports/{import_id}/chunks/0",
                              data=csv.encode(), headers={**headers,
                                                          "Content-Type": "text/csv"}
                              ) as response:
        assert response.status == 200, await response.text()
    async with suite.http.post(f"/console/v1/phone-imports/{import_id}/complete",
                               headers=headers) as response:
        assert response.status == 200, await response.text()
    async with suite.http.get(f"/console/v1/phone-imports/{import_id}",
                              headers=headers) as response:
        assert response.status == 200
    other = await console(suite, (await suite.brand_and_shop("Other"))[0])
    async with suite.http.get(f"/console/v1/phone-imports/{import_id}",
                              headers=other) as response:
        assert response.status == 404

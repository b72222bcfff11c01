"""Every open-platform method that acts on a member's points or coupons follows the benefits
eligibility rule: for a shopper who never joined the brand and for a card member who
cancelled, reads and writes alike are the business failure MEMBER_NOT_FOUND and change
nothing; a member is served."""

from __future__ import annotations

from typing import Any

from services.gateway.api.openplatform_methods import METHODS
from tests.services.gateway.conftest import Suite
from tests.services.gateway.helpers import bearer, coupon_template
from tests.services.gateway.openplatform_helpers import call, signed

# Business parameters per member-scoped method (account_id is added per shopper).
MEMBER_METHODS: dict[str, dict[str, Any]] = {
    "brandclub.points.balance.get": {},
    "brandclub.points.entry.list": {"page_size": 10},
    "brandclub.points.grant": {"points": 10, "businessId": "g"},
    "brandclub.points.deduct": {"points": 1, "businessId": "d"},
    "brandclub.coupon.issue": {"businessId": "c"},
}
# Methods that take a member but are not about their benefits.
NOT_BENEFITS = {"brandclub.member.get"}


def test_every_method_naming_a_member_is_swept() -> None:
    """Every catalogue method with an account_id parameter is in the sweep (or is the member
    read itself), so a new points or coupon method cannot skip it unnoticed."""
    naming_a_member = {name for name, (spec, _) in METHODS.items()
                       if any(p.name == "account_id" for p in spec.params)}
    assert naming_a_member == set(MEMBER_METHODS) | NOT_BENEFITS


def _envelope(body: dict[str, Any], method: str) -> dict[str, Any]:
    value: dict[str, Any] = body[method.replace(".", "_") + "_responce"][
        method.rsplit(".", 1)[-1] + "_result"]
    return value


async def test_non_members_and_cancelled_members_get_member_not_found(suite: Suite) -> None:
    """Each member-scoped method refuses a shopper who never joined and a member who cancelled
    the card (MEMBER_NOT_FOUND, nothing granted, spent or issued) and serves a member."""
    brand_id, shop_id = await suite.brand_and_shop()
    app_key, secret = await suite.app()
    token = str((await suite.authorise(app_key, secret, brand_id, shop_id))["access_token"])
    template_id = await coupon_template(suite, brand_id)
    member = await suite.member(shop_id, "pin-elig-member")
    outsider, _ = await suite.shopper("pin-elig-outsider")
    cancelled, shopper_token = await suite.shopper("pin-elig-cancelled")
    async with suite.http.post(f"/storefront/v1/brands/{brand_id}/card/open", json={
            "terms_version": "2024-06", "purposes": ["profile"], "phone": "13812345679"},
            headers=bearer(shopper_token)) as response:
        assert response.status == 200, await response.text()
    grant = signed(app_key, secret, "brandclub.points.grant",
                   {"account_id": cancelled, "points": 30, "businessId": "before"}, token)
    assert _envelope(await call(suite.http, grant), "brandclub.points.grant")["success"]
    async with suite.http.post(f"/storefront/v1/brands/{brand_id}/card/cancel",
                               json={"reason": "moving"},
                               headers=bearer(shopper_token)) as response:
        assert response.status == 200, await response.text()

    for method, business in MEMBER_METHODS.items():
        extra = {"coupon_template_id": template_id} if method.startswith("brandclub.coupon") \
            else {}
        for account in (outsider, cancelled):
            body = await call(suite.http, signed(app_key, secret, method, {
                "account_id": account, **business, **extra}, token))
            result = _envelope(body, method)
            assert (result["success"], result["code"]) == (False, "MEMBER_NOT_FOUND"), \
                (method, account)
        served = _envelope(await call(suite.http, signed(app_key, secret, method, {
            "account_id": member, **business, **extra}, token)), method)
        assert served["success"] is True or served["code"] == "INSUFFICIENT_POINTS", method

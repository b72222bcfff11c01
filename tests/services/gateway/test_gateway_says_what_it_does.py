"""Features that answer yes must do it: the program's tier multiplier is what earning applies
(whichever way the program was saved), and a redemption that failed is answered as a failure."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from libs.protoconv import timestamp
from tests.services.gateway.conftest import Suite
from tests.services.gateway.test_gateway_routes_coverage import (
    create_coupon_mall_item,
    get_json,
    send_json,
)
from tests.services.gateway.test_storefront_benefits_card import coupon_template

PROGRAM: dict[str, Any] = {
    "terms_version": "2025-01", "consent_purposes": ["profile"],
    "tiers": [{"level": 1, "name": "Silver", "growth_threshold_cents": 0,
               "points_multiplier_percent": 250},
              {"level": 2, "name": "Gold", "growth_threshold_cents": 10_000_000,
               "points_multiplier_percent": 400}],
    "growth_window_days": 365, "retention_days": 30, "dormant_after_days": 90}


async def eventually(probe: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    """Poll until the probe holds (events reach benefits through the outbox and the bus)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await probe():
        assert asyncio.get_running_loop().time() < deadline, "never happened"
        await asyncio.sleep(0.2)


async def save_program(suite: Suite, via: str, brand_id: str) -> None:
    if via == "console":
        merchant = await suite.merchant_token(brand_id)
        status, body = await send_json(suite, "PUT", "/console/v1/program", merchant, PROGRAM)
        assert status == 200, body
        return
    await suite.membership.UpdateProgram(membership_pb.UpdateProgramRequest(
        request_id=f"t:program:{brand_id}:grpc", brand_id=brand_id,
        terms_version=PROGRAM["terms_version"], consent_purposes=PROGRAM["consent_purposes"],
        tiers=[membership_pb.Tier(**tier) for tier in PROGRAM["tiers"]],
        growth_window_days=365, retention_days=30, dormant_after_days=90))


@pytest.mark.parametrize("via", ["console", "grpc"])
async def test_program_tier_multiplier_is_what_earning_applies(suite: Suite, via: str) -> None:
    """The multiplier saved on the program (console PUT /program or membership UpdateProgram)
    is the one a paid order earns with: LV1 at 250% earns 2.5 x the base points."""
    brand_id, shop_id = await suite.brand_and_shop(f"Multiplier-{via}")
    await save_program(suite, via, brand_id)
    await suite.benefits_admin.CreateEarningRule(benefits_pb.CreateEarningRuleRequest(
        request_id=f"t:rule:{brand_id}", rule=benefits_pb.EarningRule(
            brand_id=brand_id, trigger=benefits_pb.EARNING_TRIGGER_ORDER_PAID,
            title="Shopping", points_per_currency_unit=1, enabled=True)))

    async def projected() -> bool:
        listed = await suite.benefits_admin.ListTierMultipliers(
            benefits_pb.ListTierMultipliersRequest(brand_id=brand_id))
        return {m.level: m.multiplier_percent for m in listed.multipliers} == {1: 250, 2: 400}

    await eventually(projected)
    account_id, token = await suite.shopper(f"pin-multiplier-{via}")
    status, body = await send_json(
        suite, "POST", f"/storefront/v1/brands/{brand_id}/card/open", token,
        {"terms_version": "2025-01", "purposes": ["profile"], "phone": "13812345670"})
    assert status == 200, body
    await suite.membership.RecordOrderPaid(membership_pb.RecordOrderPaidRequest(
        event_id=f"t:paid:{brand_id}", shop_id=shop_id, account_id=account_id,
        order_id=f"o-{via}", paid_cents=10_000, paid_time=timestamp(datetime.now(UTC))))

    async def earned() -> bool:
        balance = await suite.benefits.GetPointsBalance(benefits_pb.GetPointsBalanceRequest(
            brand_id=brand_id, account_id=account_id))
        return balance.available_points + balance.pending_points > 0

    await eventually(earned)
    balance = await suite.benefits.GetPointsBalance(benefits_pb.GetPointsBalanceRequest(
        brand_id=brand_id, account_id=account_id))
    assert balance.available_points + balance.pending_points == 250


async def test_failed_redemption_answers_409_with_the_reason_not_200(suite: Suite) -> None:
    """A redemption that spends, then cannot issue the coupon (the coupon's own per-member limit)
    and refunds, answers 409 naming the reason and the redemption, not 200 with a FAILED body;
    the balance is whole again and the failed redemption is listed."""
    brand_id, shop_id = await suite.brand_and_shop("FailedMall")
    merchant = await suite.merchant_token(brand_id)
    template_id = await coupon_template(suite, brand_id)  # one coupon per member
    item = await create_coupon_mall_item(suite, merchant, template_id)  # two per member
    account_id = await suite.member(shop_id, "pin-failed-mall")
    _, token = await suite.shopper("pin-failed-mall")
    await suite.benefits.GrantPoints(benefits_pb.GrantPointsRequest(
        request_id="t:grant:failed-mall", brand_id=brand_id, account_id=account_id,
        amount=100, reason_code="TEST", source=benefits_pb.POINTS_SOURCE_OPERATOR))
    base = f"/storefront/v1/brands/{brand_id}"
    url = f"{base}/mall/items/{item['item_id']}/redeem"
    status, first = await send_json(suite, "POST", url, token, {"quantity": 1})
    assert status == 200 and first["redemption"]["state"] == "REDEMPTION_STATE_COMPLETED"
    status, refused = await send_json(suite, "POST", url, token, {"quantity": 1})
    assert status == 409, refused
    assert refused["error"]["reason"] == "COUPON_LIMIT_REACHED"
    assert refused["error"]["details"]["refund_entry_id"]
    failed_id = refused["error"]["details"]["redemption_id"]
    _, points = await get_json(suite, f"{base}/points", token)
    assert points["points"]["available"] == 70
    _, mine = await get_json(suite, f"{base}/mall/redemptions", token)
    states = {r["redemption_id"]: r["state"] for r in mine["redemptions"]}
    assert states[failed_id] == "REDEMPTION_STATE_FAILED"

"""Features that answer yes must do it: the program's tier multiplier is what earning applies
(whichever way the program was saved), and a redemption that failed is answered as a failure."""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor

import brandclub
from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from libs.db import Database
from libs.protoconv import timestamp
from services.benefits.usecases import mall
from services.gateway.main import route_table
from tests.services.gateway.conftest import Suite
from tests.services.gateway.helpers import (
    bearer,
    coupon_template,
    create_coupon_mall_item,
    get_json,
    send_json,
)
from tests.services.gateway.openplatform_helpers import balance, call, result, signed

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


async def test_failed_redemption_answers_409_with_the_reason_not_200(suite: Suite,
                                                                     db_url: str) -> None:
    """A redemption that spent its points and then could not take the item (the stock went to
    someone else in between) and refunded answers 409 naming the reason, the redemption and the
    refund, not 200 with a FAILED body; the balance is whole again and the failed redemption is
    listed."""
    brand_id, shop_id = await suite.brand_and_shop("FailedMall")
    merchant = await suite.merchant_token(brand_id)
    template_id = await coupon_template(suite, brand_id)
    item = await create_coupon_mall_item(suite, merchant, template_id)
    account_id = await suite.member(shop_id, "pin-failed-mall")
    _, token = await suite.shopper("pin-failed-mall")
    await suite.benefits.GrantPoints(benefits_pb.GrantPointsRequest(
        request_id="t:grant:failed-mall", brand_id=brand_id, account_id=account_id,
        amount=100, reason_code="TEST", source=benefits_pb.POINTS_SOURCE_OPERATOR))
    key = "redeem-1"
    benefits_db = await Database.connect(db_url, "benefits", min_size=1, max_size=2)
    try:  # the request's first attempt got as far as the spend, then the stock ran out
        started = await mall.record(benefits_db, request_id=f"{account_id}:{key}",
                                    brand_id=brand_id, account_id=account_id,
                                    item_id=item["item_id"], quantity=1, shipping_address="",
                                    level=0)
        await mall.spend_step(benefits_db, brand_id, started.redemption_id)
        await benefits_db.execute("UPDATE mall_items SET stock_redeemed = stock_total "
                                  "WHERE brand_id = $1", brand_id)
    finally:
        await benefits_db.close(0)
    base = f"/storefront/v1/brands/{brand_id}"
    async with suite.http.post(f"{base}/mall/items/{item['item_id']}/redeem",
                               json={"quantity": 1},
                               headers={**bearer(token), "Idempotency-Key": key}) as response:
        status, refused = response.status, await response.json()
    assert status == 409, refused
    assert refused["error"]["reason"] == "OUT_OF_STOCK"
    assert refused["error"]["details"]["redemption_id"] == started.redemption_id
    assert refused["error"]["details"]["refund_entry_id"]
    _, points = await get_json(suite, f"{base}/points", token)
    assert points["points"]["available"] == 100
    _, mine = await get_json(suite, f"{base}/mall/redemptions", token)
    assert [(r["redemption_id"], r["state"]) for r in mine["redemptions"]] == [
        (started.redemption_id, "REDEMPTION_STATE_FAILED")]


# Every *_url / *_uri field of the contract: either a link we emit (followed by the test below)
# or an address someone else supplied and owns (never generated by us), with whose.
EMITTED_LINKS = {"brandclub.benefits.v1.CouponTemplate.delivery_url"}
SUPPLIED_ADDRESSES = {
    "brandclub.membership.v1.Program.terms_url": "the merchant's own terms page",
    "brandclub.membership.v1.UpdateProgramRequest.terms_url": "the merchant's own terms page",
    "brandclub.messaging.v1.Template.link_url": "the merchant's landing page in a message",
    "brandclub.identity.v1.App.redirect_uri": "the ISV's registered OAuth redirect",
    "brandclub.identity.v1.CreateAppRequest.redirect_uri": "the ISV's OAuth redirect",
    "brandclub.identity.v1.AuthorizeAppRequest.redirect_uri": "the ISV's OAuth redirect",
    "brandclub.identity.v1.AuthorizeAppResponse.redirect_uri": "the ISV's OAuth redirect, "
                                                              "with the code added",
}


def url_fields() -> set[str]:
    found: set[str] = set()

    def walk(message: Descriptor) -> None:
        for field in message.fields:
            if field.name.endswith(("_url", "_uri")):
                found.add(field.full_name)
        for nested in message.nested_types:
            walk(nested)

    for module in pkgutil.walk_packages(brandclub.__path__, "brandclub."):
        if module.name.endswith("_pb2"):
            for message in importlib.import_module(module.name).DESCRIPTOR.message_types_by_name\
                    .values():
                walk(message)
    return found


def test_every_url_field_is_an_emitted_link_or_a_supplied_address() -> None:
    """A new *_url field must be classified here: a link we emit is followed by the test below,
    so no answer can carry a dead link of ours."""
    assert url_fields() == EMITTED_LINKS | set(SUPPLIED_ADDRESSES)


def own_links(body: Any) -> list[str]:
    """Every "*_url" value in a JSON answer that is a link into this API."""
    if isinstance(body, dict):
        return [link for key, value in body.items()
                for link in ([value] if key.endswith("_url") and isinstance(value, str)
                             and value.startswith("/") else own_links(value))]
    if isinstance(body, list):
        return [link for item in body for link in own_links(item)]
    return []


async def test_every_link_the_api_emits_resolves_to_what_it_promises(suite: Suite) -> None:
    """Each link in the console's and the storefront's coupon answers is a real route: the
    delivery_url shows the coupon and whether the shopper may claim it (and claiming through it
    works); under another brand's path it is not found."""
    brand_id, shop_id = await suite.brand_and_shop("Links")
    other_brand, _ = await suite.brand_and_shop("OtherLinks")
    merchant = await suite.merchant_token(brand_id)
    start = datetime.now(UTC).isoformat()
    status, created = await send_json(suite, "POST", "/console/v1/coupons", merchant, {
        "template": {"title": "5 off", "kind": "COUPON_KIND_AMOUNT_OFF",
                     "amount_off_cents": 500, "threshold_cents": 5000, "valid_days": 7,
                     "total_stock": 10, "per_member_limit": 1, "claim_start_time": start,
                     "placements": ["COUPON_PLACEMENT_MEMBER_PAGE"]}})
    assert status == 200, created
    template_id = created["template"]["template_id"]
    account_id = await suite.member(shop_id, "pin-links")
    _, token = await suite.shopper("pin-links")
    answers = [created]
    for url, who in (("/console/v1/coupons", merchant),
                     (f"/storefront/v1/brands/{brand_id}/coupons/claimable", token)):
        status, body = await get_json(suite, url, who)
        assert status == 200, body
        answers.append(body)
    links = {link for answer in answers for link in own_links(answer)}
    assert links == {f"/storefront/v1/brands/{brand_id}/coupons/{template_id}"}
    for link in links:
        status, shown = await get_json(suite, link, token)
        assert status == 200, (link, shown)
        assert (shown["template"]["template_id"], shown["claimable"]) == (template_id, True)
        status, claimed = await send_json(suite, "POST", f"{link}/claim", token)
        assert status == 200, claimed
        status, shown = await get_json(suite, link, token)
        assert (status, shown["claimable"]) == (200, False)
    assert account_id
    status, _ = await get_json(
        suite, f"/storefront/v1/brands/{other_brand}/coupons/{template_id}", token)
    assert status == 404


# Every route whose answer can carry a *_FAILED state, and why that is not a failure answered
# 200: either the failure is answered as an error (tested above for the mall), or the route reads
# records whose state is history, or the call's own action happened and the state is that of a
# follow-up the answer reports truthfully.
FAILED_STATES_ANSWERED_AS: dict[tuple[str, str], str] = {
    ("POST", "/storefront/v1/brands/{brand_id}/mall/items/{item_id}/redeem"):
        "error: a failed redemption answers 409 with its reason (never 200 with FAILED)",
    ("GET", "/storefront/v1/brands/{brand_id}/mall/redemptions"): "read: past redemptions",
    ("GET", "/console/v1/messages/{message_id}"): "read: a message's delivery history",
    ("GET", "/console/v1/campaigns/{campaign_id}/recipients"): "read: delivery per recipient",
    ("POST", "/storefront/v1/brands/{brand_id}/activities/{activity_id}/sign-in"):
        "outcome: the sign-in is recorded; the reward's own state is reported",
    ("POST", "/storefront/v1/brands/{brand_id}/activities/{activity_id}/draw"):
        "outcome: the draw happened; an undeliverable prize is reported with its reason and "
        "the cost given back",
    ("POST", "/storefront/v1/brands/{brand_id}/activities/{activity_id}/vote"):
        "outcome: the vote is counted; the gift's own state is reported",
    ("POST", "/storefront/v1/brands/{brand_id}/activities/{activity_id}/quiz"):
        "outcome: the answers are graded; the reward's own state is reported",
    ("GET", "/storefront/v1/brands/{brand_id}/rewards"):
        "read: the shopper's rewards, each with its state and, when undelivered, the reason",
    ("GET", "/console/v1/rewards/failed"):
        "read: the brand's undelivered rewards (the dead letters), each with its reason",
}


def failed_state_fields(message: Descriptor, seen: frozenset[str] = frozenset()) -> list[str]:
    """Enum fields (at any depth) with a value named *_FAILED."""
    found: list[str] = []
    for field in message.fields:
        enum, nested = field.enum_type, field.message_type
        if enum is not None and any(value.name.endswith("_FAILED") for value in enum.values):
            found.append(field.full_name)
        if nested is not None and nested.full_name not in seen:
            found += failed_state_fields(nested, seen | {message.full_name})
    return found


def test_every_route_that_can_answer_a_failed_state_is_accounted_for() -> None:
    """A route whose answer contract can say *_FAILED must be listed with how a failure is
    answered, so a new one cannot return 200 for a failed operation unnoticed."""
    messages: dict[str, Descriptor] = {}
    for module in pkgutil.walk_packages(brandclub.__path__, "brandclub."):
        if module.name.endswith("_pb2"):
            for message in importlib.import_module(module.name).DESCRIPTOR\
                    .message_types_by_name.values():
                messages[message.full_name.removeprefix("brandclub.")] = message
    found: set[tuple[str, str]] = set()
    for route in route_table().routes:
        for name in re.findall(r"the contract's ([a-z]+\.v\d+\.\w+)", json.dumps(route.response)):
            assert name in messages, f"{route.path} names an unknown contract {name}"
            if failed_state_fields(messages[name]):
                found.add((route.method, route.path))
    assert found == set(FAILED_STATES_ANSWERED_AS)


async def test_open_platform_grant_answers_the_balance_after_a_shortfall_payoff(
        suite: Suite) -> None:
    """brandclub.points.grant of 120 with 95 owed answers available_points 25, what
    brandclub.points.balance.get then reads (not the 120 between the two entries); the deduct
    answer agrees with the balance too."""
    brand_id, shop_id = await suite.brand_and_shop()
    app_key, secret = await suite.app()
    grant = await suite.authorise(app_key, secret, brand_id, shop_id)
    token = str(grant["access_token"])
    account_id = await suite.member(shop_id, "pin-shortfall")
    granted = await suite.benefits.GrantPoints(benefits_pb.GrantPointsRequest(
        request_id="t:sf:grant", brand_id=brand_id, account_id=account_id, amount=100,
        reason_code="TEST", source=benefits_pb.POINTS_SOURCE_OPERATOR))
    await suite.benefits.SpendPoints(benefits_pb.SpendPointsRequest(
        request_id="t:sf:spend", brand_id=brand_id, account_id=account_id, amount=95,
        reason_code="TEST", source=benefits_pb.POINTS_SOURCE_OPERATOR))
    await suite.benefits.ReversePointsEntry(benefits_pb.ReversePointsEntryRequest(
        request_id="t:sf:reverse", brand_id=brand_id, entry_id=granted.entry.entry_id,
        reason_code="TEST"))
    answer = await call(suite.http, signed(app_key, secret, "brandclub.points.grant", {
        "account_id": account_id, "points": 120, "businessId": "sf-1"}, token))
    assert result(answer, "brandclub.points.grant")["data"]["available_points"] == 25
    assert await balance(suite, app_key, secret, token, account_id) == 25
    answer = await call(suite.http, signed(app_key, secret, "brandclub.points.deduct", {
        "account_id": account_id, "points": 5, "businessId": "sf-2"}, token))
    assert result(answer, "brandclub.points.deduct")["data"]["available_points"] == 20
    assert await balance(suite, app_key, secret, token, account_id) == 20

"""Marketplace facts through the gateway's signed endpoint: applied once each, answered one by
one, refused without a valid signature and a fresh timestamp."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from brandclub.identity.v1 import identity_service_pb2 as identity_pb
from services.gateway.api.marketplace import PATH, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from services.gateway.settings import load_gateway_settings
from tests.services.gateway.conftest import Suite
from tests.services.gateway.helpers import eventually, get_json

# The gateway under test runs in development mode, with the published development secret.
SECRET = load_gateway_settings({"BRANDCLUB_ENV": "development"}).marketplace_webhook_secret


async def deliver(suite: Suite, events: list[Any], *, secret: bytes = SECRET,
                  timestamp: int | None = None, raw: bytes | None = None
                  ) -> tuple[int, dict[str, Any]]:
    body = raw if raw is not None else json.dumps({"events": events}).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    async with suite.http.post(PATH, data=body, headers={
            "Content-Type": "application/json", TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(secret, stamp, body)}) as response:
        answer: dict[str, Any] = await response.json()
        return response.status, answer


def paid(event_id: str, pin: str, shop_id: str, order_id: str, cents: int) -> dict[str, Any]:
    return {"event_id": event_id, "type": "order_paid", "marketplace_account_id": pin,
            "shop_id": shop_id, "order_id": order_id, "paid_cents": cents,
            "paid_time": datetime.now(UTC).isoformat(),
            "return_window_end_time": (datetime.now(UTC) + timedelta(days=7)).isoformat()}


async def member_stats(suite: Suite, merchant: str, account_id: str) -> dict[str, Any]:
    status, body = await get_json(suite, f"/console/v1/members/{account_id}", merchant)
    assert status == 200, body
    stats: dict[str, Any] = body["member"].get("stats", {})
    return stats


async def test_paid_order_raises_stats_and_earns_pending_points(suite: Suite) -> None:
    """A follow then a paid order from the marketplace make the shopper a member with the
    order in their stats, and the benefits consumer turns it into pending points."""
    brand_id, shop_id = await suite.brand_and_shop()
    await suite.benefits_admin.CreateEarningRule(benefits_pb.CreateEarningRuleRequest(
        request_id="t:rule:order", rule=benefits_pb.EarningRule(
            brand_id=brand_id, trigger=benefits_pb.EARNING_TRIGGER_ORDER_PAID,
            title="1 per unit", points_per_currency_unit=1, enabled=True)))
    account_id, token = await suite.shopper("pin-buyer")
    status, answer = await deliver(suite, [
        {"event_id": "ev-follow-1", "type": "shop_followed", "marketplace_account_id": "pin-buyer",
         "shop_id": shop_id},
        paid("ev-paid-1", "pin-buyer", shop_id, "order-1", 12_300)])
    assert status == 200, answer
    assert [r["status"] for r in answer["results"]] == ["accepted", "accepted"], answer
    merchant = await suite.merchant_token(brand_id)
    stats = await member_stats(suite, merchant, account_id)
    assert (stats["order_count"], int(stats["paid_cents"])) == (1, 12_300)

    async def pending() -> bool:
        _, points = await get_json(suite, f"/storefront/v1/brands/{brand_id}/points", token)
        return bool(points["points"]["pending"] == 123)

    assert await eventually(pending)
    status, answer = await deliver(suite, [{
        "event_id": "ev-refund-1", "type": "order_refunded", "marketplace_account_id": "pin-buyer",
        "shop_id": shop_id, "order_id": "order-1", "refund_id": "refund-1",
        "refunded_cents": 2_300, "refund_time": datetime.now(UTC).isoformat()}])
    assert [r["status"] for r in answer["results"]] == ["accepted"], answer
    stats = await member_stats(suite, merchant, account_id)
    assert int(stats["paid_cents"]) == 10_000

    async def cut() -> bool:
        _, points = await get_json(suite, f"/storefront/v1/brands/{brand_id}/points", token)
        return bool(points["points"]["pending"] == 100)

    assert await eventually(cut)


async def test_redelivered_fact_counts_once(suite: Suite) -> None:
    """The same paid order delivered twice (in one batch and again later) is counted once and
    answered duplicate; a re-delivered follow is a duplicate too."""
    brand_id, shop_id = await suite.brand_and_shop()
    account_id, _ = await suite.shopper("pin-twice")
    follow = {"event_id": "ev-f", "type": "shop_followed", "marketplace_account_id": "pin-twice",
              "shop_id": shop_id}
    order = paid("ev-p", "pin-twice", shop_id, "order-9", 5_000)
    status, first = await deliver(suite, [follow, order, order])
    assert status == 200, first
    assert [r["status"] for r in first["results"]] == ["accepted", "accepted", "duplicate"]
    status, again = await deliver(suite, [follow, order])
    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"], again
    assert (again["accepted"], again["duplicate"], again["rejected"]) == (0, 2, 0)
    stats = await member_stats(suite, await suite.merchant_token(brand_id), account_id)
    assert (stats["order_count"], int(stats["paid_cents"])) == (1, 5_000)


async def test_bad_signature_or_stale_timestamp_is_401_and_applies_nothing(
        suite: Suite) -> None:
    """A wrong secret, a stale timestamp, a missing signature: 401, and nothing is applied."""
    brand_id, shop_id = await suite.brand_and_shop()
    account_id, _ = await suite.shopper("pin-forged")
    events = [{"event_id": "ev-x", "type": "shop_followed",
               "marketplace_account_id": "pin-forged", "shop_id": shop_id}]
    status, body = await deliver(suite, events, secret=b"not-the-shared-secret-at-all")
    assert status == 401 and body["error"]["reason"] == "SIGNATURE_INVALID"
    status, body = await deliver(suite, events, timestamp=int(time.time()) - 301)
    assert status == 401 and body["error"]["reason"] == "TIMESTAMP_OUT_OF_WINDOW"
    async with suite.http.post(PATH, json={"events": events}) as response:
        assert response.status == 401
        assert (await response.json())["error"]["reason"] == "SIGNATURE_MISSING"
    stamp = str(int(time.time()))
    body_bytes = json.dumps({"events": events}).encode()
    tampered = json.dumps({"events": events + events}).encode()
    async with suite.http.post(PATH, data=tampered, headers={
            TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(SECRET, stamp, body_bytes)}
            ) as response:
        assert response.status == 401
    status, members = await get_json(suite, "/console/v1/members",
                                     await suite.merchant_token(brand_id))
    assert status == 200
    assert account_id not in [m["account_id"] for m in members.get("members", [])]


async def test_malformed_facts_are_rejected_one_by_one(suite: Suite) -> None:
    """Each malformed fact is rejected with a reason and field while the good one in the same
    batch is applied; malformed batches are 400, never a 5xx."""
    brand_id, shop_id = await suite.brand_and_shop()
    account_id, _ = await suite.shopper("pin-mixed")
    status, _ = await deliver(suite, [{"event_id": "ev-join", "type": "shop_followed",
                                       "marketplace_account_id": "pin-mixed",
                                       "shop_id": shop_id}])
    assert status == 200
    good = paid("ev-good", "pin-mixed", shop_id, "order-ok", 1_000)
    bad: list[Any] = [
        "not an object",
        {"type": "order_paid", "marketplace_account_id": "pin-mixed", "shop_id": shop_id},
        {**paid("ev-b1", "pin-mixed", shop_id, "o-b1", 1), "paid_cents": "100"},
        {**paid("ev-b2", "pin-mixed", shop_id, "o-b2", 1), "paid_cents": -5},
        {**paid("ev-b3", "pin-mixed", shop_id, "o-b3", 1), "paid_time": "yesterday"},
        {"event_id": "ev-b4", "type": "teleported", "marketplace_account_id": "pin-mixed"},
        {"event_id": "ev-b5", "type": "account_status_changed",
         "marketplace_account_id": "pin-mixed", "abnormal": "yes"},
        {**paid("ev-b6", "pin-mixed", "shp_missing", "o-b6", 100)},
        {"event_id": "ev-b7", "type": "order_refunded", "marketplace_account_id": "pin-mixed",
         "shop_id": shop_id, "order_id": "never-paid", "refund_id": "r1",
         "refunded_cents": 10},
        {"event_id": ["list"], "type": "order_paid"},
        {**paid("ev-b8", "", shop_id, "o-b8", 100)},
        {**paid("ev-b9", "pin-never-seen", shop_id, "o-b9", 100), "order_id": 7},
    ]
    status, answer = await deliver(suite, [*bad, good])
    assert status == 200, answer
    results = answer["results"]
    assert [r["status"] for r in results] == ["rejected"] * len(bad) + ["accepted"], results
    assert all(r["reason"] for r in results[:-1])
    assert results[1]["field"] == "event_id" and results[2]["field"] == "paid_cents"
    assert results[5]["reason"] == "FACT_TYPE_UNKNOWN" and results[6]["field"] == "abnormal"
    assert not any(r["retryable"] for r in results[:-1])
    stats = await member_stats(suite, await suite.merchant_token(brand_id), account_id)
    assert (stats["order_count"], int(stats["paid_cents"])) == (1, 1_000)
    unseen = await suite.identity.EnsureAccount(identity_pb.EnsureAccountRequest(
        request_id="t:pin-never-seen", marketplace_account_id="pin-never-seen"))
    assert unseen.created, "an invalid fact must not create the shopper's account"
    for raw in (b"{not json", b"[]", b'{"events": 3}', b"\xff\xfe",
                json.dumps({"events": [good] * 501}).encode(),
                json.dumps({"events": [{"event_id": "x" * 2_000_000}]}).encode()):
        status, body = await deliver(suite, [], raw=raw)
        # Over the size limit is 413 naming the limit; anything else malformed is 400.
        assert status == (413 if len(raw) > 1_000_000 else 400), body


async def test_account_status_and_activity_facts_are_applied(suite: Suite) -> None:
    """An abnormal account makes its member dormant; normal again and recently active makes
    them valid; cart and unfollow facts are accepted."""
    brand_id, shop_id = await suite.brand_and_shop()
    account_id, _ = await suite.shopper("pin-status")
    now = datetime.now(UTC).isoformat()
    status, answer = await deliver(suite, [
        {"event_id": "s1", "type": "shop_followed", "marketplace_account_id": "pin-status",
         "shop_id": shop_id},
        {"event_id": "s2", "type": "cart_item_added", "marketplace_account_id": "pin-status",
         "shop_id": shop_id, "sku_id": "sku-1", "add_time": now},
        {"event_id": "s3", "type": "account_status_changed",
         "marketplace_account_id": "pin-status", "abnormal": True, "occur_time": now}])
    assert [r["status"] for r in answer["results"]] == ["accepted"] * 3, answer
    merchant = await suite.merchant_token(brand_id)
    status, member = await get_json(suite, f"/console/v1/members/{account_id}", merchant)
    assert member["member"].get("dormant") is True, member
    status, answer = await deliver(suite, [
        {"event_id": "s4", "type": "account_status_changed",
         "marketplace_account_id": "pin-status", "abnormal": False},
        {"event_id": "s5", "type": "account_activity", "marketplace_account_id": "pin-status",
         "last_active_time": now},
        {"event_id": "s6", "type": "shop_unfollowed", "marketplace_account_id": "pin-status",
         "shop_id": shop_id}])
    assert [r["status"] for r in answer["results"]] == ["accepted"] * 3, answer
    status, member = await get_json(suite, f"/console/v1/members/{account_id}", merchant)
    assert status == 404 or not member["member"].get("dormant", False), member


def test_webhook_secret_comes_from_the_environment() -> None:
    """The secret is the base64 value of MARKETPLACE_WEBHOOK_SECRET (missing, short or
    published values are refused: tests/libs/test_libs_config.py sweeps every secret)."""
    settings = load_gateway_settings(
        {"MARKETPLACE_WEBHOOK_SECRET": "c2VjcmV0LXNlY3JldC1zZWNyZXQtMTIzNA==",
         "REDIS_URL": "redis://cache:6379/0"})
    assert settings.marketplace_webhook_secret == b"secret-secret-secret-1234"

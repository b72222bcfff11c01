"""Storefront and console helpers over real HTTP: bearer headers, JSON calls, polling, and
the benefits fixtures (a coupon template, a coupon mall item, a sign-in activity) they need."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from tests.services.gateway.conftest import Suite


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def coupon_template(suite: Suite, brand_id: str, stock: int = 100) -> str:
    template = benefits_pb.CouponTemplate(
        brand_id=brand_id, title="10 off 100", kind=benefits_pb.COUPON_KIND_AMOUNT_OFF,
        amount_off_cents=1000, threshold_cents=10000, valid_days=30, total_stock=stock,
        per_member_limit=1)
    template.claim_start_time.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    created = await suite.benefits_admin.CreateCouponTemplate(
        benefits_pb.CreateCouponTemplateRequest(request_id=f"t:tpl:{brand_id}:{stock}",
                                                template=template))
    return created.template.template_id


def sign_in_spec(title: str = "Daily sign-in") -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"title": title, "start_time": (now - timedelta(hours=1)).isoformat(),
            "end_time": (now + timedelta(days=30)).isoformat(),
            "sign_in": {"rewards": [{"day": 1, "reward": {"points": 5}}]}}


async def get_json(suite: Suite, url: str, token: str) -> tuple[int, Any]:
    async with suite.http.get(url, headers=bearer(token)) as response:
        return response.status, await response.json()


async def send_json(suite: Suite, method: str, url: str, token: str,
                    body: dict[str, Any] | None = None) -> tuple[int, Any]:
    async with suite.http.request(method, url, json=body if body is not None else {},
                                  headers=bearer(token)) as response:
        return response.status, await response.json()


async def eventually(probe: Callable[[], Awaitable[bool]], seconds: float = 40.0) -> bool:
    """Poll a probe until it holds (background consumers run every few seconds)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        if await probe():
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.3)


async def create_coupon_mall_item(suite: Suite, merchant: str, template_id: str,
                                  price: int = 30) -> dict[str, Any]:
    status, body = await send_json(suite, "POST", "/console/v1/mall/items", merchant, {"item": {
        "kind": "MALL_ITEM_KIND_COUPON", "title": "10 off", "price_points": price,
        "stock_total": 5, "per_member_limit": 2, "coupon_template_id": template_id,
        "state": "MALL_ITEM_STATE_ON_SALE"}})
    assert status == 200, body
    item: dict[str, Any] = body["item"]
    return item

"""Building signed open-platform requests the way ISV clients do, independently of the
gateway's own code, and reading their results."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp

from tests.services.gateway.conftest import Suite

BEIJING = timezone(timedelta(hours=8))


def md5_sign(secret: str, params: dict[str, str]) -> str:
    text = secret + "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign") + secret
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def sdk_timestamp(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S.000%z")


def signed(app_key: str, secret: str, method: str, business: dict[str, Any] | str,
           access_token: str | None = None, *, timestamp: str | None = None,
           **extra: str) -> dict[str, str]:
    params = {"app_key": app_key, "method": method, "v": "2.0",
              "timestamp": timestamp or sdk_timestamp(),
              "360buy_param_json": business if isinstance(business, str)
              else json.dumps(business, ensure_ascii=False), **extra}
    if access_token is not None:
        params["access_token"] = access_token
    params["sign"] = md5_sign(secret, params)
    return params


async def call(http: aiohttp.ClientSession, params: dict[str, str],
               how: str = "post-query") -> dict[str, Any]:
    """Send like the official SDK (POST, query, no body), a GET, or a POST form."""
    if how == "get":
        response = await http.get("/routerjson", params=params)
    elif how == "post-form":
        response = await http.post("/routerjson", data=params)
    else:
        response = await http.post("/routerjson", params=params)
    async with response:
        assert response.status == 200, await response.text()
        assert response.content_type == "application/json"
        body: dict[str, Any] = await response.json()
        return body


def error_code(body: dict[str, Any]) -> str | None:
    error = body.get("error_response")
    return None if error is None else str(error["code"])


async def ready(suite: Suite) -> tuple[str, str, str, str]:
    brand_id, shop_id = await suite.brand_and_shop()
    app_key, secret = await suite.app()
    grant = await suite.authorise(app_key, secret, brand_id, shop_id)
    account_id = await suite.member(shop_id, "pin-points")
    return app_key, secret, str(grant["access_token"]), account_id


def result(body: dict[str, Any], method: str) -> dict[str, Any]:
    envelope = body[method.replace(".", "_") + "_responce"]
    assert envelope["code"] == "0"
    value: dict[str, Any] = envelope[method.rsplit(".", 1)[-1] + "_result"]
    return value


async def balance(suite: Suite, app_key: str, secret: str, token: str, account_id: str) -> int:
    body = await call(suite.http, signed(app_key, secret, "brandclub.points.balance.get",
                                         {"account_id": account_id}, token))
    points: int = result(body, "brandclub.points.balance.get")["data"]["available_points"]
    return points


COUPON_TEMPLATE = {"title": "10 off 100", "kind": "COUPON_KIND_AMOUNT_OFF",
                   "amount_off_cents": 1000, "threshold_cents": 10000, "valid_days": 30,
                   "total_stock": 5, "per_member_limit": 1,
                   "claim_start_time": "2020-01-01T00:00:00Z"}


async def authorised_member(suite: Suite, scopes: tuple[str, ...] = (), **app: Any
                            ) -> tuple[str, str, str, str, str]:
    """A brand with a shop, an app authorised for the shop, and one member."""
    brand_id, shop_id = await suite.brand_and_shop()
    app_key, secret = await suite.app(**app)
    grant = await suite.authorise(app_key, secret, brand_id, shop_id, scopes)
    account_id = await suite.member(shop_id, "pin-member")
    return app_key, secret, str(grant["access_token"]), account_id, brand_id

"""Building signed open-platform requests the way ISV clients do, independently of the
gateway's own code."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp

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

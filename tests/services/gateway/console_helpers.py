"""Calling the console API over HTTP as a merchant of a brand, and a message template to send."""

from __future__ import annotations

from typing import Any

from tests.services.gateway.conftest import Suite

MESSAGE_TEMPLATE: dict[str, Any] = {
    "channel": "CHANNEL_INBOX", "purpose": "PURPOSE_MARKETING", "name": "spring",
    "title": "Spring offer", "body": "Hi LV{{member_level}}, {{offer}} at {{brand_name}}",
    "custom_variables": ["offer"]}


async def console(suite: Suite, brand_id: str, login: str = "operator") -> dict[str, str]:
    return {"Authorization": f"Bearer {await suite.merchant_token(brand_id, login)}"}


async def call(suite: Suite, method: str, path: str, headers: dict[str, str],
               json: Any = None, status: int = 200) -> Any:
    async with suite.http.request(method, path, headers=headers, json=json) as response:
        body = await response.json()
        assert response.status == status, (method, path, response.status, body)
        return body

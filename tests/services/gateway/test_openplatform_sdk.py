"""Acceptance: the marketplace's official Python SDK (jd-sdk) against the gateway."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import jd
from jd.api.base import RestApi

from tests.services.gateway.conftest import Suite


class MemberGetRequest(RestApi):  # type: ignore[misc]
    """How an ISV adds a method to the SDK: subclass RestApi and name the method."""

    def __init__(self, domain: str, port: int) -> None:
        RestApi.__init__(self, domain, port)
        self.account_id: str | None = None

    def getapiname(self) -> str:
        return "brandclub.member.get"


def sdk_call(host: str, port: int, app_key: str, secret: str, token: str,
             account_id: str) -> Any:
    request = MemberGetRequest(host, port)
    request.set_app_info(jd.appinfo(app_key, secret))
    request.account_id = account_id
    return request.getResponse(access_token=token)


async def test_official_sdk_gets_a_parsed_success_and_wrong_secret_gets_code_12(
        suite: Suite) -> None:
    """The unmodified SDK signs, sends and parses our answer; a wrong secret is code 12."""
    brand_id, shop_id = await suite.brand_and_shop()
    app_key, secret = await suite.app()
    grant = await suite.authorise(app_key, secret, brand_id, shop_id)
    account_id = await suite.member(shop_id, "pin-sdk")
    url = urlsplit(suite.gateway.base_url)
    assert url.hostname is not None and url.port is not None
    token = str(grant["access_token"])
    answer = await asyncio.to_thread(sdk_call, url.hostname, url.port, app_key, secret, token,
                                     account_id)
    result = answer["brandclub_member_get_responce"]
    assert result["code"] == "0"
    assert result["get_result"]["data"]["member"]["account_id"] == account_id
    wrong = await asyncio.to_thread(sdk_call, url.hostname, url.port, app_key, "not-the-secret",
                                    token, account_id)
    assert wrong["error_response"]["code"] == "12"

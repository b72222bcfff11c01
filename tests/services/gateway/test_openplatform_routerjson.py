"""`/routerjson` end to end over HTTP: the protocol's success and error paths and the security
cases (other shops, ungranted methods, stale timestamps, replays, quotas)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from libs.redis import connect_redis
from services.gateway.adapters.limits import AUDIT_STREAM
from services.gateway.api import openplatform_methods
from services.gateway.api.openplatform_methods import CallContext
from services.gateway.domain.catalogue import MethodSpec, Param
from tests.services.gateway.conftest import Suite
from tests.services.gateway.openplatform_helpers import (
    authorised_member,
    call,
    error_code,
    md5_sign,
    sdk_timestamp,
    signed,
)


@pytest.mark.parametrize("how", ["post-query", "get", "post-form"])
async def test_member_get_succeeds_by_every_transport(suite: Suite, how: str) -> None:
    """GET, POST with a query and no body, and POST with a form all answer the member."""
    app_key, secret, token, account_id, brand_id = await authorised_member(suite)
    body = await call(suite.http, signed(app_key, secret, "brandclub.member.get",
                                         {"account_id": account_id}, token), how)
    envelope = body["brandclub_member_get_responce"]
    assert envelope["code"] == "0"
    result = envelope["get_result"]
    assert result["success"] is True
    assert result["data"]["member"]["account_id"] == account_id
    assert result["data"]["member"]["brand_id"] == brand_id
    assert result["data"]["member"]["status"] == "LV0"


async def test_points_balance_reads_the_authorising_brand(suite: Suite) -> None:
    """points.balance.get answers the member's balance in the token's brand."""
    app_key, secret, token, account_id, _ = await authorised_member(suite)
    body = await call(suite.http, signed(app_key, secret, "brandclub.points.balance.get",
                                         {"account_id": account_id}, token))
    result = body["brandclub_points_balance_get_responce"]["get_result"]
    assert result["success"] is True and result["data"]["available_points"] == 0


async def test_chinese_parameters_verify_over_utf8(suite: Suite) -> None:
    """A UTF-8 client can send Chinese: the sign verifies and the method runs (here it reports
    a business failure inside the result, with the envelope's code "0")."""
    app_key, secret, token, _, _ = await authorised_member(suite)
    body = await call(suite.http, signed(app_key, secret, "brandclub.member.get",
                                         {"account_id": "会员张三"}, token), "post-form")
    envelope = body["brandclub_member_get_responce"]
    assert envelope["code"] == "0"
    assert envelope["get_result"]["success"] is False
    assert envelope["get_result"]["code"] == "MEMBER_NOT_FOUND"


async def test_system_parameter_errors(suite: Suite) -> None:
    """Each missing or wrong system parameter answers its own string code, with HTTP 200."""
    app_key, secret, token, account_id, _ = await authorised_member(suite)
    good = signed(app_key, secret, "brandclub.member.get", {"account_id": account_id}, token)

    def resigned(**changes: str | None) -> dict[str, str]:
        params = {k: v for k, v in {**good, **changes}.items() if v is not None}
        params.pop("sign", None)
        params["sign"] = md5_sign(secret, params)
        return params

    cases = {
        "21": resigned(app_key="FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"),
        "14": resigned(method=None),
        "4": resigned(v=None),
        "5": resigned(v="1.0"),
        "7": resigned(timestamp=None),
        "8": resigned(timestamp="01/05/2024"),
        "11": {k: v for k, v in good.items() if k != "sign"},
        "12": {**good, "sign": md5_sign("wrong-secret", good)},
        "15": resigned(method="brandclub.nothing.here"),
        "1001": resigned(access_token=None),
        "19": resigned(access_token="not-a-token"),
        "1004": resigned(format="xml"),
    }
    for expected, params in cases.items():
        body = await call(suite.http, params)
        assert error_code(body) == expected, (expected, body)
        assert set(body["error_response"]) == {"code", "zh_desc", "en_desc"}


async def test_stale_timestamp_is_refused(suite: Suite) -> None:
    """A correctly signed request stamped seven minutes ago is refused with code 8."""
    app_key, secret, token, account_id, _ = await authorised_member(suite)
    stale = sdk_timestamp(datetime.now(UTC) - timedelta(minutes=7))
    body = await call(suite.http, signed(app_key, secret, "brandclub.member.get",
                                         {"account_id": account_id}, token, timestamp=stale))
    assert error_code(body) == "8"


async def test_ungranted_method_is_refused(suite: Suite) -> None:
    """A shop that granted only member.read: the app's points read is refused with 1002."""
    app_key, secret, token, account_id, _ = await authorised_member(suite, scopes=("member.read",))
    body = await call(suite.http, signed(app_key, secret, "brandclub.points.balance.get",
                                         {"account_id": account_id}, token))
    assert error_code(body) == "1002"


async def test_app_reaches_only_the_shops_that_authorised_it(suite: Suite) -> None:
    """With shop A's token an app cannot read a member of brand B, and another app cannot use
    shop A's token at all."""
    app_key, secret, token, _, _ = await authorised_member(suite)
    _, other_shop = await suite.brand_and_shop("Other")
    outsider = await suite.member(other_shop, "pin-outsider")
    body = await call(suite.http, signed(app_key, secret, "brandclub.member.get",
                                         {"account_id": outsider}, token))
    result = body["brandclub_member_get_responce"]["get_result"]
    assert result["success"] is False and result["code"] == "MEMBER_NOT_FOUND"
    other_key, other_secret = await suite.app(name="app-2")
    body = await call(suite.http, signed(other_key, other_secret, "brandclub.member.get",
                                         {"account_id": outsider}, token))
    assert error_code(body) == "19"


async def test_revoked_authorization_stops_the_token(suite: Suite) -> None:
    """After the merchant revokes in the console, the app's token answers code 19."""
    brand_id, shop_id = await suite.brand_and_shop()
    app_key, secret = await suite.app()
    grant = await suite.authorise(app_key, secret, brand_id, shop_id)
    merchant = {"Authorization": f"Bearer {await suite.merchant_token(brand_id)}"}
    async with suite.http.delete(f"/console/v1/isv-authorizations/{app_key}/shops/{shop_id}",
                                 headers=merchant) as response:
        assert response.status == 200, await response.text()
    body = await call(suite.http, signed(app_key, secret, "brandclub.member.get",
                                         {"account_id": "acc_x"}, str(grant["access_token"])))
    assert error_code(body) == "19"


async def test_quota_exceeded_is_code_2(suite: Suite) -> None:
    """An app allowed 3 calls a minute gets code 2 on the fourth, never a 5xx."""
    app_key, secret, token, account_id, _ = await authorised_member(suite, calls_per_minute=3)
    codes = []
    for _ in range(5):
        body = await call(suite.http, signed(app_key, secret, "brandclub.member.get",
                                             {"account_id": account_id}, token))
        codes.append(error_code(body))
    assert codes == [None, None, None, "2", "2"]


async def test_repeated_read_is_answered_normally(suite: Suite) -> None:
    """The same signed read twice in one second gets two fresh answers."""
    app_key, secret, token, account_id, _ = await authorised_member(suite)
    params = signed(app_key, secret, "brandclub.member.get", {"account_id": account_id}, token)
    first, second = await call(suite.http, params), await call(suite.http, params)
    assert error_code(first) is None and first == second


async def test_replayed_write_gets_the_first_answer_and_applies_once(
        suite: Suite, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repeated signed write within the window, even concurrent, is applied once and every
    copy gets the first answer; a new signature applies again."""
    applied: list[str] = []

    async def write(ctx: CallContext, params: dict[str, Any]) -> dict[str, Any]:
        applied.append(params["note"])
        await asyncio.sleep(0.05)
        return {"applied": len(applied)}

    spec = MethodSpec("brandclub.test.write", "points.write", "test write", True,
                      (Param("note", "string", "", required=True),))
    monkeypatch.setitem(openplatform_methods.METHODS, spec.name, (spec, write))
    app_key, secret, token, _, _ = await authorised_member(suite)
    params = signed(app_key, secret, spec.name, {"note": "a"}, token)
    answers = await asyncio.gather(*(call(suite.http, params) for _ in range(3)))
    assert applied == ["a"]
    assert all(a == answers[0] for a in answers)
    assert answers[0]["brandclub_test_write_responce"]["write_result"]["data"] == {"applied": 1}
    await asyncio.sleep(1.01)  # a new second: a new timestamp, a new signature
    fresh = await call(suite.http, signed(app_key, secret, spec.name, {"note": "a"}, token))
    assert fresh["brandclub_test_write_responce"]["write_result"]["data"] == {"applied": 2}


async def test_every_call_is_audited(suite: Suite, redis_url: str) -> None:
    """Each call, successful or refused, leaves an audit entry with app, shop, method,
    outcome and latency."""
    app_key, secret, token, account_id, _ = await authorised_member(suite)
    await call(suite.http, signed(app_key, secret, "brandclub.member.get",
                                  {"account_id": account_id}, token))
    await call(suite.http, {**signed(app_key, secret, "brandclub.member.get",
                                     {"account_id": account_id}, token), "sign": "BAD"})
    client = connect_redis(redis_url)  # a cluster client under ./dev test --redis-cluster
    try:
        stream: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(  # type: ignore[assignment]
            AUDIT_STREAM)
        entries = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in stream]
    finally:
        await client.aclose()
    mine = [e for e in entries if e["app_key"] == app_key and e["method"]]
    assert [e["outcome"] for e in mine][-2:] == ["ok", "error:12"]
    assert mine[-2]["method"] == "brandclub.member.get" and mine[-2]["shop_id"]
    assert float(mine[-2]["latency_ms"]) > 0
    assert all(secret not in json.dumps(e) for e in entries)


async def test_malformed_input_never_yields_a_5xx(suite: Suite) -> None:
    """Wrong types, missing fields, bad JSON, bad encodings and huge bodies all answer HTTP 200
    with an error_response."""
    app_key, secret, token, _, _ = await authorised_member(suite)
    method = "brandclub.member.get"
    bodies = [
        signed(app_key, secret, method, {"account_id": 42}, token),
        signed(app_key, secret, method, {"account_id": ["a"]}, token),
        signed(app_key, secret, method, {}, token),
        signed(app_key, secret, method, "{not json", token),
        signed(app_key, secret, method, "[1, 2]", token),
        signed(app_key, secret, method, "null", token),
        signed(app_key, secret, method, {"account_id": "x" * 100_000}, token),
    ]
    for params in bodies:
        body = await call(suite.http, params, "post-form")
        assert error_code(body) == "1003", body
    raw_requests: list[tuple[str, bytes, dict[str, str]]] = [
        ("/routerjson?app_key=%FF%FE", b"", {}),
        ("/routerjson", b"x" * 2_000_000, {"Content-Type": "application/x-www-form-urlencoded"}),
        ("/routerjson", b'{"app_key": 1}', {"Content-Type": "application/json"}),
        ("/routerjson", b"app_key=%C3%28", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("/routerjson?app_key=a&app_key=b", b"", {}),
        ("/routerjson", b"", {}),
    ]
    for path, payload, headers in raw_requests:
        async with suite.http.post(path, data=payload, headers=headers) as response:
            assert response.status == 200, (path, response.status)
            assert error_code(await response.json()) is not None


async def test_catalogue_lists_methods_with_scopes(suite: Suite) -> None:
    """The catalogue serves every method with parameters, result and scope, and the codes."""
    async with suite.http.get("/routerjson/catalogue") as response:
        assert response.status == 200
        catalogue = await response.json()
    names = {m["name"]: m for m in catalogue["methods"]}
    assert names["brandclub.member.get"]["scope"] == "member.read"
    assert names["brandclub.member.get"]["params"][0]["name"] == "account_id"
    assert {"2", "12", "1002"} <= {c["code"] for c in catalogue["error_codes"]}


async def test_long_parameters_in_the_url_are_judged_by_the_platform(suite: Suite) -> None:
    """The SDK puts everything in the URL: a 20 KB parameter JSON is served, a 40 KB one is
    code 1003 (too long), both as HTTP 200 JSON."""
    app_key, secret, token, account_id, _ = await authorised_member(suite)
    padded = {"account_id": account_id, "note": "x" * 20_000}
    body = await call(suite.http, signed(app_key, secret, "brandclub.member.get", padded, token))
    assert error_code(body) is None, body
    padded["note"] = "x" * 40_000
    body = await call(suite.http, signed(app_key, secret, "brandclub.member.get", padded, token))
    assert error_code(body) == "1003"

"""Malformed input over every route of the gateway: NUL bytes, lone surrogates, huge ids,
non-ASCII digits, out-of-range integers, chunked bodies (garbage after valid JSON, JSON split
over chunks, over the size limit), nested parameter JSON and long OAuth ids. Every answer is a
4xx naming the problem (or a JOS parameter error); no answer is ever a 5xx."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from yarl import URL

from services.gateway.api.routes import Route
from services.gateway.main import ROUTES
from tests.services.gateway.conftest import Suite
from tests.services.gateway.openplatform_helpers import call, error_code, signed

HUGE = 99999999999999999999999
JSON_LIMIT = 256 * 1024
_CONTRACT = re.compile(r"the contract's ([a-z]+\.v1\.[A-Za-z]+)")
# Path values that once reached PostgreSQL (or int()) and failed there as internal errors.
BAD_PATH_VALUES: dict[str, str] = {
    "nul": "id%00x",                # PostgreSQL refuses 0x00 in text
    "surrogate": "%ED%A0%80",       # the UTF-8 bytes of a lone surrogate
    "huge": "x" * 5000,             # overflowed the gRPC error trailer
    "superscript": quote("²"),      # str.isdigit() is true, int() fails
}


def routes_of(suite: Suite) -> list[Route]:
    routes: list[Route] = suite.gateway.runner.app[ROUTES].routes
    return routes


def filled(route: Route, value: str | None = None) -> str:
    """The route's path with every parameter set to `value` (or to a plausible id)."""
    path = route.path
    if value is None:
        path, value = path.replace("{channel}", "sms").replace("{chunk_index}", "0"), "id_1"
    return re.sub(r"{\w+}", value, path)


async def headers_for(suite: Suite, route: Route, tokens: dict[str, str]) -> dict[str, str]:
    token = tokens.get(route.auth)
    return {"Authorization": f"Bearer {token}"} if token else {}


@pytest.fixture
async def tokens(full_suite: Suite) -> AsyncIterator[dict[str, str]]:
    brand_id, _ = await full_suite.brand_and_shop()
    _, shopper = await full_suite.shopper("pin-malformed")
    yield {"shopper": shopper, "merchant": await full_suite.merchant_token(brand_id)}


async def send(suite: Suite, method: str, url: str | URL, headers: dict[str, str],
               data: Any = None) -> tuple[int, Any]:
    async with suite.http.request(method, url, data=data, headers=headers) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


async def test_bad_path_values_are_4xx_on_every_route(full_suite: Suite,
                                                      tokens: dict[str, str]) -> None:
    """NUL, lone-surrogate bytes, 5,000-character ids and non-ASCII digits in every path
    parameter of every route never answer 5xx; NUL and long ids are a 400 naming the
    parameter (the others are merely ids that do not exist)."""
    suite = full_suite
    routes = [r for r in routes_of(suite) if "{" in r.path]
    assert len(routes) >= 40
    failures = []
    for route in routes:
        headers = await headers_for(suite, route, tokens)
        for kind, value in BAD_PATH_VALUES.items():
            url = URL(filled(route, value), encoded=True)
            status, body = await send(suite, route.method, url, headers,
                                      b"{}" if route.body is not None else None)
            if status >= 500:
                failures.append((route.method, route.path, kind, status, str(body)[:200]))
            elif kind in ("nul", "huge"):
                names = re.findall(r"{(\w+)}", route.path)
                if status != 400 or body["error"]["details"].get("field") not in names:
                    failures.append((route.method, route.path, kind, status, str(body)[:200]))
    assert failures == []


async def test_bad_query_values_are_400_on_every_route(full_suite: Suite,
                                                       tokens: dict[str, str]) -> None:
    """NUL in a query value and 3,000-character values answer 400 on every route; non-ASCII
    digits in page_size answer 400 on every paged route; nothing answers 5xx."""
    suite = full_suite
    failures = []
    for route in routes_of(suite):
        headers = await headers_for(suite, route, tokens)
        paged = any(name == "page_size" for name, _, _ in route.query)
        for query, refused in (("page_token=a%00b", True), ("q=" + "x" * 3000, True),
                               ("page_size=%C2%B2", paged)):
            url = URL(f"{filled(route)}?{query}", encoded=True)
            status, body = await send(suite, route.method, url, headers,
                                      b"{}" if route.body is not None else None)
            if status >= 500 or (refused and status != 400):
                failures.append((route.method, route.path, query[:20], status, str(body)[:200]))
    assert failures == []


def _message_of(schema: dict[str, Any]) -> Descriptor | None:
    match = _CONTRACT.search(schema.get("description", ""))
    if match is None:
        return None
    return descriptor_pool.Default().FindMessageTypeByName(f"brandclub.{match.group(1)}")


def _integer_bodies(descriptor: Descriptor, depth: int = 0) -> list[dict[str, Any]]:
    """One body per integer field of the message (and of its nested messages), each holding
    a value no protobuf integer can."""
    bodies: list[dict[str, Any]] = []
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None \
                and not field.message_type.GetOptions().map_entry and depth < 3 \
                and not field.message_type.full_name.startswith("google.protobuf."):
            for inner in _integer_bodies(field.message_type, depth + 1):
                bodies.append({field.name: [inner] if field.is_repeated else inner})
        elif field.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                                FieldDescriptor.CPPTYPE_UINT32,
                                FieldDescriptor.CPPTYPE_UINT64):
            bodies.append({field.name: [HUGE] if field.is_repeated else HUGE})
    return bodies


def integer_cases(route: Route) -> list[dict[str, Any]]:
    """Bodies putting an out-of-range integer into every integer the route's body can hold."""
    assert route.body is not None
    message = _message_of(route.body)
    if message is not None:
        return _integer_bodies(message)
    cases: list[dict[str, Any]] = []
    for name, schema in route.body.get("properties", {}).items():
        if schema.get("type") == "integer":
            cases.append({name: HUGE})
        nested = _message_of(schema)
        if nested is not None:
            cases += [{name: inner} for inner in _integer_bodies(nested)]
    return cases


async def test_out_of_range_integers_are_4xx_on_every_body(full_suite: Suite,
                                                           tokens: dict[str, str]) -> None:
    """An integer beyond its protobuf field's range, in any integer field any JSON body can
    carry, answers 4xx, never 500."""
    suite = full_suite
    failures, count = [], 0
    for route in [r for r in routes_of(suite) if r.body is not None]:
        headers = {**await headers_for(suite, route, tokens), "Content-Type": "application/json"}
        for body in integer_cases(route):
            count += 1
            status, answer = await send(suite, route.method, filled(route), headers,
                                        json.dumps(body).encode())
            if not 400 <= status < 500:
                failures.append((route.path, body, status, str(answer)[:200]))
    assert count >= 60 and failures == []
    merchant = {"Authorization": f"Bearer {tokens['merchant']}",
                "Content-Type": "application/json"}
    status, answer = await send(suite, "POST", "/console/v1/phone-imports", merchant,
                                b'{"expected_rows": 99999999999999999999999}')
    assert status == 400 and answer["error"]["reason"] == "FIELD_OUT_OF_RANGE"
    assert answer["error"]["details"]["field"] == "expected_rows"


async def test_unstorable_text_in_json_bodies_is_400_naming_the_place(
        full_suite: Suite, tokens: dict[str, str]) -> None:
    """NUL or a lone surrogate anywhere in a JSON body (a value, a key, deep in an array)
    answers 400; the body routes that read JSON name the place."""
    suite = full_suite
    bodies = [b'{"title": "a\\u0000b"}', b'{"x\\u0000": 1}', b'{"a": {"b": ["ok", "\\ud800"]}}']
    failures = []
    for route in [r for r in routes_of(suite) if r.body is not None]:
        headers = {**await headers_for(suite, route, tokens), "Content-Type": "application/json"}
        for raw in bodies:
            status, answer = await send(suite, route.method, filled(route), headers, raw)
            if not 400 <= status < 500:
                failures.append((route.path, raw, status, str(answer)[:200]))
    assert failures == []
    status, answer = await send(
        suite, "POST", "/console/v1/coupons",
        {"Authorization": f"Bearer {tokens['merchant']}", "Content-Type": "application/json"},
        b'{"template": {"title": "10 off", "tags": ["a", "b\\u0000"]}}')
    assert status == 400, answer
    assert answer["error"]["reason"] == "FIELD_CHARACTERS_INVALID"
    assert answer["error"]["details"]["field"] == "template.tags[1]"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    """A chunked request body whose parts reach the server separately."""
    for part in parts:
        yield part
        await asyncio.sleep(0.05)


async def test_chunked_bodies_are_read_whole_with_the_limit(full_suite: Suite,
                                                           tokens: dict[str, str]) -> None:
    """On every route with a body: garbage after valid JSON in a second chunk is refused; JSON
    split over two chunks is read whole (never INVALID_JSON); a chunked body over the limit is
    413 naming the limit."""
    suite = full_suite
    failures = []
    for route in [r for r in routes_of(suite) if r.body is not None]:
        headers = {**await headers_for(suite, route, tokens), "Content-Type": "application/json"}
        url = filled(route)
        status, answer = await send(suite, route.method, url, headers,
                                    chunks(b'{"a": 1}', b"garbage"))
        if status not in (400, 401) or (status == 400
                                         and answer["error"]["reason"] != "INVALID_JSON"):
            failures.append(("garbage", route.path, status, str(answer)[:200]))
        status, answer = await send(suite, route.method, url, headers,
                                    chunks(b'{"events": [], "receipts": [], "rule": ', b"null}"))
        if status >= 500 or (isinstance(answer, dict) and answer.get("error", {}).get(
                "reason") == "INVALID_JSON"):
            failures.append(("split", route.path, status, str(answer)[:200]))
        status, answer = await send(suite, route.method, url, headers,
                                    chunks(*[b" " * 65536] * 9, b"{}"))
        signed_route = route.auth in ("marketplace", "receipts")  # unsigned: 401 first
        if not ((status == 413 and "bytes" in answer["error"]["message"])
                or (signed_route and status == 401)):
            failures.append(("oversize", route.path, status, str(answer)[:200]))
    assert failures == []


async def test_split_json_applies_like_a_whole_body(full_suite: Suite,
                                                    tokens: dict[str, str]) -> None:
    """A console write whose JSON arrives in two chunks is applied as if sent at once."""
    suite = full_suite
    headers = {"Authorization": f"Bearer {tokens['merchant']}",
               "Content-Type": "application/json"}
    status, answer = await send(suite, "POST", "/console/v1/phone-imports", headers,
                                chunks(b'{"expected_', b'rows": 12}'))
    assert status != 400 or answer["error"]["reason"] not in ("INVALID_JSON",
                                                               "FIELD_TYPE_INVALID"), answer
    assert status < 500, answer


async def test_open_platform_parameters_never_reach_an_internal_error(full_suite: Suite
                                                                      ) -> None:
    """/routerjson: NUL in a parameter and a deeply nested 360buy_param_json are parameter
    errors (1003), not code 1; /oauth2/authorize with a 5,000-character shop_id is a 400."""
    suite = full_suite
    brand_id, shop_id = await suite.brand_and_shop("Open")
    app_key, secret = await suite.app()
    grant = await suite.authorise(app_key, secret, brand_id, shop_id)
    nested = "[" * 10_000 + "]" * 10_000
    for business in (nested, json.dumps({"account_id": "acc\x00", "points": 1,
                                         "businessId": "b"}),
                     '{"account_id": "\\ud800", "points": 1, "businessId": "b"}',
                     json.dumps({"account_id": "a", "points": HUGE, "businessId": "b"})):
        params = signed(app_key, secret, "brandclub.points.grant", business,
                        str(grant["access_token"]))
        answer = await call(suite.http, params, "post-form")
        assert error_code(answer) == "1003", (business[:40], answer)
    async with suite.http.get(URL("/routerjson?app_key=a%00b&method=x", encoded=True)
                              ) as response:
        assert (await response.json())["error_response"]["code"] == "1003"
    merchant = await suite.merchant_token(brand_id)
    async with suite.http.get("/oauth2/authorize", allow_redirects=False, params={
            "app_key": app_key, "response_type": "code", "shop_id": "s" * 5000},
            headers={"Authorization": f"Bearer {merchant}"}) as response:
        assert response.status == 400, await response.text()
        assert (await response.json())["error"]["details"]["field"] == "shop_id"


async def test_nul_in_an_id_header_is_refused(full_suite: Suite, tokens: dict[str, str]
                                              ) -> None:
    """A NUL in Idempotency-Key never reaches a service: 400 (the HTTP parser's own)."""
    port = full_suite.gateway.http_port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /console/v1/phone-imports HTTP/1.1\r\nHost: x\r\n"
                 b"Authorization: Bearer " + tokens["merchant"].encode() + b"\r\n"
                 b"Idempotency-Key: a\x00b\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    await writer.drain()
    head = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    assert head.split(b"\r\n")[0].split()[1] == b"400", head[:200]


async def test_header_bytes_that_are_not_utf8_are_refused_on_every_route(
        full_suite: Suite) -> None:
    """Non-UTF-8 bytes in Authorization, X-Device-Id or Idempotency-Key (decoded by the HTTP
    server to lone surrogates), and id headers over 128 characters (which used to be cut, so
    two keys could share one answer), answer 400 or 401 on every route, never 5xx."""
    suite = full_suite
    failures = []
    for route in routes_of(suite):
        for header in (b"Authorization: Bearer \xff\xfe", b"X-Device-Id: \xed\xa0\x80",
                       b"Idempotency-Key: \xc3\x28", b"Idempotency-Key: " + b"k" * 129,
                       b"X-Device-Id: " + b"d" * 129):
            reader, writer = await asyncio.open_connection("127.0.0.1",
                                                           suite.gateway.http_port)
            writer.write(f"{route.method} {filled(route)} HTTP/1.1\r\nHost: x\r\n".encode()
                         + header + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(-1), 10)
            writer.close()
            status = int(answer.split(b" ", 2)[1])
            if status not in (400, 401):
                failures.append((route.method, route.path, header, answer[:300]))
    assert failures == []

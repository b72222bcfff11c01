"""Points over the open platform: grant and deduct with businessId, replays of signed writes,
and the ledger, against the real benefits service."""

from __future__ import annotations

import asyncio

from tests.services.gateway.conftest import Suite
from tests.services.gateway.openplatform_helpers import (
    balance,
    call,
    error_code,
    ready,
    result,
    signed,
)


async def test_replayed_signed_grant_is_applied_once(suite: Suite) -> None:
    """The same signed grant sent three times at once adds the points once, and every copy
    gets the same answer."""
    app_key, secret, token, account_id = await ready(suite)
    params = signed(app_key, secret, "brandclub.points.grant",
                    {"account_id": account_id, "points": 100, "businessId": "order-1"}, token)
    answers = await asyncio.gather(*(call(suite.http, params) for _ in range(3)))
    assert all(answer == answers[0] for answer in answers)
    granted = result(answers[0], "brandclub.points.grant")
    assert granted["success"] is True and granted["data"]["available_points"] == 100
    assert await balance(suite, app_key, secret, token, account_id) == 100


async def test_business_id_deduplicates_across_signatures(suite: Suite) -> None:
    """A new request (new signature) with a used businessId applies nothing and repeats the
    first result; the same businessId with other points is a business failure."""
    app_key, secret, token, account_id = await ready(suite)
    first = await call(suite.http, signed(app_key, secret, "brandclub.points.grant", {
        "account_id": account_id, "points": 30, "businessId": "b-1", "reason": "FIRST"},
        token))
    again = await call(suite.http, signed(app_key, secret, "brandclub.points.grant", {
        "account_id": account_id, "points": 30, "businessId": "b-1", "reason": "FIRST"},
        token, format="json"))
    assert result(again, "brandclub.points.grant")["data"] == \
        result(first, "brandclub.points.grant")["data"]
    clash = await call(suite.http, signed(app_key, secret, "brandclub.points.grant", {
        "account_id": account_id, "points": 31, "businessId": "b-1", "reason": "FIRST"}, token))
    failed = result(clash, "brandclub.points.grant")
    assert failed["success"] is False and failed["code"] == "REQUEST_ID_REUSED"
    assert await balance(suite, app_key, secret, token, account_id) == 30


async def test_deduct_never_goes_below_zero_and_ledger_lists_entries(suite: Suite) -> None:
    """Deducting more than the balance is a business failure; the ledger lists grant and
    deduction newest first."""
    app_key, secret, token, account_id = await ready(suite)
    await call(suite.http, signed(app_key, secret, "brandclub.points.grant", {
        "account_id": account_id, "points": 50, "businessId": "g"}, token))
    too_much = await call(suite.http, signed(app_key, secret, "brandclub.points.deduct", {
        "account_id": account_id, "points": 80, "businessId": "d1"}, token))
    refused = result(too_much, "brandclub.points.deduct")
    assert refused["success"] is False and refused["code"] == "INSUFFICIENT_POINTS"
    ok = await call(suite.http, signed(app_key, secret, "brandclub.points.deduct", {
        "account_id": account_id, "points": 20, "businessId": "d2"}, token))
    assert result(ok, "brandclub.points.deduct")["data"]["available_points"] == 30
    listed = await call(suite.http, signed(app_key, secret, "brandclub.points.entry.list", {
        "account_id": account_id, "page_size": 10}, token))
    amounts = [e["amount"] for e in result(listed, "brandclub.points.entry.list")["data"][
        "entries"]]
    assert amounts == [-20, 50]


async def test_points_go_only_to_members_of_the_authorising_brand(suite: Suite) -> None:
    """Granting to a member of another brand is MEMBER_NOT_FOUND and grants nothing."""
    app_key, secret, token, _ = await ready(suite)
    _, other_shop = await suite.brand_and_shop("Other")
    outsider = await suite.member(other_shop, "pin-outsider")
    body = await call(suite.http, signed(app_key, secret, "brandclub.points.grant", {
        "account_id": outsider, "points": 10, "businessId": "x"}, token))
    failed = result(body, "brandclub.points.grant")
    assert failed["success"] is False and failed["code"] == "MEMBER_NOT_FOUND"


async def test_grant_parameters_are_checked(suite: Suite) -> None:
    """Zero, negative, fractional or string points and a missing businessId are code 1003."""
    app_key, secret, token, account_id = await ready(suite)
    for business in ({"account_id": account_id, "points": 0, "businessId": "a"},
                     {"account_id": account_id, "points": -5, "businessId": "a"},
                     {"account_id": account_id, "points": 1.5, "businessId": "a"},
                     {"account_id": account_id, "points": "many", "businessId": "a"},
                     {"account_id": account_id, "points": 5},
                     {"account_id": account_id, "points": 5, "businessId": "x" * 41}):
        body = await call(suite.http, signed(app_key, secret, "brandclub.points.grant",
                                             business, token))
        assert error_code(body) == "1003", business

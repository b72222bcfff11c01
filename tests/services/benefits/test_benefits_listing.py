"""Paging of benefits' lists (AIP-158): every List rpc pages in a stable order, and a page
token only pages the listing (brand, member, filters) that issued it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from libs.grpc_client import remote_error
from services.benefits.domain.points import ExpiryMode, PointsPolicy, Source
from services.benefits.usecases import config
from services.benefits.usecases.ledger import Ledger
from tests.services.benefits.conftest import Benefits, brand, rid


async def collect(fetch: Callable[[str], Awaitable[tuple[list[Any], str]]]
                  ) -> tuple[list[Any], int]:
    """Every item over all pages, and the number of pages it took."""
    items: list[Any] = []
    token, pages = "", 0
    while True:
        page, token = await fetch(token)
        items += page
        pages += 1
        if not token:
            return items, pages


async def refused_token(call: Awaitable[Any]) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return remote_error(caught.value).reason


async def test_tier_multipliers_page_by_level(benefits: Benefits) -> None:
    """Five levels come two, two and one, lowest first; another brand's token is refused."""
    b, other = brand(), brand()
    async with benefits.db.transaction() as conn:
        await config.apply_program_multipliers(conn, b, "prg_1", datetime.now(UTC),
                                               [(level, 100 + 10 * level)
                                                for level in (4, 0, 2, 1, 3)])

    async def fetch(token: str) -> tuple[list[Any], str]:
        reply = await benefits.admin.ListTierMultipliers(pb.ListTierMultipliersRequest(
            brand_id=b, page_size=2, page_token=token))
        return list(reply.multipliers), reply.next_page_token

    items, pages = await collect(fetch)
    assert [(m.level, m.multiplier_percent) for m in items] == [
        (0, 100), (1, 110), (2, 120), (3, 130), (4, 140)] and pages == 3
    first = await benefits.admin.ListTierMultipliers(pb.ListTierMultipliersRequest(
        brand_id=b, page_size=2))
    assert await refused_token(benefits.admin.ListTierMultipliers(
        pb.ListTierMultipliersRequest(brand_id=other, page_size=2,
                                      page_token=first.next_page_token))) == \
        "PAGE_TOKEN_INVALID"


async def test_expiring_points_page_soonest_first_never_last(benefits: Benefits) -> None:
    """Three expiry days and points that never expire come three and one: soonest first,
    the never-expiring group last; the token is the member's own."""
    b = brand()
    now = datetime.now(UTC)
    async with benefits.db.transaction() as conn:
        await config.save_policy(conn, PointsPolicy(b, ExpiryMode.ROLLING_DAYS, 10,
                                                    time_zone="UTC"), now)
        for days_ago, amount in ((3, 30), (1, 10), (2, 20)):
            await Ledger(conn).grant(b, "acc", amount, reason_code="T", source=Source.OPERATOR,
                                     request_id=rid(), now=now - timedelta(days=days_ago))
        await config.save_policy(conn, PointsPolicy(b, ExpiryMode.NEVER, 0), now)
        await Ledger(conn).grant(b, "acc", 40, reason_code="T", source=Source.OPERATOR,
                                 request_id=rid(), now=now)

    async def fetch(token: str) -> tuple[list[Any], str]:
        reply = await benefits.api.ListExpiringPoints(pb.ListExpiringPointsRequest(
            brand_id=b, account_id="acc", page_size=3, page_token=token))
        return list(reply.expiring), reply.next_page_token

    items, pages = await collect(fetch)
    assert [e.points for e in items] == [30, 20, 10, 40] and pages == 2
    assert not items[-1].HasField("expire_time")
    first = await benefits.api.ListExpiringPoints(pb.ListExpiringPointsRequest(
        brand_id=b, account_id="acc", page_size=3))
    assert await refused_token(benefits.api.ListExpiringPoints(pb.ListExpiringPointsRequest(
        brand_id=b, account_id="acc_other", page_size=3,
        page_token=first.next_page_token))) == "PAGE_TOKEN_INVALID"


async def test_claimable_coupons_page_oldest_first_without_what_the_member_cannot_claim(
        benefits: Benefits) -> None:
    """Five templates, one the member already holds up to its limit: the four others come
    two by two in creation order; a token issued for one placement is refused for another."""
    b = brand()
    ids = [(await benefits.template(b)).template_id for _ in range(5)]
    await benefits.api.ClaimCoupon(pb.ClaimCouponRequest(
        request_id=rid(), brand_id=b, account_id="acc", coupon_template_id=ids[1]))

    async def fetch(token: str) -> tuple[list[Any], str]:
        reply = await benefits.api.ListClaimableCoupons(pb.ListClaimableCouponsRequest(
            brand_id=b, account_id="acc", page_size=2, page_token=token))
        return list(reply.templates), reply.next_page_token

    items, pages = await collect(fetch)
    assert [t.template_id for t in items] == [ids[0], *ids[2:]] and pages == 2
    first = await benefits.api.ListClaimableCoupons(pb.ListClaimableCouponsRequest(
        brand_id=b, account_id="acc", page_size=2))
    assert await refused_token(benefits.api.ListClaimableCoupons(
        pb.ListClaimableCouponsRequest(brand_id=b, account_id="acc", page_size=2,
                                       placement=pb.COUPON_PLACEMENT_CHECKOUT,
                                       page_token=first.next_page_token))) == \
        "PAGE_TOKEN_INVALID"


LIST_RPCS = sorted((service.name, method.name)
                   for service in pb.DESCRIPTOR.services_by_name.values()
                   for method in service.methods if method.name.startswith("List"))


def test_every_list_rpc_pages() -> None:
    """Every List rpc takes page_size and page_token and answers next_page_token (AIP-158)."""
    for service, name in LIST_RPCS:
        method = pb.DESCRIPTOR.services_by_name[service].methods_by_name[name]
        assert {"page_size", "page_token"} <= set(method.input_type.fields_by_name), name
        assert "next_page_token" in method.output_type.fields_by_name, name


@pytest.mark.parametrize(("service", "rpc"), LIST_RPCS)
async def test_every_list_rpc_refuses_a_negative_page_size(benefits: Benefits, service: str,
                                                           rpc: str) -> None:
    """page_size -1 is INVALID_ARGUMENT naming page_size, before anything else is looked at."""
    request = getattr(pb, f"{rpc}Request")(brand_id=brand(), page_size=-1)
    if "account_id" in request.DESCRIPTOR.fields_by_name:
        request.account_id = "acc"
    stub = benefits.admin if service == "BenefitsAdminService" else benefits.api
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, rpc)(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert remote_error(caught.value).metadata["field"] == "page_size"

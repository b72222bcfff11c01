"""Coupon templates, claims and issues: stock and per-member limits under concurrency."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from libs.grpc_client import remote_error
from tests.services.benefits.conftest import Benefits, brand, rid


async def claim(benefits: Benefits, b: str, account: str, template_id: str) -> str:
    """The claim's coupon id, or the refusal reason."""
    try:
        response = await benefits.api.ClaimCoupon(pb.ClaimCouponRequest(
            request_id=rid(), brand_id=b, account_id=account, coupon_template_id=template_id),
            timeout=60)
        return response.coupon.coupon_id
    except grpc.aio.AioRpcError as error:
        return remote_error(error).reason


async def test_200_concurrent_claims_of_stock_50_issue_exactly_50(benefits: Benefits) -> None:
    """200 shoppers claiming a coupon with stock 50 at once get exactly 50 coupons."""
    b = brand()
    template = await benefits.template(b, stock=50)
    results = await asyncio.gather(*(claim(benefits, b, f"acc{i}", template.template_id)
                                     for i in range(200)))
    issued = [r for r in results if r.startswith("cpn_")]
    assert len(issued) == 50 and len(set(issued)) == 50
    assert set(results) - set(issued) == {"COUPON_OUT_OF_STOCK"}
    got = (await benefits.admin.GetCouponTemplate(pb.GetCouponTemplateRequest(
        brand_id=b, template_id=template.template_id))).template
    assert got.issued_count == 50
    assert await benefits.db.fetchval("SELECT count(*) FROM coupons WHERE brand_id = $1", b) == 50


async def test_per_member_limit_holds_under_concurrent_claims(benefits: Benefits) -> None:
    """One member claiming 30 times at once gets exactly the per-member limit."""
    b = brand()
    template = await benefits.template(b, stock=100, limit=2)
    results = await asyncio.gather(*(claim(benefits, b, "greedy", template.template_id)
                                     for _ in range(30)))
    assert len([r for r in results if r.startswith("cpn_")]) == 2
    assert set(r for r in results if not r.startswith("cpn_")) == {"COUPON_LIMIT_REACHED"}


async def test_tier_gated_claim_and_claimable_list(benefits: Benefits) -> None:
    """A coupon for LV1+ is refused to LV0 and listed (with its delivery link) for LV1."""
    b = brand()
    template = await benefits.template(b, levels=(1, 2, 3))
    assert template.delivery_url.endswith(f"/brands/{b}/coupons/{template.template_id}")
    assert await claim(benefits, b, "lv0", template.template_id) == "LEVEL_NOT_ELIGIBLE"
    benefits.members.set(b, "lv1", level=1)
    listed = await benefits.api.ListClaimableCoupons(pb.ListClaimableCouponsRequest(
        brand_id=b, account_id="lv1", placement=pb.COUPON_PLACEMENT_CHECKOUT))
    assert [t.template_id for t in listed.templates] == [template.template_id]
    none_for_shop = await benefits.api.ListClaimableCoupons(pb.ListClaimableCouponsRequest(
        brand_id=b, account_id="lv1", placement=pb.COUPON_PLACEMENT_SHOP_HOME))
    assert list(none_for_shop.templates) == []
    assert (await claim(benefits, b, "lv1", template.template_id)).startswith("cpn_")
    after = await benefits.api.ListClaimableCoupons(pb.ListClaimableCouponsRequest(
        brand_id=b, account_id="lv1"))
    assert list(after.templates) == []


async def test_issue_is_idempotent_and_closed_template_refuses(benefits: Benefits) -> None:
    """IssueCoupon with the same request_id issues once; a closed template issues no more."""
    b = brand()
    template = await benefits.template(b, stock=5, limit=5)
    request = pb.IssueCouponRequest(request_id="lottery:d1", brand_id=b, account_id="acc",
                                    coupon_template_id=template.template_id,
                                    reason_code="LOTTERY_PRIZE")
    first = await benefits.api.IssueCoupon(request)
    again = await benefits.api.IssueCoupon(request)
    assert first.coupon_id == again.coupon_id and first.expire_time.seconds > 0
    await benefits.admin.CloseCouponTemplate(pb.CloseCouponTemplateRequest(
        request_id=rid(), brand_id=b, template_id=template.template_id))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await benefits.api.IssueCoupon(pb.IssueCouponRequest(
            request_id=rid(), brand_id=b, account_id="acc",
            coupon_template_id=template.template_id))
    assert remote_error(caught.value).reason == "COUPON_NOT_AVAILABLE"


async def test_template_validation_names_the_field(benefits: Benefits) -> None:
    """Bad templates are refused with INVALID_ARGUMENT naming the offending field."""
    b = brand()
    cases = {
        "template.percent_off": pb.CouponTemplate(
            brand_id=b, title="x", kind=pb.COUPON_KIND_PERCENT_OFF, percent_off=120,
            valid_days=3, total_stock=1),
        "template.total_stock": pb.CouponTemplate(
            brand_id=b, title="x", kind=pb.COUPON_KIND_AMOUNT_OFF, amount_off_cents=100,
            valid_days=3),
        "template.valid_end_time": pb.CouponTemplate(
            brand_id=b, title="x", kind=pb.COUPON_KIND_AMOUNT_OFF, amount_off_cents=100,
            total_stock=3),
        "template.kind": pb.CouponTemplate(brand_id=b, title="x", total_stock=3),
    }
    for field, template in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await benefits.admin.CreateCouponTemplate(pb.CreateCouponTemplateRequest(
                request_id=rid(), template=template))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert remote_error(caught.value).metadata["field"] == field


async def test_stock_cannot_drop_below_issued(benefits: Benefits) -> None:
    """Updating a template's stock below what was issued is refused naming total_stock."""
    b = brand()
    template = await benefits.template(b, stock=3)
    for account in ("a", "b"):
        await claim(benefits, b, account, template.template_id)
    template.total_stock = 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await benefits.admin.UpdateCouponTemplate(pb.UpdateCouponTemplateRequest(
            request_id=rid(), template=template))
    assert remote_error(caught.value).metadata["field"] == "template.total_stock"
    template.total_stock = 10
    updated = await benefits.admin.UpdateCouponTemplate(pb.UpdateCouponTemplateRequest(
        request_id=rid(), template=template))
    assert (updated.template.total_stock, updated.template.issued_count) == (10, 2)

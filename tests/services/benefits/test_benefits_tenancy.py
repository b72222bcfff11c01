"""Every brand-scoped rpc of benefits, called as another brand, finds and changes nothing.

Brand A has a member with points (a ledger entry), a claimed coupon, a mall item and a
redemption, an earning rule and a gift pack; the member is a member of brand B too, so that
only the brand can be what is refused. Every BenefitsService and BenefitsAdminService rpc
whose request names a brand and one of A's objects (coupon template, ledger entry, mall item,
redemption, earning rule) is sent for brand B with A's ids: each must answer NOT_FOUND (or
refuse without touching anything). The member's balance, ledger, coupons and redemptions
read for B are empty, B's lists are empty, and A's ledger and stock are unchanged.
`test_every_brand_scoped_rpc_is_swept` keeps the sweep complete as rpcs are added.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from libs import contract
from libs.testing import ContractChannel
from tests.services.benefits.conftest import Benefits, brand, rid

SERVICES = ("brandclub.benefits.v1.BenefitsService", "brandclub.benefits.v1.BenefitsAdminService")
MEMBER = "acc_tenant"
ID_FIELDS = {"coupon_template_id", "template_id", "entry_id", "item_id", "redemption_id",
             "rule_id", "coupon_template_ids"}
# Member-scoped reads: for B they show none of A's data (checked below, generically).
MEMBER_READS = {"GetPointsBalance", "ListPointsEntries", "ListExpiringPoints",
                "CheckPointsLedger", "ListMemberCoupons", "ListClaimableCoupons",
                "GetCardOpeningGiftPack", "ListRedemptions", "ListPointsExpiringSoon"}
# Brand-scoped rpcs that name none of A's objects: they write in the brand they name
# (points granted or spent in B are B's, from B's zero), or read the brand's own settings.
OWN_BRAND = {"GrantPoints", "SpendPoints", "GetPointsPolicy", "ListTierMultipliers",
             "ListMallItems", "ListEarningRules", "ListCouponTemplates", "ListGiftPacks",
             "ListAllMallItems"}


def methods() -> list[MethodDescriptor]:
    return [m for name in SERVICES for m in contract.services()[name].methods]


def fields(method: MethodDescriptor) -> set[str]:
    return {f.name for f in method.input_type.fields}


def test_every_brand_scoped_rpc_is_swept() -> None:
    """Each rpc naming a brand names one of the swept ids, is a member read, or is listed."""
    scoped = {m.name for m in methods() if "brand_id" in fields(m)}
    generic = {m.name for m in methods() if "brand_id" in fields(m) and ID_FIELDS & fields(m)}
    assert scoped - generic == (MEMBER_READS | OWN_BRAND) & scoped
    assert scoped - generic - MEMBER_READS - OWN_BRAND == set()
    assert len(generic) >= 8


def request_for(method: MethodDescriptor, values: dict[str, Any]) -> Any:
    request: Any = message_factory.GetMessageClass(method.input_type)()
    for field in method.input_type.fields:
        if field.name not in values:
            continue
        value = values[field.name]
        if field.is_repeated:
            getattr(request, field.name).append(value)
        else:
            setattr(request, field.name, value)
    return request


async def test_another_brand_reaches_none_of_a_brands_objects(benefits: Benefits) -> None:
    """Brand B, given brand A's ids, is answered NOT_FOUND by every rpc that takes them, and
    reads nothing of the member's benefits in A; A's ledger and stock are unchanged."""
    brand_a, brand_b = brand(), brand()
    granted = await benefits.grant(brand_a, MEMBER, 500)
    template = await benefits.template(brand_a, stock=10, limit=5)
    await benefits.api.ClaimCoupon(pb.ClaimCouponRequest(
        request_id=rid(), brand_id=brand_a, account_id=MEMBER,
        coupon_template_id=template.template_id))
    item = (await benefits.admin.CreateMallItem(pb.CreateMallItemRequest(
        request_id=rid(), item=pb.MallItem(
            brand_id=brand_a, kind=pb.MALL_ITEM_KIND_COUPON, title="Coupon for points",
            price_points=100, stock_total=10, coupon_template_id=template.template_id,
            state=pb.MALL_ITEM_STATE_ON_SALE)))).item
    redemption = (await benefits.api.RedeemMallItem(pb.RedeemMallItemRequest(
        request_id=rid(), brand_id=brand_a, account_id=MEMBER, item_id=item.item_id,
        quantity=1))).redemption
    rule = (await benefits.admin.CreateEarningRule(pb.CreateEarningRuleRequest(
        request_id=rid(), rule=pb.EarningRule(
            brand_id=brand_a, trigger=pb.EARNING_TRIGGER_SIGN_IN, title="Sign-in",
            points=10, enabled=True)))).rule
    values = {"request_id": rid(), "brand_id": brand_b, "account_id": MEMBER,
              "coupon_template_id": template.template_id, "template_id": template.template_id,
              "coupon_template_ids": template.template_id, "entry_id": granted.entry.entry_id,
              "item_id": item.item_id, "redemption_id": redemption.redemption_id,
              "rule_id": rule.rule_id, "quantity": 1, "amount": 1, "reason_code": "PROBE",
              "within_days": 365, "tracking_number": "SF123",
              "status": pb.FULFILMENT_STATUS_SHIPPED}
    ledger = await benefits.db.fetch("SELECT * FROM points_entries ORDER BY entry_id")
    stock = await benefits.db.fetch("SELECT * FROM coupon_templates ORDER BY template_id")

    leaks: list[str] = []
    channel = ContractChannel(benefits.address, peer="benefits")
    try:
        for method in methods():
            if "brand_id" not in fields(method):
                continue
            call = channel.unary_unary(
                contract.full_method_name(method),
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=message_factory.GetMessageClass(
                    method.output_type).FromString)
            request = request_for(method, values)
            if ID_FIELDS & fields(method):
                try:
                    reply = await call(request, timeout=10)
                    shown = [f.name for f, _ in reply.ListFields()]
                    if method.name != "CheckCouponsIssuable" or any(
                            r.issuable for r in reply.results):
                        leaks.append(f"{method.name} with A's ids: OK {shown}")
                except grpc.aio.AioRpcError as error:
                    if error.code() not in (grpc.StatusCode.NOT_FOUND,
                                            grpc.StatusCode.FAILED_PRECONDITION):
                        leaks.append(f"{method.name}: {error.code().name} {error.details()}")
            elif method.name in MEMBER_READS:
                reply = await call(request, timeout=10)
                shown = [f.name for f, value in reply.ListFields()
                         if f.name not in ("next_page_token", "consistent", "brand_id",
                                           "account_id", "window_start_time",
                                           "window_end_time")]
                if shown:
                    leaks.append(f"{method.name} for B shows {shown}: {reply}")
    finally:
        await channel.close()
    assert not leaks, "\n".join(leaks)
    assert await benefits.db.fetch("SELECT * FROM points_entries WHERE brand_id = $1 "
                                   "ORDER BY entry_id", brand_a) == [
        r for r in ledger if r["brand_id"] == brand_a]
    assert await benefits.db.fetch("SELECT * FROM coupon_templates WHERE brand_id = $1 "
                                   "ORDER BY template_id", brand_a) == [
        r for r in stock if r["brand_id"] == brand_a]

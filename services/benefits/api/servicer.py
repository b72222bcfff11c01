"""gRPC servicers for benefits: protobuf <-> use cases, nothing else."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as pb_grpc
from libs.protoconv import timestamp
from services.benefits.api import convert as c
from services.benefits.domain.benefits import IssuedCoupon
from services.benefits.usecases import config, coupons, ledger, mall
from services.benefits.usecases.context import BenefitsContext
from services.benefits.usecases.ledger import BalanceView, Change

Ctx: TypeAlias = grpc.aio.ServicerContext


def balance_pb(view: BalanceView) -> pb.GetPointsBalanceResponse:
    balance = view.balance
    response = pb.GetPointsBalanceResponse(
        brand_id=balance.brand_id, account_id=balance.account_id,
        available_points=balance.available, pending_points=balance.pending,
        shortfall_points=balance.shortfall)
    if view.next_expiry is not None:
        response.next_expire_time.CopyFrom(timestamp(view.next_expiry[0]))
        response.next_expire_points = view.next_expiry[1]
    return response


def grant_pb(change: Change) -> pb.GrantPointsResponse:
    return pb.GrantPointsResponse(entry=c.entry_pb(change.entry),
                                  available_points=change.balance.available,
                                  pending_points=change.balance.pending)


def issued_pb(coupon: IssuedCoupon) -> pb.IssueCouponResponse:
    return pb.IssueCouponResponse(coupon_id=coupon.coupon_id,
                                  coupon_template_id=coupon.template.template_id,
                                  expire_time=timestamp(coupon.valid_end),
                                  coupon=c.coupon_pb(coupon))


def ledger_check_pb(checked: int, bad: list[ledger.Discrepancy]
                    ) -> pb.CheckPointsLedgerResponse:
    return pb.CheckPointsLedgerResponse(
        consistent=not bad, accounts_checked=checked,
        discrepancies=[pb.LedgerDiscrepancy(
            account_id=d.account_id, available_points=d.available, pending_points=d.pending,
            entries_available_sum=d.entries_available, entries_pending_sum=d.entries_pending,
            lots_remaining_sum=d.lots, shortfall_points=d.shortfall,
            entries_shortfall_sum=d.entries_shortfall) for d in bad])


class BenefitsServicer(pb_grpc.BenefitsServiceServicer):
    """Each rpc: the request's fields to one use case, its answer (or error) back. Which
    rpcs act for a member, and with which action, is the table in usecases/eligibility.py."""

    def __init__(self, app: BenefitsContext) -> None:
        self._app = app
        self._once = app.once

    async def GetPointsBalance(self, request: pb.GetPointsBalanceRequest,
                               context: Ctx) -> pb.GetPointsBalanceResponse:
        return balance_pb(await ledger.points_balance(self._app, request.brand_id,
                                                      request.account_id))

    async def GrantPoints(self, request: pb.GrantPointsRequest,
                          context: Ctx) -> pb.GrantPointsResponse:
        return await ledger.grant_points(
            self._app, self._once("GrantPoints", request, pb.GrantPointsResponse, grant_pb),
            brand_id=request.brand_id, account_id=request.account_id, amount=request.amount,
            reason_code=request.reason_code, source=c.source_in(request.source),
            request_id=request.request_id,
            available_at=c.time_or_none(request, "available_time"))

    async def SpendPoints(self, request: pb.SpendPointsRequest,
                          context: Ctx) -> pb.SpendPointsResponse:
        return await ledger.spend_points(
            self._app, self._once("SpendPoints", request, pb.SpendPointsResponse,
                                  lambda change: pb.SpendPointsResponse(
                                      entry=c.entry_pb(change.entry),
                                      available_points=change.balance.available)),
            brand_id=request.brand_id, account_id=request.account_id, amount=request.amount,
            reason_code=request.reason_code, source=c.source_in(request.source),
            request_id=request.request_id)

    async def ReversePointsEntry(self, request: pb.ReversePointsEntryRequest,
                                 context: Ctx) -> pb.ReversePointsEntryResponse:
        return await ledger.reverse_entry(
            self._app, self._once("ReversePointsEntry", request, pb.ReversePointsEntryResponse,
                                  lambda change: pb.ReversePointsEntryResponse(
                                      entry=c.entry_pb(change.entry),
                                      available_points=change.balance.available,
                                      pending_points=change.balance.pending)),
            brand_id=request.brand_id, entry_id=request.entry_id,
            reason_code=request.reason_code, request_id=request.request_id)

    async def IssueCoupon(self, request: pb.IssueCouponRequest,
                          context: Ctx) -> pb.IssueCouponResponse:
        return await coupons.issue(
            self._app, self._once("IssueCoupon", request, pb.IssueCouponResponse, issued_pb),
            brand_id=request.brand_id, account_id=request.account_id,
            template_id=request.coupon_template_id, reason_code=request.reason_code,
            request_id=request.request_id)

    async def CheckCouponsIssuable(self, request: pb.CheckCouponsIssuableRequest,
                                   context: Ctx) -> pb.CheckCouponsIssuableResponse:
        ids = list(request.coupon_template_ids)
        refusals = await coupons.check_issuable(self._app, request.brand_id,
                                                request.account_id, ids)
        return pb.CheckCouponsIssuableResponse(results=[
            pb.CouponIssuability(coupon_template_id=t, issuable=not refusals[t],
                                 reason=refusals[t]) for t in ids])

    async def ListPointsEntries(self, request: pb.ListPointsEntriesRequest,
                                context: Ctx) -> pb.ListPointsEntriesResponse:
        entries, token = await ledger.list_entries(self._app, request.brand_id,
                                                   request.account_id, request.page_size,
                                                   request.page_token)
        return pb.ListPointsEntriesResponse(entries=[c.entry_pb(e) for e in entries],
                                            next_page_token=token)

    async def ListExpiringPoints(self, request: pb.ListExpiringPointsRequest,
                                 context: Ctx) -> pb.ListExpiringPointsResponse:
        groups, token = await ledger.list_expiring(self._app, request.brand_id,
                                                   request.account_id, request.page_size,
                                                   request.page_token)
        return pb.ListExpiringPointsResponse(expiring=[
            pb.ExpiringPoints(expire_time=timestamp(when) if when else None, points=points)
            for when, points in groups], next_page_token=token)

    async def ListPointsExpiringSoon(self, request: pb.ListPointsExpiringSoonRequest,
                                     context: Ctx) -> pb.ListPointsExpiringSoonResponse:
        page = await ledger.points_expiring_soon(self._app, request.brand_id,
                                                 request.within_days, request.page_size,
                                                 request.page_token)
        return pb.ListPointsExpiringSoonResponse(
            accounts=[pb.AccountPointsExpiring(account_id=account, points=points,
                                               earliest_expire_time=timestamp(earliest))
                      for account, points, earliest in page.accounts],
            next_page_token=page.next_page_token,
            window_start_time=timestamp(page.window.start),
            window_end_time=timestamp(page.window.end))

    async def CheckPointsLedger(self, request: pb.CheckPointsLedgerRequest,
                                context: Ctx) -> pb.CheckPointsLedgerResponse:
        return ledger_check_pb(*await ledger.check_ledger(self._app, request.brand_id,
                                                          request.account_id))

    async def ClaimCoupon(self, request: pb.ClaimCouponRequest,
                          context: Ctx) -> pb.ClaimCouponResponse:
        return await coupons.claim(
            self._app, self._once("ClaimCoupon", request, pb.ClaimCouponResponse,
                                  lambda coupon: pb.ClaimCouponResponse(
                                      coupon=c.coupon_pb(coupon))),
            brand_id=request.brand_id, account_id=request.account_id,
            template_id=request.coupon_template_id, request_id=request.request_id)

    async def ListMemberCoupons(self, request: pb.ListMemberCouponsRequest,
                                context: Ctx) -> pb.ListMemberCouponsResponse:
        found, token = await coupons.list_member_coupons(
            self._app, request.brand_id, request.account_id, request.only_valid,
            request.page_size, request.page_token)
        return pb.ListMemberCouponsResponse(coupons=[c.coupon_pb(coupon) for coupon in found],
                                            next_page_token=token)

    async def ListClaimableCoupons(self, request: pb.ListClaimableCouponsRequest,
                                   context: Ctx) -> pb.ListClaimableCouponsResponse:
        placement = (None if request.placement == pb.COUPON_PLACEMENT_UNSPECIFIED
                     else c.enum_in(c.PLACEMENTS, request.placement, "placement"))
        templates, token = await coupons.list_claimable(
            self._app, request.brand_id, request.account_id, placement, request.page_size,
            request.page_token)
        return pb.ListClaimableCouponsResponse(templates=[c.template_pb(t) for t in templates],
                                               next_page_token=token)

    async def GetCardOpeningGiftPack(self, request: pb.GetCardOpeningGiftPackRequest,
                                     context: Ctx) -> pb.GetCardOpeningGiftPackResponse:
        pack, granted = await config.card_opening_gift_pack(self._app, request.brand_id,
                                                            request.account_id)
        return pb.GetCardOpeningGiftPackResponse(
            gift_pack=c.gift_pack_pb(pack) if pack else None, already_granted=granted)

    async def ListMallItems(self, request: pb.ListMallItemsRequest,
                            context: Ctx) -> pb.ListMallItemsResponse:
        items, token = await config.list_items(self._app, request.brand_id, True,
                                               request.page_size, request.page_token)
        return pb.ListMallItemsResponse(items=[c.item_pb(i) for i in items],
                                        next_page_token=token)

    async def RedeemMallItem(self, request: pb.RedeemMallItemRequest,
                             context: Ctx) -> pb.RedeemMallItemResponse:
        redemption = await mall.redeem(self._app, request_id=request.request_id,
                                       brand_id=request.brand_id,
                                       account_id=request.account_id, item_id=request.item_id,
                                       quantity=request.quantity,
                                       shipping_address=request.shipping_address)
        return pb.RedeemMallItemResponse(redemption=c.redemption_pb(redemption))

    async def GetRedemption(self, request: pb.GetRedemptionRequest,
                            context: Ctx) -> pb.GetRedemptionResponse:
        redemption = await mall.read_redemption(self._app, request.brand_id,
                                                request.redemption_id)
        return pb.GetRedemptionResponse(redemption=c.redemption_pb(redemption))

    async def ListRedemptions(self, request: pb.ListRedemptionsRequest,
                              context: Ctx) -> pb.ListRedemptionsResponse:
        redemptions, token = await mall.list_redemptions(self._app, request.brand_id,
                                                         request.account_id, request.page_size,
                                                         request.page_token)
        return pb.ListRedemptionsResponse(redemptions=[c.redemption_pb(r) for r in redemptions],
                                          next_page_token=token)


class BenefitsAdminServicer(pb_grpc.BenefitsAdminServiceServicer):
    """The brand's configuration: each rpc translated to one use case."""

    def __init__(self, app: BenefitsContext) -> None:
        self._app = app
        self._once = app.once

    async def GetPointsPolicy(self, request: pb.GetPointsPolicyRequest,
                              context: Ctx) -> pb.GetPointsPolicyResponse:
        policy = await config.get_policy(self._app, request.brand_id)
        return pb.GetPointsPolicyResponse(policy=c.policy_pb(policy))

    async def UpdatePointsPolicy(self, request: pb.UpdatePointsPolicyRequest,
                                 context: Ctx) -> pb.UpdatePointsPolicyResponse:
        return await config.update_policy(
            self._app, self._once("UpdatePointsPolicy", request, pb.UpdatePointsPolicyResponse,
                                  lambda p: pb.UpdatePointsPolicyResponse(
                                      policy=c.policy_pb(p))),
            c.policy_in(request.policy))

    async def CreateEarningRule(self, request: pb.CreateEarningRuleRequest,
                                context: Ctx) -> pb.CreateEarningRuleResponse:
        return await config.create_rule(
            self._app, self._once("CreateEarningRule", request, pb.CreateEarningRuleResponse,
                                  lambda r: pb.CreateEarningRuleResponse(rule=c.rule_pb(r))),
            c.rule_in(request.rule))

    async def UpdateEarningRule(self, request: pb.UpdateEarningRuleRequest,
                                context: Ctx) -> pb.UpdateEarningRuleResponse:
        return await config.update_rule(
            self._app, self._once("UpdateEarningRule", request, pb.UpdateEarningRuleResponse,
                                  lambda r: pb.UpdateEarningRuleResponse(rule=c.rule_pb(r))),
            c.rule_in(request.rule))

    async def GetEarningRule(self, request: pb.GetEarningRuleRequest,
                             context: Ctx) -> pb.GetEarningRuleResponse:
        rule = await config.get_rule(self._app, request.brand_id, request.rule_id)
        return pb.GetEarningRuleResponse(rule=c.rule_pb(rule))

    async def ListEarningRules(self, request: pb.ListEarningRulesRequest,
                               context: Ctx) -> pb.ListEarningRulesResponse:
        rules, token = await config.list_rules(self._app, request.brand_id, request.page_size,
                                               request.page_token)
        return pb.ListEarningRulesResponse(rules=[c.rule_pb(r) for r in rules],
                                           next_page_token=token)

    async def ListTierMultipliers(self, request: pb.ListTierMultipliersRequest,
                                  context: Ctx) -> pb.ListTierMultipliersResponse:
        multipliers, token = await config.list_multipliers(self._app, request.brand_id,
                                                           request.page_size,
                                                           request.page_token)
        return pb.ListTierMultipliersResponse(multipliers=[
            pb.TierMultiplier(level=level, multiplier_percent=percent)
            for level, percent in multipliers], next_page_token=token)

    async def CreateCouponTemplate(self, request: pb.CreateCouponTemplateRequest,
                                   context: Ctx) -> pb.CreateCouponTemplateResponse:
        return await config.create_template(
            self._app, self._once("CreateCouponTemplate", request,
                                  pb.CreateCouponTemplateResponse,
                                  lambda t: pb.CreateCouponTemplateResponse(
                                      template=c.template_pb(t))),
            c.template_in(request.template))

    async def UpdateCouponTemplate(self, request: pb.UpdateCouponTemplateRequest,
                                   context: Ctx) -> pb.UpdateCouponTemplateResponse:
        return await config.update_template(
            self._app, self._once("UpdateCouponTemplate", request,
                                  pb.UpdateCouponTemplateResponse,
                                  lambda t: pb.UpdateCouponTemplateResponse(
                                      template=c.template_pb(t))),
            c.template_in(request.template))

    async def CloseCouponTemplate(self, request: pb.CloseCouponTemplateRequest,
                                  context: Ctx) -> pb.CloseCouponTemplateResponse:
        return await config.close_template(
            self._app, self._once("CloseCouponTemplate", request,
                                  pb.CloseCouponTemplateResponse,
                                  lambda t: pb.CloseCouponTemplateResponse(
                                      template=c.template_pb(t))),
            request.brand_id, request.template_id)

    async def GetCouponTemplate(self, request: pb.GetCouponTemplateRequest,
                                context: Ctx) -> pb.GetCouponTemplateResponse:
        template = await config.read_template(self._app, request.brand_id,
                                              request.template_id)
        return pb.GetCouponTemplateResponse(template=c.template_pb(template))

    async def ListCouponTemplates(self, request: pb.ListCouponTemplatesRequest,
                                  context: Ctx) -> pb.ListCouponTemplatesResponse:
        templates, token = await config.list_templates(self._app, request.brand_id,
                                                       request.page_size, request.page_token)
        return pb.ListCouponTemplatesResponse(templates=[c.template_pb(t) for t in templates],
                                              next_page_token=token)

    async def CreateGiftPack(self, request: pb.CreateGiftPackRequest,
                             context: Ctx) -> pb.CreateGiftPackResponse:
        return await config.create_gift_pack(
            self._app, self._once("CreateGiftPack", request, pb.CreateGiftPackResponse,
                                  lambda p: pb.CreateGiftPackResponse(
                                      gift_pack=c.gift_pack_pb(p))),
            c.gift_pack_in(request.gift_pack))

    async def UpdateGiftPack(self, request: pb.UpdateGiftPackRequest,
                             context: Ctx) -> pb.UpdateGiftPackResponse:
        return await config.update_gift_pack(
            self._app, self._once("UpdateGiftPack", request, pb.UpdateGiftPackResponse,
                                  lambda p: pb.UpdateGiftPackResponse(
                                      gift_pack=c.gift_pack_pb(p))),
            c.gift_pack_in(request.gift_pack))

    async def ListGiftPacks(self, request: pb.ListGiftPacksRequest,
                            context: Ctx) -> pb.ListGiftPacksResponse:
        packs, token = await config.list_gift_packs(self._app, request.brand_id,
                                                    request.page_size, request.page_token)
        return pb.ListGiftPacksResponse(gift_packs=[c.gift_pack_pb(p) for p in packs],
                                        next_page_token=token)

    async def CreateMallItem(self, request: pb.CreateMallItemRequest,
                             context: Ctx) -> pb.CreateMallItemResponse:
        return await config.create_item(
            self._app, self._once("CreateMallItem", request, pb.CreateMallItemResponse,
                                  lambda i: pb.CreateMallItemResponse(item=c.item_pb(i))),
            c.item_in(request.item))

    async def UpdateMallItem(self, request: pb.UpdateMallItemRequest,
                             context: Ctx) -> pb.UpdateMallItemResponse:
        return await config.update_item(
            self._app, self._once("UpdateMallItem", request, pb.UpdateMallItemResponse,
                                  lambda i: pb.UpdateMallItemResponse(item=c.item_pb(i))),
            c.item_in(request.item))

    async def ListAllMallItems(self, request: pb.ListAllMallItemsRequest,
                               context: Ctx) -> pb.ListAllMallItemsResponse:
        items, token = await config.list_items(self._app, request.brand_id, False,
                                               request.page_size, request.page_token)
        return pb.ListAllMallItemsResponse(items=[c.item_pb(i) for i in items],
                                           next_page_token=token)

    async def UpdateFulfilment(self, request: pb.UpdateFulfilmentRequest,
                               context: Ctx) -> pb.UpdateFulfilmentResponse:
        status = c.enum_in(c.FULFILMENTS, request.status, "status")
        return await mall.update_fulfilment(
            self._app, self._once("UpdateFulfilment", request, pb.UpdateFulfilmentResponse,
                                  lambda r: pb.UpdateFulfilmentResponse(
                                      redemption=c.redemption_pb(r))),
            request.brand_id, request.redemption_id, status, request.tracking_number,
            request.request_id)

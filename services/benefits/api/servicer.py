"""gRPC servicers for benefits: protobuf <-> use cases, nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

import grpc

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as pb_grpc
from libs.db import Connection, Database
from libs.errors import Code, DomainError, InvalidArgument
from libs.idempotency import IdempotentExecutor
from libs.paging import decode_page_token, encode_page_token, page_size
from libs.protoconv import timestamp
from libs.sagas import is_transient
from services.benefits.api import convert as c
from services.benefits.domain.eligibility import Action, Membership
from services.benefits.ports import ActivitiesPort, MembershipPort
from services.benefits.usecases import config, coupons, ledger, mall, references
from services.benefits.usecases.eligibility import require_member
from services.benefits.usecases.ledger import Ledger

Ctx: TypeAlias = grpc.aio.ServicerContext


def _seq_page(token: str) -> int | None:
    position = decode_page_token(token, ("seq",))
    return int(position["seq"]) if position else None


def _after_page(token: str) -> str | None:
    position = decode_page_token(token, ("after",))
    return str(position["after"]) if position else None


def _next_seq(rows: Sequence[Any], limit: int, seq: int) -> str:
    return encode_page_token({"seq": seq}) if len(rows) == limit else ""


def _next_after(rows: Sequence[Any], limit: int, key: str) -> str:
    return encode_page_token({"after": key}) if len(rows) == limit else ""


def _expiring_window_of(position: dict[str, Any]) -> ledger.ExpiringWindow:
    try:
        start = datetime.fromisoformat(str(position["start"]))
        end = datetime.fromisoformat(str(position["end"]))
    except ValueError:
        raise InvalidArgument("page_token is not one this service issued", field="page_token",
                              reason="PAGE_TOKEN_INVALID") from None
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise InvalidArgument("page_token is not one this service issued", field="page_token",
                              reason="PAGE_TOKEN_INVALID")
    return ledger.ExpiringWindow(start, end)


# Every BenefitsService RPC acts for one member (gated by the eligibility rule, with the
# action it is) or is the brand's own bookkeeping (not gated, with why). A test holds this
# table to the contract, so a new RPC cannot skip the rule unnoticed.
MEMBER_ACTIONS: dict[str, Action] = {
    "GetPointsBalance": Action.READ_POINTS,
    "ListPointsEntries": Action.READ_POINTS,
    "ListExpiringPoints": Action.READ_POINTS,
    "GrantPoints": Action.EARN,
    "SpendPoints": Action.SPEND,
    "IssueCoupon": Action.ISSUE_COUPON,
    "ClaimCoupon": Action.CLAIM_COUPON,
    "ListClaimableCoupons": Action.READ_OFFERS,
    "GetCardOpeningGiftPack": Action.READ_OFFERS,   # when it names a member
    "ListMemberCoupons": Action.READ_HOLDINGS,
    "RedeemMallItem": Action.REDEEM,
    "ListRedemptions": Action.READ_HOLDINGS,        # when it names a member
}
NOT_MEMBER_SCOPED: dict[str, str] = {
    "ReversePointsEntry": "a compensation or refund of an earlier entry lands even after the "
                          "member left",
    "ListPointsExpiringSoon": "brand-wide list for journeys",
    "CheckPointsLedger": "brand bookkeeping",
    "ListMallItems": "the brand's catalogue",
    "GetRedemption": "the brand's fulfilment of a redemption already made",
    "CheckCouponsIssuable": "takes nothing; a member the issue would refuse is answered "
                            "not issuable with the refusal's reason",
}


class BenefitsServicer(pb_grpc.BenefitsServiceServicer):
    def __init__(self, db: Database, membership: MembershipPort) -> None:
        self._db = db
        self._idempotent = IdempotentExecutor(db)
        self._membership = membership

    async def _member(self, method: str, brand_id: str, account_id: str) -> Membership:
        return await require_member(self._membership, MEMBER_ACTIONS[method], brand_id,
                                    account_id)

    async def GetPointsBalance(self, request: pb.GetPointsBalanceRequest,
                               context: Ctx) -> pb.GetPointsBalanceResponse:
        await self._member("GetPointsBalance", request.brand_id, request.account_id)
        async with self._db.connection() as conn:
            balance = await ledger.get_balance(conn, request.brand_id, request.account_id)
            expiring = await ledger.expiring_points(conn, request.brand_id, request.account_id)
        response = pb.GetPointsBalanceResponse(
            brand_id=balance.brand_id, account_id=balance.account_id,
            available_points=balance.available, pending_points=balance.pending,
            shortfall_points=balance.shortfall)
        if expiring and expiring[0][0] is not None:
            response.next_expire_time.CopyFrom(timestamp(expiring[0][0]))
            response.next_expire_points = expiring[0][1]
        return response

    async def GrantPoints(self, request: pb.GrantPointsRequest,
                          context: Ctx) -> pb.GrantPointsResponse:
        source = c.source_in(request.source)
        available_at = c.time_or_none(request, "available_time")
        await self._member("GrantPoints", request.brand_id, request.account_id)

        async def work(conn: Connection) -> pb.GrantPointsResponse:
            change = await Ledger(conn).grant(
                request.brand_id, request.account_id, request.amount,
                reason_code=request.reason_code, source=source, request_id=request.request_id,
                available_at=available_at)
            return pb.GrantPointsResponse(entry=c.entry_pb(change.entry),
                                          available_points=change.balance.available,
                                          pending_points=change.balance.pending)

        return await self._idempotent.run("GrantPoints", request, pb.GrantPointsResponse, work)

    async def SpendPoints(self, request: pb.SpendPointsRequest,
                          context: Ctx) -> pb.SpendPointsResponse:
        source = c.source_in(request.source)
        await self._member("SpendPoints", request.brand_id, request.account_id)

        async def work(conn: Connection) -> pb.SpendPointsResponse:
            change = await Ledger(conn).spend(
                request.brand_id, request.account_id, request.amount,
                reason_code=request.reason_code, source=source, request_id=request.request_id)
            return pb.SpendPointsResponse(entry=c.entry_pb(change.entry),
                                          available_points=change.balance.available)

        return await self._idempotent.run("SpendPoints", request, pb.SpendPointsResponse, work)

    async def ReversePointsEntry(self, request: pb.ReversePointsEntryRequest,
                                 context: Ctx) -> pb.ReversePointsEntryResponse:
        async def work(conn: Connection) -> pb.ReversePointsEntryResponse:
            change = await Ledger(conn).reverse(request.brand_id, request.entry_id,
                                                reason_code=request.reason_code,
                                                request_id=request.request_id)
            return pb.ReversePointsEntryResponse(entry=c.entry_pb(change.entry),
                                                 available_points=change.balance.available,
                                                 pending_points=change.balance.pending)

        return await self._idempotent.run("ReversePointsEntry", request,
                                          pb.ReversePointsEntryResponse, work)

    async def IssueCoupon(self, request: pb.IssueCouponRequest,
                          context: Ctx) -> pb.IssueCouponResponse:
        await self._member("IssueCoupon", request.brand_id, request.account_id)

        async def work(conn: Connection) -> pb.IssueCouponResponse:
            coupon = await coupons.issue_coupon(
                conn, request.brand_id, request.account_id, request.coupon_template_id,
                source="issue", reason_code=request.reason_code, request_id=request.request_id,
                level=None)
            return pb.IssueCouponResponse(coupon_id=coupon.coupon_id,
                                          coupon_template_id=coupon.template.template_id,
                                          expire_time=timestamp(coupon.valid_end),
                                          coupon=c.coupon_pb(coupon))

        return await self._idempotent.run("IssueCoupon", request, pb.IssueCouponResponse, work)

    async def CheckCouponsIssuable(self, request: pb.CheckCouponsIssuableRequest,
                                   context: Ctx) -> pb.CheckCouponsIssuableResponse:
        ids = list(request.coupon_template_ids)
        try:
            await self._member("IssueCoupon", request.brand_id, request.account_id)
        except DomainError as refused:  # IssueCoupon would refuse every one of them
            if refused.code is Code.INVALID_ARGUMENT or is_transient(refused):
                raise
            refusals = {template_id: refused.reason for template_id in ids}
        else:
            async with self._db.connection() as conn:
                refusals = await coupons.coupon_refusals(conn, request.brand_id,
                                                         request.account_id, ids)
        return pb.CheckCouponsIssuableResponse(results=[
            pb.CouponIssuability(coupon_template_id=t, issuable=not refusals[t],
                                 reason=refusals[t]) for t in ids])

    async def ListPointsEntries(self, request: pb.ListPointsEntriesRequest,
                                context: Ctx) -> pb.ListPointsEntriesResponse:
        limit = page_size(request.page_size)
        await self._member("ListPointsEntries", request.brand_id, request.account_id)
        async with self._db.connection() as conn:
            entries = await ledger.history(conn, request.brand_id, request.account_id,
                                           _seq_page(request.page_token), limit)
        return pb.ListPointsEntriesResponse(
            entries=[c.entry_pb(e) for e in entries],
            next_page_token=_next_seq(entries, limit, entries[-1].seq if entries else 0))

    async def ListExpiringPoints(self, request: pb.ListExpiringPointsRequest,
                                 context: Ctx) -> pb.ListExpiringPointsResponse:
        await self._member("ListExpiringPoints", request.brand_id, request.account_id)
        async with self._db.connection() as conn:
            rows = await ledger.expiring_points(conn, request.brand_id, request.account_id)
        return pb.ListExpiringPointsResponse(expiring=[
            pb.ExpiringPoints(expire_time=timestamp(when) if when else None, points=points)
            for when, points in rows])

    async def ListPointsExpiringSoon(self, request: pb.ListPointsExpiringSoonRequest,
                                     context: Ctx) -> pb.ListPointsExpiringSoonResponse:
        limit = page_size(request.page_size)
        position = decode_page_token(request.page_token, ("after", "start", "end"))
        if position is None:
            window = ledger.expiring_window(request.within_days, ledger.now_utc())
            after = ""
        else:
            window = _expiring_window_of(position)
            after = str(position["after"])
        async with self._db.connection() as conn:
            rows = await ledger.points_expiring_soon(conn, request.brand_id, window, after,
                                                     limit)
        next_token = ""
        if len(rows) == limit:
            next_token = encode_page_token({"after": rows[-1][0],
                                            "start": window.start.isoformat(),
                                            "end": window.end.isoformat()})
        return pb.ListPointsExpiringSoonResponse(
            accounts=[pb.AccountPointsExpiring(account_id=account, points=points,
                                               earliest_expire_time=timestamp(earliest))
                      for account, points, earliest in rows],
            next_page_token=next_token, window_start_time=timestamp(window.start),
            window_end_time=timestamp(window.end))

    async def CheckPointsLedger(self, request: pb.CheckPointsLedgerRequest,
                                context: Ctx) -> pb.CheckPointsLedgerResponse:
        async with self._db.connection() as conn:
            checked, bad = await ledger.check_ledger(conn, request.brand_id, request.account_id)
        return pb.CheckPointsLedgerResponse(
            consistent=not bad, accounts_checked=checked,
            discrepancies=[pb.LedgerDiscrepancy(
                account_id=d.account_id, available_points=d.available,
                pending_points=d.pending, entries_available_sum=d.entries_available,
                entries_pending_sum=d.entries_pending, lots_remaining_sum=d.lots,
                shortfall_points=d.shortfall, entries_shortfall_sum=d.entries_shortfall)
                for d in bad])

    async def ClaimCoupon(self, request: pb.ClaimCouponRequest,
                          context: Ctx) -> pb.ClaimCouponResponse:
        member = await self._member("ClaimCoupon", request.brand_id, request.account_id)

        async def work(conn: Connection) -> pb.ClaimCouponResponse:
            coupon = await coupons.issue_coupon(
                conn, request.brand_id, request.account_id, request.coupon_template_id,
                source="claim", reason_code="CLAIMED", request_id=request.request_id,
                level=member.level)
            return pb.ClaimCouponResponse(coupon=c.coupon_pb(coupon))

        return await self._idempotent.run("ClaimCoupon", request, pb.ClaimCouponResponse, work)

    async def ListMemberCoupons(self, request: pb.ListMemberCouponsRequest,
                                context: Ctx) -> pb.ListMemberCouponsResponse:
        limit = page_size(request.page_size)
        await self._member("ListMemberCoupons", request.brand_id, request.account_id)
        async with self._db.connection() as conn:
            rows = await coupons.member_coupons(conn, request.brand_id, request.account_id,
                                                request.only_valid,
                                                _seq_page(request.page_token), limit)
        return pb.ListMemberCouponsResponse(
            coupons=[c.coupon_pb(coupon) for _, coupon in rows],
            next_page_token=_next_seq(rows, limit, rows[-1][0] if rows else 0))

    async def ListClaimableCoupons(self, request: pb.ListClaimableCouponsRequest,
                                   context: Ctx) -> pb.ListClaimableCouponsResponse:
        placement = (None if request.placement == pb.COUPON_PLACEMENT_UNSPECIFIED
                     else c.enum_in(c.PLACEMENTS, request.placement, "placement"))
        member = await self._member("ListClaimableCoupons", request.brand_id,
                                    request.account_id)
        async with self._db.connection() as conn:
            templates = await coupons.claimable_coupons(conn, request.brand_id,
                                                        request.account_id, member.level,
                                                        placement)
        return pb.ListClaimableCouponsResponse(templates=[c.template_pb(t) for t in templates])

    async def GetCardOpeningGiftPack(self, request: pb.GetCardOpeningGiftPackRequest,
                                     context: Ctx) -> pb.GetCardOpeningGiftPackResponse:
        if request.account_id:
            await self._member("GetCardOpeningGiftPack", request.brand_id, request.account_id)
        async with self._db.connection() as conn:
            pack, granted = await config.card_opening_gift_pack(conn, request.brand_id,
                                                                request.account_id)
        return pb.GetCardOpeningGiftPackResponse(
            gift_pack=c.gift_pack_pb(pack) if pack else None, already_granted=granted)

    async def ListMallItems(self, request: pb.ListMallItemsRequest,
                            context: Ctx) -> pb.ListMallItemsResponse:
        limit = page_size(request.page_size)
        async with self._db.connection() as conn:
            items = await config.list_items(conn, request.brand_id, True,
                                            _after_page(request.page_token), limit)
        return pb.ListMallItemsResponse(
            items=[c.item_pb(i) for i in items],
            next_page_token=_next_after(items, limit, items[-1].item_id if items else ""))

    async def RedeemMallItem(self, request: pb.RedeemMallItemRequest,
                             context: Ctx) -> pb.RedeemMallItemResponse:
        member = await self._member("RedeemMallItem", request.brand_id, request.account_id)
        redemption = await mall.start(self._db, request_id=request.request_id,
                                      brand_id=request.brand_id,
                                      account_id=request.account_id, item_id=request.item_id,
                                      quantity=request.quantity,
                                      shipping_address=request.shipping_address,
                                      level=member.level)
        return pb.RedeemMallItemResponse(redemption=c.redemption_pb(redemption))

    async def GetRedemption(self, request: pb.GetRedemptionRequest,
                            context: Ctx) -> pb.GetRedemptionResponse:
        async with self._db.connection() as conn:
            redemption = await mall.get(conn, request.brand_id, request.redemption_id)
        return pb.GetRedemptionResponse(redemption=c.redemption_pb(redemption))

    async def ListRedemptions(self, request: pb.ListRedemptionsRequest,
                              context: Ctx) -> pb.ListRedemptionsResponse:
        limit = page_size(request.page_size)
        if request.account_id:
            await self._member("ListRedemptions", request.brand_id, request.account_id)
        async with self._db.connection() as conn:
            rows = await mall.list_redemptions(conn, request.brand_id, request.account_id,
                                               _seq_page(request.page_token), limit)
        return pb.ListRedemptionsResponse(
            redemptions=[c.redemption_pb(r) for _, r in rows],
            next_page_token=_next_seq(rows, limit, rows[-1][0] if rows else 0))


class BenefitsAdminServicer(pb_grpc.BenefitsAdminServiceServicer):
    def __init__(self, db: Database, activities: ActivitiesPort) -> None:
        self._db = db
        self._idempotent = IdempotentExecutor(db)
        self._activities = activities

    async def GetPointsPolicy(self, request: pb.GetPointsPolicyRequest,
                              context: Ctx) -> pb.GetPointsPolicyResponse:
        async with self._db.connection() as conn:
            policy = await config.get_policy(conn, request.brand_id)
        return pb.GetPointsPolicyResponse(policy=c.policy_pb(policy))

    async def UpdatePointsPolicy(self, request: pb.UpdatePointsPolicyRequest,
                                 context: Ctx) -> pb.UpdatePointsPolicyResponse:
        policy = c.policy_in(request.policy)

        async def work(conn: Connection) -> pb.UpdatePointsPolicyResponse:
            return pb.UpdatePointsPolicyResponse(
                policy=c.policy_pb(await config.update_policy(conn, policy)))

        return await self._idempotent.run("UpdatePointsPolicy", request,
                                          pb.UpdatePointsPolicyResponse, work)

    async def CreateEarningRule(self, request: pb.CreateEarningRuleRequest,
                                context: Ctx) -> pb.CreateEarningRuleResponse:
        rule = c.rule_in(request.rule)
        await references.check_rule_references(self._activities, rule)

        async def work(conn: Connection) -> pb.CreateEarningRuleResponse:
            return pb.CreateEarningRuleResponse(
                rule=c.rule_pb(await config.create_rule(conn, rule)))

        return await self._idempotent.run("CreateEarningRule", request,
                                          pb.CreateEarningRuleResponse, work)

    async def UpdateEarningRule(self, request: pb.UpdateEarningRuleRequest,
                                context: Ctx) -> pb.UpdateEarningRuleResponse:
        rule = c.rule_in(request.rule)
        await references.check_rule_references(self._activities, rule)

        async def work(conn: Connection) -> pb.UpdateEarningRuleResponse:
            return pb.UpdateEarningRuleResponse(
                rule=c.rule_pb(await config.update_rule(conn, rule)))

        return await self._idempotent.run("UpdateEarningRule", request,
                                          pb.UpdateEarningRuleResponse, work)

    async def GetEarningRule(self, request: pb.GetEarningRuleRequest,
                             context: Ctx) -> pb.GetEarningRuleResponse:
        async with self._db.connection() as conn:
            rule = await config.get_rule(conn, request.brand_id, request.rule_id)
        return pb.GetEarningRuleResponse(rule=c.rule_pb(rule))

    async def ListEarningRules(self, request: pb.ListEarningRulesRequest,
                               context: Ctx) -> pb.ListEarningRulesResponse:
        limit = page_size(request.page_size)
        async with self._db.connection() as conn:
            rules = await config.list_rules(conn, request.brand_id,
                                            _after_page(request.page_token), limit)
        return pb.ListEarningRulesResponse(
            rules=[c.rule_pb(r) for r in rules],
            next_page_token=_next_after(rules, limit, rules[-1].rule_id if rules else ""))

    async def ListTierMultipliers(self, request: pb.ListTierMultipliersRequest,
                                  context: Ctx) -> pb.ListTierMultipliersResponse:
        async with self._db.connection() as conn:
            saved = await config.list_multipliers(conn, request.brand_id)
        return pb.ListTierMultipliersResponse(multipliers=[
            pb.TierMultiplier(level=level, multiplier_percent=percent)
            for level, percent in saved.items()])

    async def CreateCouponTemplate(self, request: pb.CreateCouponTemplateRequest,
                                   context: Ctx) -> pb.CreateCouponTemplateResponse:
        template = c.template_in(request.template)

        async def work(conn: Connection) -> pb.CreateCouponTemplateResponse:
            return pb.CreateCouponTemplateResponse(
                template=c.template_pb(await config.create_template(conn, template)))

        return await self._idempotent.run("CreateCouponTemplate", request,
                                          pb.CreateCouponTemplateResponse, work)

    async def UpdateCouponTemplate(self, request: pb.UpdateCouponTemplateRequest,
                                   context: Ctx) -> pb.UpdateCouponTemplateResponse:
        template = c.template_in(request.template)

        async def work(conn: Connection) -> pb.UpdateCouponTemplateResponse:
            return pb.UpdateCouponTemplateResponse(
                template=c.template_pb(await config.update_template(conn, template)))

        return await self._idempotent.run("UpdateCouponTemplate", request,
                                          pb.UpdateCouponTemplateResponse, work)

    async def CloseCouponTemplate(self, request: pb.CloseCouponTemplateRequest,
                                  context: Ctx) -> pb.CloseCouponTemplateResponse:
        async def work(conn: Connection) -> pb.CloseCouponTemplateResponse:
            return pb.CloseCouponTemplateResponse(template=c.template_pb(
                await config.close_template(conn, request.brand_id, request.template_id)))

        return await self._idempotent.run("CloseCouponTemplate", request,
                                          pb.CloseCouponTemplateResponse, work)

    async def GetCouponTemplate(self, request: pb.GetCouponTemplateRequest,
                                context: Ctx) -> pb.GetCouponTemplateResponse:
        async with self._db.connection() as conn:
            template = await config.get_template(conn, request.brand_id, request.template_id)
        return pb.GetCouponTemplateResponse(template=c.template_pb(template))

    async def ListCouponTemplates(self, request: pb.ListCouponTemplatesRequest,
                                  context: Ctx) -> pb.ListCouponTemplatesResponse:
        limit = page_size(request.page_size)
        async with self._db.connection() as conn:
            templates = await config.list_templates(conn, request.brand_id,
                                                    _after_page(request.page_token), limit)
        return pb.ListCouponTemplatesResponse(
            templates=[c.template_pb(t) for t in templates],
            next_page_token=_next_after(templates, limit,
                                        templates[-1].template_id if templates else ""))

    async def CreateGiftPack(self, request: pb.CreateGiftPackRequest,
                             context: Ctx) -> pb.CreateGiftPackResponse:
        pack = c.gift_pack_in(request.gift_pack)

        async def work(conn: Connection) -> pb.CreateGiftPackResponse:
            return pb.CreateGiftPackResponse(
                gift_pack=c.gift_pack_pb(await config.create_gift_pack(conn, pack)))

        return await self._idempotent.run("CreateGiftPack", request,
                                          pb.CreateGiftPackResponse, work)

    async def UpdateGiftPack(self, request: pb.UpdateGiftPackRequest,
                             context: Ctx) -> pb.UpdateGiftPackResponse:
        pack = c.gift_pack_in(request.gift_pack)

        async def work(conn: Connection) -> pb.UpdateGiftPackResponse:
            return pb.UpdateGiftPackResponse(
                gift_pack=c.gift_pack_pb(await config.update_gift_pack(conn, pack)))

        return await self._idempotent.run("UpdateGiftPack", request,
                                          pb.UpdateGiftPackResponse, work)

    async def ListGiftPacks(self, request: pb.ListGiftPacksRequest,
                            context: Ctx) -> pb.ListGiftPacksResponse:
        limit = page_size(request.page_size)
        async with self._db.connection() as conn:
            packs = await config.list_gift_packs(conn, request.brand_id,
                                                 _after_page(request.page_token), limit)
        return pb.ListGiftPacksResponse(
            gift_packs=[c.gift_pack_pb(p) for p in packs],
            next_page_token=_next_after(packs, limit, packs[-1].gift_pack_id if packs else ""))

    async def CreateMallItem(self, request: pb.CreateMallItemRequest,
                             context: Ctx) -> pb.CreateMallItemResponse:
        item = c.item_in(request.item)

        async def work(conn: Connection) -> pb.CreateMallItemResponse:
            return pb.CreateMallItemResponse(
                item=c.item_pb(await config.create_item(conn, item)))

        return await self._idempotent.run("CreateMallItem", request,
                                          pb.CreateMallItemResponse, work)

    async def UpdateMallItem(self, request: pb.UpdateMallItemRequest,
                             context: Ctx) -> pb.UpdateMallItemResponse:
        item = c.item_in(request.item)

        async def work(conn: Connection) -> pb.UpdateMallItemResponse:
            return pb.UpdateMallItemResponse(
                item=c.item_pb(await config.update_item(conn, item)))

        return await self._idempotent.run("UpdateMallItem", request,
                                          pb.UpdateMallItemResponse, work)

    async def ListAllMallItems(self, request: pb.ListAllMallItemsRequest,
                               context: Ctx) -> pb.ListAllMallItemsResponse:
        limit = page_size(request.page_size)
        async with self._db.connection() as conn:
            items = await config.list_items(conn, request.brand_id, False,
                                            _after_page(request.page_token), limit)
        return pb.ListAllMallItemsResponse(
            items=[c.item_pb(i) for i in items],
            next_page_token=_next_after(items, limit, items[-1].item_id if items else ""))

    async def UpdateFulfilment(self, request: pb.UpdateFulfilmentRequest,
                               context: Ctx) -> pb.UpdateFulfilmentResponse:
        status = c.enum_in(c.FULFILMENTS, request.status, "status")

        async def work(conn: Connection) -> pb.UpdateFulfilmentResponse:
            redemption = await mall.update_fulfilment(
                conn, request.brand_id, request.redemption_id, status,
                request.tracking_number, request.request_id)
            return pb.UpdateFulfilmentResponse(redemption=c.redemption_pb(redemption))

        return await self._idempotent.run("UpdateFulfilment", request,
                                          pb.UpdateFulfilmentResponse, work)

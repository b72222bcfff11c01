"""A stand-in for the benefits service (another team's process) and a controllable clock.

The stand-in keeps its own ledger in memory, dedupes on request_id like the real contract, and
can be told to fail: to refuse spends, or to apply a spend and then lose the answer.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from brandclub.benefits.v1 import benefits_service_pb2 as bpb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as bgrpc
from libs.errors import DomainError, FailedPrecondition, NotFound
from libs.grpc_server import domain_status


@dataclass
class Entry:
    entry_id: str
    brand_id: str
    account_id: str
    amount: int
    reason_code: str
    request_id: str
    reverses: str = ""


@dataclass
class StandInBenefits(bgrpc.BenefitsServiceServicer):
    balances: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    entries: dict[str, Entry] = field(default_factory=dict)
    answers: dict[tuple[str, str], Any] = field(default_factory=dict)
    coupons: list[tuple[str, str, str]] = field(default_factory=list)
    # Apply this many spends, then answer UNAVAILABLE as if the reply was lost.
    lose_spend_answers: int = 0
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Failure injection per RPC name ("IssueCoupon", "GrantPoints", "SpendPoints",
    # "ReversePointsEntry"): every call answers this error until it is removed; a spend
    # failing this way is not applied.
    failures: dict[str, DomainError] = field(default_factory=dict)
    # coupon template id -> why CheckCouponsIssuable calls it not issuable.
    coupon_refusals: dict[str, str] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def entries_of(self, account_id: str, reason_code: str | None = None) -> list[Entry]:
        return [e for e in self.entries.values() if e.account_id == account_id
                and (reason_code is None or e.reason_code == reason_code)]

    def entries_of_reason(self, reason_code: str) -> list[Entry]:
        return [e for e in self.entries.values() if e.reason_code == reason_code]

    def record_spend(self, brand_id: str, account_id: str, amount: int, reason: str,
                     request_id: str) -> Entry:
        """A spend applied earlier (as if a caller made it and then crashed)."""
        entry = self._entry(brand_id, account_id, -amount, reason, request_id)
        self.answers[("SpendPoints", request_id)] = bpb.SpendPointsResponse(
            entry=self._pb(entry), available_points=self.balances[(brand_id, account_id)])
        return entry

    def net_spent(self, account_id: str) -> int:
        """Points taken by spends minus what reversals gave back."""
        return -sum(e.amount for e in self.entries.values()
                    if e.account_id == account_id and e.reason_code in (
                        "LOTTERY_DRAW_COST", "LOTTERY_DRAW_NOT_HAPPENED",
                        "LOTTERY_PRIZE_NOT_DELIVERED",
                        "MAKE_UP_SIGN_IN_COST", "MAKE_UP_SIGN_IN_NOT_RECORDED"))

    def _entry(self, brand_id: str, account_id: str, amount: int, reason: str,
               request_id: str, reverses: str = "") -> Entry:
        entry = Entry(f"ent_{next(self._ids)}", brand_id, account_id, amount, reason,
                      request_id, reverses)
        self.entries[entry.entry_id] = entry
        self.balances[(brand_id, account_id)] += amount
        return entry

    async def _fail(self, method: str, context: grpc.aio.ServicerContext) -> None:
        failure = self.failures.get(method)
        if failure is not None:
            await context.abort_with_status(domain_status(failure, "benefits"))

    def _pb(self, entry: Entry) -> bpb.PointsEntry:
        return bpb.PointsEntry(entry_id=entry.entry_id, brand_id=entry.brand_id,
                               account_id=entry.account_id, amount=entry.amount,
                               reason_code=entry.reason_code, request_id=entry.request_id,
                               reverses_entry_id=entry.reverses)

    async def GrantPoints(self, request: bpb.GrantPointsRequest,
                          context: grpc.aio.ServicerContext) -> bpb.GrantPointsResponse:
        self.calls["GrantPoints"] += 1
        await self._fail("GrantPoints", context)
        key = ("GrantPoints", request.request_id)
        if key not in self.answers:
            entry = self._entry(request.brand_id, request.account_id, request.amount,
                                request.reason_code, request.request_id)
            self.answers[key] = bpb.GrantPointsResponse(
                entry=self._pb(entry),
                available_points=self.balances[(request.brand_id, request.account_id)])
        return self.answers[key]  # type: ignore[no-any-return]

    async def SpendPoints(self, request: bpb.SpendPointsRequest,
                          context: grpc.aio.ServicerContext) -> bpb.SpendPointsResponse:
        self.calls["SpendPoints"] += 1
        await self._fail("SpendPoints", context)
        key = ("SpendPoints", request.request_id)
        if key not in self.answers:
            balance = self.balances[(request.brand_id, request.account_id)]
            if balance < request.amount:
                await context.abort_with_status(domain_status(FailedPrecondition(
                    "not enough points", reason="INSUFFICIENT_POINTS"), "benefits"))
            entry = self._entry(request.brand_id, request.account_id, -request.amount,
                                request.reason_code, request.request_id)
            self.answers[key] = bpb.SpendPointsResponse(
                entry=self._pb(entry),
                available_points=self.balances[(request.brand_id, request.account_id)])
        if self.lose_spend_answers > 0:  # applied (now or before), but the answer is lost
            self.lose_spend_answers -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "reply lost")
        return self.answers[key]  # type: ignore[no-any-return]

    async def ReversePointsEntry(self, request: bpb.ReversePointsEntryRequest,
                                 context: grpc.aio.ServicerContext
                                 ) -> bpb.ReversePointsEntryResponse:
        self.calls["ReversePointsEntry"] += 1
        await self._fail("ReversePointsEntry", context)
        key = ("ReversePointsEntry", request.request_id)
        if key not in self.answers:
            original = self.entries.get(request.entry_id)
            if original is None:
                await context.abort_with_status(domain_status(NotFound(
                    "no such entry", reason="ENTRY_NOT_FOUND"), "benefits"))
            assert original is not None
            entry = self._entry(original.brand_id, original.account_id, -original.amount,
                                request.reason_code, request.request_id, original.entry_id)
            self.answers[key] = bpb.ReversePointsEntryResponse(
                entry=self._pb(entry),
                available_points=self.balances[(original.brand_id, original.account_id)])
        return self.answers[key]  # type: ignore[no-any-return]

    async def IssueCoupon(self, request: bpb.IssueCouponRequest,
                          context: grpc.aio.ServicerContext) -> bpb.IssueCouponResponse:
        self.calls["IssueCoupon"] += 1
        await self._fail("IssueCoupon", context)
        key = ("IssueCoupon", request.request_id)
        if key not in self.answers:
            coupon_id = f"cpn_{next(self._ids)}"
            self.coupons.append((request.account_id, request.coupon_template_id,
                                 request.reason_code))
            self.answers[key] = bpb.IssueCouponResponse(
                coupon_id=coupon_id, coupon_template_id=request.coupon_template_id)
        return self.answers[key]  # type: ignore[no-any-return]

    async def CheckCouponsIssuable(self, request: bpb.CheckCouponsIssuableRequest,
                                   context: grpc.aio.ServicerContext
                                   ) -> bpb.CheckCouponsIssuableResponse:
        self.calls["CheckCouponsIssuable"] += 1
        await self._fail("CheckCouponsIssuable", context)
        return bpb.CheckCouponsIssuableResponse(results=[
            bpb.CouponIssuability(coupon_template_id=t,
                                  issuable=not self.coupon_refusals.get(t),
                                  reason=self.coupon_refusals.get(t, ""))
            for t in request.coupon_template_ids])


class StandInBenefitsAdmin(bgrpc.BenefitsAdminServiceServicer):
    """The configuration side of the stand-in: every coupon template a test names exists (the
    check of saved references is tested against the real benefits service, in
    tests/services/test_config_references.py)."""

    async def GetCouponTemplate(self, request: bpb.GetCouponTemplateRequest,
                                context: grpc.aio.ServicerContext
                                ) -> bpb.GetCouponTemplateResponse:
        return bpb.GetCouponTemplateResponse(template=bpb.CouponTemplate(
            brand_id=request.brand_id, template_id=request.template_id))


class FakeClock:
    """Now is whatever the test says; with `tick`, every reading moves it forward."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
        self.tick = timedelta(0)

    def __call__(self) -> datetime:
        current = self.now
        self.now = current + self.tick
        return current

    def advance(self, delta: timedelta) -> None:
        self.now += delta

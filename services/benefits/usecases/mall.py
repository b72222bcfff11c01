"""The points mall: redemption as a saga with a state per step.

started --spend--> points_spent --take stock + issue--> completed
   |                    |
   +--(too few points)--+--(step fails: out of stock, item withdrawn)--> failed (points back)

Each step is one transaction that locks the redemption row, checks its state, applies its
effect and moves the state together; so a crash between steps leaves a state that says exactly
what was done, and `drive` (called by the request, or by the recovery loop after a crash)
carries the redemption on from there. Nothing is applied twice: a step finds its state already
moved, and the ledger spend is keyed by the redemption.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace
from datetime import datetime, timedelta

from brandclub.events.v1 import benefits_events_pb2
from libs.clock import Clock, system_clock
from libs.db import Connection, Database
from libs.errors import DomainError, FailedPrecondition, InvalidArgument, found, require
from libs.idempotency import CommitOnce, Reply
from libs.logging import get_logger
from libs.outbox import add_event
from libs.paging import decode_page_token, keyset_page, page_size
from libs.sagas import Outcome, RetryPolicy, reason_of, saga_step
from services.benefits.adapters.mall_repository import MallRepository
from services.benefits.domain.benefits import (
    FULFILMENT_STEPS,
    Fulfilment,
    MallItemKind,
    Redemption,
    RedemptionState,
    level_eligible,
)
from services.benefits.domain.eligibility import Action
from services.benefits.domain.points import Source, new_id
from services.benefits.usecases.config import get_item
from services.benefits.usecases.context import BenefitsContext
from services.benefits.usecases.coupons import coupon_refusals, issue_coupon
from services.benefits.usecases.eligibility import require_member
from services.benefits.usecases.ledger import PRODUCER, TOPIC, Ledger, get_balance

log = get_logger(__name__)
MAX_QUANTITY = 100
# Recovery passes a stuck redemption gets (one every BENEFITS_JOB_INTERVAL_SECONDS once it is
# BENEFITS_REDEMPTION_RECOVERY_AFTER_SECONDS old) before it ends 'failed' with its points back.
RECOVERY_RETRY = RetryPolicy(max_attempts=20, base_seconds=5.0, cap_seconds=5.0)
_SEEN = "the RedeemMallItem answer, GetRedemption / ListRedemptions (state, failure_reason)"
saga_step("mall_redemption", "check", where="services.benefits.usecases.mall:_new",
          on_permanent=Outcome.REFUSE, on_exhausted=Outcome.REFUSE, visible_in=_SEEN,
          retry=RetryPolicy(max_attempts=1))
saga_step("mall_redemption", "spend", where="services.benefits.usecases.mall:spend_step",
          on_permanent=Outcome.REFUSE, on_exhausted=Outcome.REFUSE, visible_in=_SEEN,
          retry=RECOVERY_RETRY)
saga_step("mall_redemption", "fulfil", where="services.benefits.usecases.mall:fulfil_step",
          on_permanent=Outcome.COMPENSATE, on_exhausted=Outcome.COMPENSATE, visible_in=_SEEN,
          retry=RECOVERY_RETRY)
saga_step("mall_redemption", "recover", where="services.benefits.usecases.mall:give_up",
          on_permanent=Outcome.COMPENSATE, on_exhausted=Outcome.COMPENSATE, visible_in=_SEEN,
          retry=RECOVERY_RETRY)


def fingerprint(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()


async def redeem(app: BenefitsContext, *, request_id: str, brand_id: str, account_id: str,
                 item_id: str, quantity: int, shipping_address: str) -> Redemption:
    """A member redeems points for an item: the member's standing (and level) checked live,
    then the saga started and carried through."""
    member = await require_member(app.membership, Action.REDEEM, brand_id, account_id)
    return await start(app.db, request_id=request_id, brand_id=brand_id,
                       account_id=account_id, item_id=item_id, quantity=quantity,
                       shipping_address=shipping_address, level=member.level,
                       clock=app.clock)


async def start(db: Database, *, request_id: str, brand_id: str, account_id: str,
                item_id: str, quantity: int, shipping_address: str, level: int,
                clock: Clock = system_clock) -> Redemption:
    """Record the redemption (or find the one this request_id recorded) and carry it through;
    `level` is the member's level now (the item's level gate)."""
    redemption = await record(db, request_id=request_id, brand_id=brand_id,
                              account_id=account_id, item_id=item_id, quantity=quantity,
                              shipping_address=shipping_address, level=level, clock=clock)
    final = await drive(db, redemption.brand_id, redemption.redemption_id, clock)
    if final.state is RedemptionState.FAILED:
        raise failed_error(final)
    return final


def failed_error(redemption: Redemption) -> FailedPrecondition:
    """A redemption that failed after it was recorded is answered as the refusal it is (the
    reason, the redemption to look up, the refund when points were given back), never as a
    success whose body happens to say FAILED. A repeat of the request answers the same."""
    reason = redemption.failure_reason or "REDEMPTION_FAILED"
    metadata = {"redemption_id": redemption.redemption_id, "item_id": redemption.item_id}
    given_back = ""
    if redemption.refund_entry_id:
        metadata["refund_entry_id"] = redemption.refund_entry_id
        given_back = f"; the {redemption.points} points were given back"
    return FailedPrecondition(f"redemption {redemption.redemption_id} failed: {reason}"
                              f"{given_back}", reason=reason, metadata=metadata)


async def record(db: Database, *, request_id: str, brand_id: str, account_id: str,
                 item_id: str, quantity: int, shipping_address: str,
                 level: int, clock: Clock = system_clock) -> Redemption:
    """The saga's first step: the redemption in state STARTED (or the one already recorded
    under this request_id; the same key with other parameters is refused)."""
    request_id = require(request_id, "request_id")
    if len(request_id) > 128:
        raise InvalidArgument("request_id must be at most 128 characters", field="request_id",
                              reason="REQUEST_ID_TOO_LONG")
    brand_id = require(brand_id, "brand_id")
    account_id = require(account_id, "account_id")
    quantity = quantity or 1
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidArgument(f"quantity must be 1..{MAX_QUANTITY}", field="quantity",
                              reason="QUANTITY_OUT_OF_RANGE")
    digest = fingerprint(account_id, item_id, quantity, shipping_address.strip())
    async with db.transaction() as conn:
        repo = MallRepository(conn)
        await repo.lock_request(brand_id, request_id)  # a racing twin waits, then finds ours
        existing = await repo.by_request(brand_id, request_id)
        if existing is None:
            redemption = await _new(conn, request_id, brand_id, account_id, item_id, quantity,
                                    shipping_address.strip(), level, clock())
            await repo.add_redemption(redemption, digest)
        if existing is not None:
            redemption, recorded = existing
            if recorded != digest:
                raise FailedPrecondition(
                    f"request_id {request_id!r} was already used with different parameters",
                    reason="REQUEST_ID_REUSED", metadata={"request_id": request_id})
    return redemption


async def _new(conn: Connection, request_id: str, brand_id: str, account_id: str,
               item_id: str, quantity: int, shipping_address: str, level: int,
               now: datetime) -> Redemption:
    item = await get_item(conn, brand_id, item_id)
    if not item.on_sale:
        raise FailedPrecondition(f"mall item {item_id} is not on sale",
                                 reason="MALL_ITEM_NOT_ON_SALE", metadata={"item_id": item_id})
    if item.kind is MallItemKind.PHYSICAL and not shipping_address:
        raise InvalidArgument("shipping_address is required for a physical item",
                              field="shipping_address", reason="FIELD_REQUIRED")
    if not level_eligible(item.eligible_levels, level):
        raise FailedPrecondition(f"level {level} may not redeem this item",
                                 reason="LEVEL_NOT_ELIGIBLE", metadata={"item_id": item_id})
    if item.stock_redeemed + quantity > item.stock_total:
        raise FailedPrecondition(f"mall item {item_id} is out of stock",
                                 reason="OUT_OF_STOCK", metadata={"item_id": item_id})
    # What the fulfil step would refuse is refused here, before any point is spent.
    held = await MallRepository(conn).holding(brand_id, item_id, account_id)
    if item.per_member_limit and held + quantity > item.per_member_limit:
        raise FailedPrecondition(f"the limit of {item.per_member_limit} per member is reached",
                                 reason="MALL_LIMIT_REACHED", metadata={"item_id": item_id})
    if item.kind is MallItemKind.COUPON:
        refusal = (await coupon_refusals(conn, brand_id, account_id,
                                         [item.coupon_template_id], now, quantity)
                   )[item.coupon_template_id]
        if refusal:
            raise FailedPrecondition(
                f"the item's coupon cannot be issued to the member ({refusal})",
                reason=refusal, metadata={"item_id": item_id,
                                          "coupon_template_id": item.coupon_template_id})
    points = item.price_points * quantity
    balance = await get_balance(conn, brand_id, account_id)
    if balance.available < points:
        raise FailedPrecondition(
            f"{points} points needed but only {max(balance.available, 0)} available",
            reason="INSUFFICIENT_POINTS",
            metadata={"available_points": str(max(balance.available, 0)),
                      "requested_points": str(points)})
    fulfilment = (Fulfilment.AWAITING_SHIPMENT if item.kind is MallItemKind.PHYSICAL
                  else Fulfilment.NOT_REQUIRED)
    return Redemption(brand_id, new_id("rdm"), request_id, account_id, item_id, quantity,
                      points, RedemptionState.STARTED, None, None, [], "", fulfilment,
                      shipping_address, "", "", now, now)


async def get(conn: Connection, brand_id: str, redemption_id: str, *,
              lock: bool = False) -> Redemption:
    redemption = await MallRepository(conn).redemption(require(brand_id, "brand_id"),
                                                       require(redemption_id, "redemption_id"),
                                                       lock=lock)
    return found(redemption, f"redemption {redemption_id}", reason="REDEMPTION_NOT_FOUND",
                 redemption_id=redemption_id)


async def read_redemption(app: BenefitsContext, brand_id: str, redemption_id: str
                          ) -> Redemption:
    """The brand's fulfilment view of a redemption already made (not gated on membership)."""
    async with app.db.connection() as conn:
        return await get(conn, brand_id, redemption_id)


async def spend_step(db: Database, brand_id: str, redemption_id: str,
                     clock: Clock = system_clock) -> Redemption:
    """STARTED -> POINTS_SPENT, or FAILED when the points are no longer there."""
    async with db.transaction() as conn:
        redemption = await get(conn, brand_id, redemption_id, lock=True)
        if redemption.state is not RedemptionState.STARTED:
            return redemption
        now = clock()
        try:
            async with conn.transaction():
                change = await Ledger(conn, clock).spend(
                    brand_id, redemption.account_id, redemption.points,
                    reason_code="MALL_REDEMPTION", source=Source.MALL,
                    request_id=f"redemption:{redemption_id}", now=now)
        except DomainError as error:
            failed = replace(redemption, state=RedemptionState.FAILED,
                             failure_reason=error.reason)
            return await MallRepository(conn).update_redemption(failed, now)
        spent = replace(redemption, state=RedemptionState.POINTS_SPENT,
                        spend_entry_id=change.entry.entry_id)
        return await MallRepository(conn).update_redemption(spent, now)


async def fulfil_step(db: Database, brand_id: str, redemption_id: str,
                      clock: Clock = system_clock) -> Redemption:
    """POINTS_SPENT -> COMPLETED (stock taken, item issued), or FAILED with the points back."""
    async with db.transaction() as conn:
        redemption = await get(conn, brand_id, redemption_id, lock=True)
        if redemption.state is not RedemptionState.POINTS_SPENT:
            return redemption
        now = clock()
        repo = MallRepository(conn)
        try:
            async with conn.transaction():
                done = await _take_and_issue(conn, redemption, now)
                completed = await repo.update_redemption(done, now)
                await add_event(conn, topic=TOPIC, brand_id=brand_id, producer=PRODUCER,
                                payload=benefits_events_pb2.MallItemRedeemed(
                                    brand_id=brand_id, account_id=redemption.account_id,
                                    redemption_id=redemption_id, item_id=redemption.item_id,
                                    quantity=redemption.quantity, points=redemption.points))
                # The item's stock row is every redeemer's hot spot: updated last, right
                # before commit, so its lock is held as briefly as possible.
                if not await repo.take_stock(brand_id, redemption.item_id,
                                             redemption.quantity):
                    raise FailedPrecondition(f"mall item {redemption.item_id} is out of stock",
                                             reason="OUT_OF_STOCK")
        except DomainError as error:
            assert redemption.spend_entry_id is not None
            refund = await Ledger(conn, clock).reverse(brand_id, redemption.spend_entry_id,
                                                reason_code="MALL_REDEMPTION_FAILED",
                                                request_id=f"redemption:{redemption_id}:refund",
                                                now=now)
            failed = replace(redemption, state=RedemptionState.FAILED,
                             failure_reason=error.reason,
                             refund_entry_id=refund.entry.entry_id)
            return await repo.update_redemption(failed, now)
        return completed


async def _take_and_issue(conn: Connection, redemption: Redemption, now: datetime
                          ) -> Redemption:
    """Take the member's slot and issue the item (the caller takes the stock last)."""
    brand_id, item_id = redemption.brand_id, redemption.item_id
    item = await get_item(conn, brand_id, item_id)
    if not item.on_sale:
        raise FailedPrecondition("the item was withdrawn", reason="MALL_ITEM_NOT_ON_SALE")
    repo = MallRepository(conn)
    if not await repo.take_holding(brand_id, item_id, redemption.account_id,
                                   redemption.quantity, item.per_member_limit):
        raise FailedPrecondition(f"the limit of {item.per_member_limit} per member is reached",
                                 reason="MALL_LIMIT_REACHED")
    coupon_ids: list[str] = []
    code = ""
    if item.kind is MallItemKind.COUPON:
        for index in range(redemption.quantity):
            coupon = await issue_coupon(
                conn, brand_id, redemption.account_id, item.coupon_template_id,
                source="mall", reason_code="MALL_REDEMPTION",
                request_id=f"redemption:{redemption.redemption_id}:{index}", level=None,
                now=now)
            coupon_ids.append(coupon.coupon_id)
    elif item.kind is MallItemKind.VIRTUAL:
        code = secrets.token_hex(8).upper()
    return replace(redemption, state=RedemptionState.COMPLETED, coupon_ids=coupon_ids,
                   virtual_code=code)


async def drive(db: Database, brand_id: str, redemption_id: str,
                clock: Clock = system_clock) -> Redemption:
    """Carry a redemption from whatever state it is in to a final one."""
    redemption = await spend_step(db, brand_id, redemption_id, clock)
    if redemption.state is RedemptionState.POINTS_SPENT:
        redemption = await fulfil_step(db, brand_id, redemption_id, clock)
    return redemption


async def recover(db: Database, *, older_than_seconds: float, limit: int = 100,
                  clock: Clock = system_clock) -> int:
    """Finish redemptions left unfinished (a crash between steps); returns how many."""
    cutoff = clock() - timedelta(seconds=older_than_seconds)
    async with db.connection() as conn:
        stuck = await MallRepository(conn).unfinished(cutoff, limit)
    for brand_id, redemption_id in stuck:
        try:
            final = await drive(db, brand_id, redemption_id, clock)
            log.info("redemption_recovered", brand_id=brand_id, redemption_id=redemption_id,
                     state=final.state.value)
        except Exception as exc:  # one bad redemption must not stop the others
            log.error("redemption_recovery_failed", redemption_id=redemption_id,
                      error=repr(exc))
            try:
                async with db.connection() as conn:
                    attempts = await MallRepository(conn).count_recovery_attempt(
                        brand_id, redemption_id, reason_of(exc))
                if RECOVERY_RETRY.exhausted(attempts):
                    await give_up(db, brand_id, redemption_id,
                                  f"RETRIES_EXHAUSTED: {reason_of(exc)}", clock)
            except Exception as again:  # the database itself: the next pass tries again
                log.error("redemption_give_up_failed", redemption_id=redemption_id,
                          error=repr(again))
    return len(stuck)


async def give_up(db: Database, brand_id: str, redemption_id: str, reason: str,
                  clock: Clock = system_clock) -> Redemption:
    """End a redemption recovery cannot carry on: 'failed' with the reason, and the points
    given back when they were spent."""
    async with db.transaction() as conn:
        redemption = await get(conn, brand_id, redemption_id, lock=True)
        if redemption.state not in (RedemptionState.STARTED, RedemptionState.POINTS_SPENT):
            return redemption
        now = clock()
        refund_entry_id = None
        if redemption.state is RedemptionState.POINTS_SPENT:
            assert redemption.spend_entry_id is not None
            refund = await Ledger(conn, clock).reverse(brand_id, redemption.spend_entry_id,
                                                reason_code="MALL_REDEMPTION_FAILED",
                                                request_id=f"redemption:{redemption_id}:refund",
                                                now=now)
            refund_entry_id = refund.entry.entry_id
        failed = replace(redemption, state=RedemptionState.FAILED, failure_reason=reason,
                         refund_entry_id=refund_entry_id)
        log.error("redemption_given_up", redemption_id=redemption_id, reason=reason)
        return await MallRepository(conn).update_redemption(failed, now)


async def update_fulfilment(app: BenefitsContext, commit_once: CommitOnce[Redemption, Reply],
                            brand_id: str, redemption_id: str, status: Fulfilment,
                            tracking_number: str, request_id: str) -> Reply:
    """Move a completed redemption's fulfilment on (shipped, delivered; cancelled gives the
    points, the stock and the member's slot back)."""
    return await commit_once(lambda conn: _update_fulfilment(
        conn, brand_id, redemption_id, status, tracking_number, request_id, app.clock()))


async def _update_fulfilment(conn: Connection, brand_id: str, redemption_id: str,
                             status: Fulfilment, tracking_number: str, request_id: str,
                             now: datetime) -> Redemption:
    redemption = await get(conn, brand_id, redemption_id, lock=True)
    allowed = FULFILMENT_STEPS.get(redemption.fulfilment, set())
    if redemption.state is not RedemptionState.COMPLETED or status not in allowed:
        raise FailedPrecondition(
            f"fulfilment cannot move from {redemption.fulfilment.value} to {status.value}",
            reason="FULFILMENT_TRANSITION_INVALID",
            metadata={"from": redemption.fulfilment.value, "to": status.value})
    changed = replace(redemption, fulfilment=status)
    if status is Fulfilment.SHIPPED:
        changed = replace(changed, tracking_number=require(tracking_number, "tracking_number"))
    if status is Fulfilment.CANCELLED:
        assert redemption.spend_entry_id is not None
        refund = await Ledger(conn).reverse(brand_id, redemption.spend_entry_id,
                                            reason_code="MALL_FULFILMENT_CANCELLED",
                                            request_id=request_id, now=now)
        repo = MallRepository(conn)
        await repo.return_stock(brand_id, redemption.item_id, redemption.quantity)
        await repo.return_holding(brand_id, redemption.item_id, redemption.account_id,
                                  redemption.quantity)
        changed = replace(changed, refund_entry_id=refund.entry.entry_id)
    return await MallRepository(conn).update_redemption(changed, now)


async def list_redemptions(app: BenefitsContext, brand_id: str, account_id: str,
                           requested_size: int, token: str) -> tuple[list[Redemption], str]:
    """One page of the brand's redemptions (one member's, when named), newest first."""
    size = page_size(requested_size)
    if account_id:
        await require_member(app.membership, Action.READ_HOLDINGS, brand_id, account_id)
    filters = {"brand_id": require(brand_id, "brand_id"), "account_id": account_id}
    position = decode_page_token(token, ("seq",), filters=filters)
    async with app.db.connection() as conn:
        rows = await MallRepository(conn).redemptions(
            brand_id, account_id or None, int(position["seq"]) if position else None,
            size + 1)
    page, next_token = keyset_page(rows, size, lambda row: {"seq": row[0]}, filters=filters)
    return [redemption for _, redemption in page], next_token

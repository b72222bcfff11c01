"""Marketplace facts: orders paid and refunded, cart items added."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from brandclub.events.v1 import membership_events_pb2
from libs.db import Connection
from libs.errors import FailedPrecondition, InvalidArgument
from libs.outbox import add_event
from libs.protoconv import timestamp
from services.membership.adapters.facts_repository import FactRepository
from services.membership.adapters.members_repository import MemberRepository
from services.membership.adapters.programs_repository import ProgramRepository
from services.membership.domain.inputs import occurred_at, valid_account, valid_identifier
from services.membership.domain.model import (
    Stats,
)
from services.membership.usecases.brands import existing_shop
from services.membership.usecases.context import Context, MembershipContext
from services.membership.usecases.events import PRODUCER, TOPIC
from services.membership.usecases.tiers import level_after_growth


@dataclass(frozen=True)
class OrderOutcome:
    duplicate: bool
    stats: Stats
    level: int
    brand_id: str


async def record_order_paid(context: MembershipContext, event_id: str, shop_id: str,
                            account_id: str, order_id: str, paid_cents: int,
                            paid_at: datetime | None,
                            return_window_end: datetime | None) -> OrderOutcome:
    """RecordOrderPaid's flow: the fact in one transaction, then the buyer's cached card
    dropped unless the fact was a duplicate."""
    async with context.db.transaction() as conn:
        outcome = await _apply_order_paid(conn, event_id, shop_id, account_id, order_id,
                                          paid_cents, paid_at, return_window_end,
                                          context.clock())
    if not outcome.duplicate:
        await context.cards.forget(outcome.brand_id, [account_id])
    return outcome


async def _apply_order_paid(conn: Connection, event_id: str, shop_id: str, account_id: str,
                            order_id: str, paid_cents: int, paid_at: datetime | None,
                            return_window_end: datetime | None,
                            now: datetime) -> OrderOutcome:
    event_id = valid_identifier(event_id, "event_id")
    order_id = valid_identifier(order_id, "order_id")
    account_id = valid_account(account_id)
    if paid_cents <= 0:
        raise InvalidArgument("paid_cents must be positive", field="paid_cents")
    paid_at = occurred_at(paid_at, "paid_time")
    shop = await existing_shop(conn, shop_id)
    fact_repo = FactRepository(conn)
    member_repo = MemberRepository(conn)
    await member_repo.lock_member_slot(shop.brand_id, account_id)
    fresh = (await fact_repo.claim_fact(shop.brand_id, event_id, "order_paid")
             and await fact_repo.add_order(shop.brand_id, order_id, shop.shop_id, account_id,
                                           paid_cents, paid_at, return_window_end))
    if fresh:
        await fact_repo.stats_after_paid(shop.brand_id, account_id, paid_cents, paid_at)
        await fact_repo.add_behaviours(shop.brand_id, "purchased", [(account_id, paid_at)])
        buyer = await member_repo.live_member(shop.brand_id, account_id)
        event = membership_events_pb2.OrderPaid(
            brand_id=shop.brand_id, shop_id=shop.shop_id, account_id=account_id,
            order_id=order_id, paid_cents=paid_cents, paid_time=timestamp(paid_at),
            buyer_is_member=buyer is not None)
        if return_window_end is not None:
            event.return_window_end_time.CopyFrom(timestamp(return_window_end))
        await add_event(conn, topic=TOPIC, brand_id=shop.brand_id, producer=PRODUCER,
                        payload=event)
    level, growth = await level_after_growth(conn, shop.brand_id, account_id, now)
    stats = await fact_repo.stats(shop.brand_id, account_id, growth)
    return OrderOutcome(not fresh, stats, level, shop.brand_id)


async def record_order_refunded(context: MembershipContext, event_id: str, shop_id: str,
                                account_id: str, order_id: str, refund_id: str,
                                refunded_cents: int,
                                refunded_at: datetime | None) -> OrderOutcome:
    """RecordOrderRefunded's flow: the fact in one transaction, then the buyer's cached card
    dropped unless the fact was a duplicate."""
    async with context.db.transaction() as conn:
        outcome = await _apply_order_refunded(conn, event_id, shop_id, account_id, order_id,
                                              refund_id, refunded_cents, refunded_at,
                                              context.clock())
    if not outcome.duplicate:
        await context.cards.forget(outcome.brand_id, [account_id])
    return outcome


async def _apply_order_refunded(conn: Connection, event_id: str, shop_id: str,
                                account_id: str, order_id: str, refund_id: str,
                                refunded_cents: int,
                                refunded_at: datetime | None,
                                now: datetime) -> OrderOutcome:
    """A (partial) refund lowers stats and growth at once; the tier waits for the periodic
    evaluation after the retention window."""
    event_id = valid_identifier(event_id, "event_id")
    order_id = valid_identifier(order_id, "order_id")
    refund_id = valid_identifier(refund_id, "refund_id")
    account_id = valid_account(account_id)
    if refunded_cents <= 0:
        raise InvalidArgument("refunded_cents must be positive", field="refunded_cents")
    refunded_at = occurred_at(refunded_at, "refund_time")
    shop = await existing_shop(conn, shop_id)
    fact_repo = FactRepository(conn)
    member_repo = MemberRepository(conn)
    program_repo = ProgramRepository(conn)
    await member_repo.lock_member_slot(shop.brand_id, account_id)
    fresh = await fact_repo.claim_fact(shop.brand_id, event_id, "order_refunded")
    if fresh:
        order = await fact_repo.get_order(shop.brand_id, order_id)
        if order is None:
            raise FailedPrecondition(f"order {order_id} has not been reported paid",
                                     reason="ORDER_NOT_FOUND", metadata={"order_id": order_id})
        if order["account_id"] != account_id:
            raise InvalidArgument("the order belongs to another account", field="account_id",
                                  reason="ORDER_OF_ANOTHER_ACCOUNT")
        fresh = await fact_repo.add_refund(shop.brand_id, refund_id, order_id, refunded_cents,
                                           refunded_at)
        if fresh:
            if order["refunded_cents"] + refunded_cents > order["paid_cents"]:
                raise InvalidArgument(
                    "refunds of this order would exceed its paid amount",
                    field="refunded_cents", reason="REFUND_EXCEEDS_PAID",
                    metadata={"order_paid_cents": str(order["paid_cents"]),
                              "order_refunded_cents": str(order["refunded_cents"])})
            total = await fact_repo.refund_order(shop.brand_id, order_id, refunded_cents)
            await fact_repo.stats_after_refund(shop.brand_id, account_id, refunded_cents,
                                               total == order["paid_cents"])
            await add_event(conn, topic=TOPIC, brand_id=shop.brand_id, producer=PRODUCER,
                            payload=membership_events_pb2.OrderRefunded(
                                brand_id=shop.brand_id, shop_id=shop.shop_id,
                                account_id=account_id, order_id=order_id, refund_id=refund_id,
                                refunded_cents=refunded_cents,
                                refund_time=timestamp(refunded_at),
                                order_paid_cents=order["paid_cents"],
                                order_refunded_cents=total))
    member = await member_repo.live_member(shop.brand_id, account_id)
    program = await program_repo.get_program(shop.brand_id)
    growth = (await fact_repo.growth(shop.brand_id, account_id, program.growth_since(now))
              if program else 0)
    level = member.level if member else 0
    stats = await fact_repo.stats(shop.brand_id, account_id, growth)
    return OrderOutcome(not fresh, stats, level, shop.brand_id)


async def record_cart_item_added(context: Context, event_id: str, shop_id: str, account_id: str,
                                 sku_id: str, added_at: datetime | None) -> bool:
    """RecordCartItemAdded's flow, in one transaction; True for a duplicate."""
    async with context.db.transaction() as conn:
        duplicate, _ = await _apply_cart_item_added(conn, event_id, shop_id, account_id,
                                                    sku_id, added_at)
    return duplicate


async def _apply_cart_item_added(conn: Connection, event_id: str, shop_id: str,
                                 account_id: str, sku_id: str,
                                 added_at: datetime | None) -> tuple[bool, str]:
    event_id = valid_identifier(event_id, "event_id")
    sku_id = valid_identifier(sku_id, "sku_id")
    account_id = valid_account(account_id)
    added_at = occurred_at(added_at, "add_time")
    shop = await existing_shop(conn, shop_id)
    fact_repo = FactRepository(conn)
    member_repo = MemberRepository(conn)
    if not await fact_repo.claim_fact(shop.brand_id, event_id, "cart_item_added"):
        return True, shop.brand_id
    await fact_repo.add_behaviours(shop.brand_id, "cart_added", [(account_id, added_at)])
    shopper = await member_repo.live_member(shop.brand_id, account_id)
    await add_event(conn, topic=TOPIC, brand_id=shop.brand_id, producer=PRODUCER,
                    payload=membership_events_pb2.CartItemAdded(
                        brand_id=shop.brand_id, shop_id=shop.shop_id, account_id=account_id,
                        sku_id=sku_id, add_time=timestamp(added_at),
                        shopper_is_member=shopper is not None))
    return False, shop.brand_id

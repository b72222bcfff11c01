"""Earning: the reactions to membership and engagement events.

Each handler runs in the consumer's transaction, which also records the event id, so a
redelivered event applies nothing. Orders are also keyed by order id and refunds by refund id,
and the gift pack by (program, member), so the same fact arriving as two events applies once.
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf.message import Message

from brandclub.events.v1 import (
    engagement_events_pb2 as engagement,
)
from brandclub.events.v1 import (
    envelope_pb2,
)
from brandclub.events.v1 import (
    membership_events_pb2 as membership,
)
from libs.db import Connection
from libs.eventbus import event_type
from libs.logging import get_logger
from libs.protoconv import from_timestamp
from services.benefits.adapters.config_repository import ConfigRepository
from services.benefits.adapters.orders_repository import OrderRepository
from services.benefits.adapters.points_repository import PointsRepository
from services.benefits.domain.benefits import EarningRule, Trigger
from services.benefits.domain.points import (
    EntryKind,
    OrderPoints,
    Source,
    capped_grant,
    order_points,
    refund_share,
)
from services.benefits.usecases.config import apply_brand_time_zone, apply_program_multipliers
from services.benefits.usecases.coupons import grant_card_opening_gift_pack
from services.benefits.usecases.ledger import Ledger, policy_of
from services.benefits.usecases.privacy import erase_on_cancellation

log = get_logger(__name__)
LIFETIME = ""


async def _cap(conn: Connection, rule: EarningRule, account_id: str, points: int,
               local_date: str) -> int:
    """Cut a grant to the rule's daily and lifetime caps and its budget, and count it."""
    repo = ConfigRepository(conn)
    budget_used = 0
    if rule.budget_points:
        locked = await repo.rule(rule.brand_id, rule.rule_id, lock=True)
        assert locked is not None
        budget_used = locked.granted_points
    daily = lifetime = 0
    if rule.daily_cap_points:
        daily = await repo.lock_counter(rule.brand_id, rule.rule_id, account_id, local_date)
    lifetime = await repo.lock_counter(rule.brand_id, rule.rule_id, account_id, LIFETIME)
    grant = capped_grant(points, daily_cap=rule.daily_cap_points, daily_used=daily,
                         lifetime_cap=rule.lifetime_cap_points, lifetime_used=lifetime,
                         budget=rule.budget_points, budget_used=budget_used)
    if grant > 0:
        if rule.daily_cap_points:
            await repo.add_counter(rule.brand_id, rule.rule_id, account_id, local_date, grant)
        await repo.add_counter(rule.brand_id, rule.rule_id, account_id, LIFETIME, grant)
        await repo.add_granted(rule.brand_id, rule.rule_id, grant)
    return grant


async def earn_fixed(conn: Connection, brand_id: str, account_id: str, trigger: Trigger, *,
                     event_id: str, occurred: datetime, activity_id: str = "",
                     local_date: str = "") -> int:
    """Fixed points from every enabled rule for this trigger; returns the points granted."""
    if not account_id:
        return 0
    policy = await policy_of(conn, brand_id)
    day = local_date or policy.local_date(occurred)
    total = 0
    for rule in await ConfigRepository(conn).enabled_rules(brand_id, trigger):
        if rule.activity_id and rule.activity_id != activity_id:
            continue
        points = await _cap(conn, rule, account_id, rule.points, day)
        if points > 0:
            await Ledger(conn).grant(brand_id, account_id, points,
                                     reason_code=f"{trigger.name}_REWARD", source=Source.RULE,
                                     request_id=f"rule:{rule.rule_id}:{event_id}")
            total += points
    return total


async def earn_order(conn: Connection, event: membership.OrderPaid, occurred: datetime) -> int:
    """Pending points for a paid order (once per order), at the member's tier multiplier."""
    brand_id, account_id = event.brand_id, event.account_id
    orders = OrderRepository(conn)
    if not account_id or not event.order_id or await orders.known(brand_id, event.order_id):
        return 0
    config = ConfigRepository(conn)
    # The eligibility rule: only members earn. The order is still recorded (with no points),
    # so its refunds find it and take nothing back.
    member = not event.HasField("buyer_is_member") or event.buyer_is_member
    rules = await config.enabled_rules(brand_id, Trigger.ORDER_PAID) if member else []
    points = 0
    entry_id = None
    if rules:
        rule = rules[0]
        level = await config.member_level(brand_id, account_id)
        multiplier = (await config.multipliers(brand_id)).get(level, 100)
        policy = await policy_of(conn, brand_id)
        paid_at = from_timestamp(event.paid_time) if event.HasField("paid_time") else occurred
        points = await _cap(conn, rule, account_id,
                            order_points(event.paid_cents, rule.points_per_currency_unit,
                                         multiplier), policy.local_date(paid_at))
        if points > 0:
            available_at = (from_timestamp(event.return_window_end_time)
                            if event.HasField("return_window_end_time") else None)
            change = await Ledger(conn).grant(brand_id, account_id, points,
                                              reason_code="ORDER_PAID", source=Source.ORDER,
                                              request_id=f"order:{event.order_id}",
                                              available_at=available_at)
            entry_id = change.entry.entry_id
    await orders.add(brand_id, OrderPoints(event.order_id, account_id, event.paid_cents,
                                           points, 0, 0, entry_id), occurred)
    return points


async def refund_order(conn: Connection, event: membership.OrderRefunded,
                       occurred: datetime) -> int:
    """Take back the refunded share of an order's points: cancel them while pending, claw them
    back once available. Returns the points taken back."""
    brand_id = event.brand_id
    orders = OrderRepository(conn)
    if not event.refund_id or await orders.refund_known(brand_id, event.refund_id):
        return 0
    order = await orders.lock(brand_id, event.order_id)
    if order is None:
        log.warning("refund_for_unknown_order", brand_id=brand_id, order_id=event.order_id)
        return 0
    refunded_total = order.refunded_cents + max(0, event.refunded_cents)
    take = refund_share(order.points, order.paid_cents, refunded_total, order.points_taken)
    key = f"refund:{event.refund_id}"
    if take > 0 and order.entry_id:
        ledger = Ledger(conn)
        cancelled = await ledger.cancel_pending(brand_id, order.entry_id, take,
                                                reason_code="ORDER_REFUNDED",
                                                source=Source.ORDER, request_id=key,
                                                now=occurred)
        if cancelled is None:
            points = PointsRepository(conn)
            balance = await ledger.lock(brand_id, order.account_id)
            entry = await points.entry(brand_id, order.entry_id)
            prefer = None
            if entry is not None and entry.kind is EntryKind.GRANT:
                prefer = await points.lot_of_entry(brand_id, entry.entry_id)
            await ledger.take_back(balance, take, kind=EntryKind.CLAWBACK,
                                   reason_code="ORDER_REFUNDED", source=Source.ORDER,
                                   request_id=key, now=occurred, prefer_lot=prefer)
    await orders.add_refund(brand_id, event.refund_id, event.order_id, event.refunded_cents,
                            refunded_total, take, occurred)
    return take


_TYPES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls for cls in (
        membership.MemberFollowed, membership.MemberJoined, membership.MemberTierChanged,
        membership.MemberCancelled, membership.ProgramChanged, membership.BrandCreated,
        membership.OrderPaid, membership.OrderRefunded, membership.CartItemAdded,
        engagement.MemberSignedIn, engagement.MemberVoted, engagement.QuizSubmitted,
        engagement.InviteAccepted)
}


async def handle_event(conn: Connection, envelope: envelope_pb2.EventEnvelope) -> None:
    """The benefits consumer group's handler for topics "membership" and "engagement"."""
    kind = _TYPES.get(event_type(envelope))
    if kind is None:
        return  # not an event benefits reacts to
    event = kind()
    envelope.payload.Unpack(event)
    occurred = from_timestamp(envelope.occur_time)
    event_id = envelope.event_id
    config = ConfigRepository(conn)
    if isinstance(event, membership.MemberFollowed):
        if event.became_lv0:
            await config.set_member_level(event.brand_id, event.account_id, 0, occurred)
        await earn_fixed(conn, event.brand_id, event.account_id, Trigger.FOLLOW,
                         event_id=event_id, occurred=occurred)
    elif isinstance(event, membership.CartItemAdded):
        if event.HasField("shopper_is_member") and not event.shopper_is_member:
            return  # the eligibility rule: only members earn
        await earn_fixed(conn, event.brand_id, event.account_id, Trigger.CART_ADD,
                         event_id=event_id, occurred=occurred)
    elif isinstance(event, membership.MemberJoined):
        await config.set_member_level(event.brand_id, event.account_id, event.level, occurred)
        await grant_card_opening_gift_pack(conn, event.brand_id, event.program_id,
                                           event.account_id, occurred)
    elif isinstance(event, membership.MemberCancelled):
        await config.set_member_level(event.brand_id, event.account_id, 0, occurred)
        await erase_on_cancellation(conn, envelope)
    elif isinstance(event, membership.MemberTierChanged):
        await config.set_member_level(event.brand_id, event.account_id, event.to_level,
                                      occurred)
    elif isinstance(event, membership.BrandCreated):
        await apply_brand_time_zone(conn, event.brand_id, event.time_zone, occurred)
    elif isinstance(event, membership.ProgramChanged):
        await apply_program_multipliers(
            conn, event.brand_id, event.program_id, from_timestamp(event.update_time),
            [(t.level, t.points_multiplier_percent) for t in event.tier_multipliers])
    elif isinstance(event, membership.OrderPaid):
        await earn_order(conn, event, occurred)
    elif isinstance(event, membership.OrderRefunded):
        await refund_order(conn, event, occurred)
    elif isinstance(event, engagement.MemberSignedIn):
        await earn_fixed(conn, event.brand_id, event.account_id, Trigger.SIGN_IN,
                         event_id=event_id, occurred=occurred, activity_id=event.activity_id,
                         local_date=event.local_date)
    elif isinstance(event, engagement.MemberVoted):
        await earn_fixed(conn, event.brand_id, event.account_id, Trigger.VOTE,
                         event_id=event_id, occurred=occurred, activity_id=event.activity_id)
    elif isinstance(event, engagement.QuizSubmitted):
        await earn_fixed(conn, event.brand_id, event.account_id, Trigger.QUIZ,
                         event_id=event_id, occurred=occurred, activity_id=event.activity_id)
    elif isinstance(event, engagement.InviteAccepted):
        await earn_fixed(conn, event.brand_id, event.inviter_account_id, Trigger.INVITE,
                         event_id=event_id, occurred=occurred, activity_id=event.activity_id)

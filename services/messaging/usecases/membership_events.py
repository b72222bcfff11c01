"""The membership events messaging reacts to.

`handle_membership_event` runs inside the EventConsumer's transaction (which de-duplicates by
event id): it keeps the cancelled-member and order projections and members' consent from card
opening, and enters members into the active journeys the event triggers."""

from __future__ import annotations

from datetime import datetime

from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from libs.db import Connection
from libs.protoconv import from_timestamp
from services.messaging.adapters.consents_repository import ConsentsRepository
from services.messaging.adapters.journeys_repository import JourneysRepository
from services.messaging.adapters.member_facts_repository import MemberFactsRepository
from services.messaging.domain.governance import consents_from_join
from services.messaging.domain.journeys import Trigger, TriggerFacts
from services.messaging.usecases.journey_entry import enter

# The consent record's source when the decision was made while opening the card.
CARD_OPENING_SOURCE = "card_opening"


async def handle_membership_event(conn: Connection, envelope: envelope_pb2.EventEnvelope,
                                  now: datetime) -> None:
    payload = envelope.payload
    trigger: Trigger | None = None
    facts = TriggerFacts()
    account_id = ""
    brand_id = envelope.brand_id
    member_facts = MemberFactsRepository(conn)
    if payload.Is(membership_events_pb2.MemberCancelled.DESCRIPTOR):
        cancelled = membership_events_pb2.MemberCancelled()
        payload.Unpack(cancelled)
        await member_facts.mark_cancelled(cancelled.brand_id, cancelled.account_id,
                                          from_timestamp(envelope.occur_time))
        await JourneysRepository(conn).exit_member_runs(cancelled.brand_id,
                                                        cancelled.account_id, now)
        return
    if payload.Is(membership_events_pb2.MemberJoined.DESCRIPTOR):
        joined = membership_events_pb2.MemberJoined()
        payload.Unpack(joined)
        await member_facts.clear_cancelled(joined.brand_id, joined.account_id)
        joined_at = from_timestamp(envelope.occur_time)
        for channel, purpose, granted in consents_from_join(joined.consent_purposes,
                                                            joined.offered_purposes):
            await ConsentsRepository(conn).set_consent_unless_newer(
                joined.brand_id, joined.account_id, channel, purpose, granted,
                CARD_OPENING_SOURCE, joined_at)
        trigger, account_id = Trigger.CARD_OPENED, joined.account_id
        facts = TriggerFacts(level=joined.level)
    elif payload.Is(membership_events_pb2.MemberFollowed.DESCRIPTOR):
        followed = membership_events_pb2.MemberFollowed()
        payload.Unpack(followed)
        if followed.became_lv0:
            await member_facts.clear_cancelled(followed.brand_id, followed.account_id)
        return
    elif payload.Is(membership_events_pb2.OrderPaid.DESCRIPTOR):
        order = membership_events_pb2.OrderPaid()
        payload.Unpack(order)
        paid_at = (from_timestamp(order.paid_time) if order.HasField("paid_time")
                   else from_timestamp(envelope.occur_time))
        await member_facts.add_order(order.brand_id, order.order_id, order.account_id,
                                     order.paid_cents, paid_at)
        trigger, account_id = Trigger.ORDER_PAID, order.account_id
        facts = TriggerFacts(order_cents=order.paid_cents)
    elif payload.Is(membership_events_pb2.CartItemAdded.DESCRIPTOR):
        cart = membership_events_pb2.CartItemAdded()
        payload.Unpack(cart)
        trigger, account_id = Trigger.CART_ADDED, cart.account_id
    elif payload.Is(membership_events_pb2.MemberTierChanged.DESCRIPTOR):
        tier = membership_events_pb2.MemberTierChanged()
        payload.Unpack(tier)
        trigger, account_id = Trigger.TIER_CHANGED, tier.account_id
        facts = TriggerFacts(level=tier.to_level)
    if trigger is None or not account_id:
        return
    if await MemberFactsRepository(conn).cancelled(brand_id, [account_id]):
        return
    for journey in await JourneysRepository(conn).active_journeys(brand_id, trigger):
        await enter(conn, journey, account_id, envelope.event_id, facts, now)

"""Privacy requests in engagement: the member's data exported (MemberDataService), and erased or
pseudonymised when they cancel, in the transaction of the consumer that handles
MemberCancelled (libs.privacy; what is held and what happens to it:
services/engagement/adapters/member_data.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from libs.clock import Clock, system_clock
from libs.db import Connection, Database
from libs.privacy import Erasure, MemberPrivacy, erase_member
from libs.protoconv import from_timestamp
from services.engagement.adapters.member_data import HOLDINGS


def member_privacy(db: Database) -> MemberPrivacy:
    """ExportMemberData and GetMemberErasures over engagement's holdings."""
    return MemberPrivacy(db, HOLDINGS)


async def erase_on_cancellation(conn: Connection, envelope: envelope_pb2.EventEnvelope,
                                clock: Clock = system_clock) -> Erasure | None:
    """On MemberCancelled, erase and pseudonymise the member's holdings in `conn`'s
    transaction and record it under the cancellation; any other event is left alone."""
    cancelled = membership_events_pb2.MemberCancelled()
    if not envelope.payload.Is(cancelled.DESCRIPTOR) or not envelope.payload.Unpack(cancelled):
        return None
    return await erase_member(conn, HOLDINGS, brand_id=cancelled.brand_id,
                              account_id=cancelled.account_id, member_id=cancelled.member_id,
                              event_id=envelope.event_id,
                              cancelled_at=from_timestamp(envelope.occur_time), now=clock())


EventHandler = Callable[[Connection, envelope_pb2.EventEnvelope], Awaitable[None]]


def erasing_on_cancellation(handler: EventHandler, clock: Clock = system_clock) -> EventHandler:
    """The membership consumer's handler, erasing on MemberCancelled in the same transaction
    (the invite consumer is engagement's one consumer of the membership topic)."""

    async def handle(conn: Connection, envelope: envelope_pb2.EventEnvelope) -> None:
        await handler(conn, envelope)
        await erase_on_cancellation(conn, envelope, clock)

    return handle

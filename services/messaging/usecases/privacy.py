"""Privacy requests in messaging: the member's data exported (MemberDataService), and erased or
pseudonymised when they cancel, in the transaction of the consumer that handles
MemberCancelled (libs.privacy; what is held and what happens to it:
services/messaging/adapters/member_data.py)."""

from __future__ import annotations

from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from libs.clock import Clock, system_clock
from libs.db import Connection, Database
from libs.privacy import Erasure, MemberPrivacy, erase_member
from libs.protoconv import from_timestamp
from services.messaging.adapters.member_data import HOLDINGS


def member_privacy(db: Database) -> MemberPrivacy:
    """ExportMemberData and GetMemberErasures over messaging's holdings."""
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

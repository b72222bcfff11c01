"""Privacy requests in membership: the member's data exported (MemberDataService), and erased
or pseudonymised in the cancellation's own transaction (libs.privacy; what is held and what
happens to it: services/membership/adapters/member_data.py)."""

from __future__ import annotations

from datetime import datetime

from brandclub.events.v1 import envelope_pb2
from libs.db import Connection, Database
from libs.privacy import Erasure, MemberPrivacy, erase_member
from services.membership.adapters.member_data import HOLDINGS


def member_privacy(db: Database) -> MemberPrivacy:
    """ExportMemberData and GetMemberErasures over membership's holdings."""
    return MemberPrivacy(db, HOLDINGS)


async def erase_cancelled_member(conn: Connection, *, brand_id: str, account_id: str,
                                 member_id: str, cancelled: envelope_pb2.EventEnvelope,
                                 now: datetime) -> Erasure:
    """Part of CancelMembership's transaction: the member leaves what the brand still reads
    (snapshots, behaviours, statistics), recorded under the MemberCancelled event."""
    return await erase_member(conn, HOLDINGS, brand_id=brand_id, account_id=account_id,
                              member_id=member_id, event_id=cancelled.event_id,
                              cancelled_at=now, now=now)

"""Moving a card member's tier."""

from __future__ import annotations

from datetime import datetime

from brandclub.events.v1 import membership_events_pb2
from libs.db import Connection
from libs.outbox import add_event
from services.membership.adapters.facts_repository import FactRepository
from services.membership.adapters.members_repository import MemberRepository
from services.membership.adapters.programs_repository import ProgramRepository
from services.membership.domain.model import (
    Member,
)
from services.membership.domain.program import (
    TierReason,
)
from services.membership.usecases.events import PRODUCER, TOPIC


async def level_after_growth(conn: Connection, brand_id: str, account_id: str,
                             now: datetime) -> tuple[int, int]:
    """Raise a card member's tier at once when growth crosses a threshold."""
    fact_repo = FactRepository(conn)
    member_repo = MemberRepository(conn)
    program_repo = ProgramRepository(conn)
    member = await member_repo.live_member(brand_id, account_id)
    program = await program_repo.get_program(brand_id)
    if program is None:
        return (member.level if member else 0), 0
    growth = await fact_repo.growth(brand_id, account_id, program.growth_since(now))
    if member is None or not member.is_card_member:
        return 0, growth
    target = program.level_for(growth)
    if target > member.level:
        await change_level(conn, member, target, TierReason.GROWTH_REACHED, growth, now)
        return target, growth
    return member.level, growth


async def change_level(conn: Connection, member: Member, level: int, reason: str,
                       growth: int, now: datetime) -> None:
    await MemberRepository(conn).set_level(member.member_id, level, now)
    await add_event(conn, topic=TOPIC, brand_id=member.brand_id, producer=PRODUCER,
                    payload=membership_events_pb2.MemberTierChanged(
                        brand_id=member.brand_id, account_id=member.account_id,
                        from_level=member.level, to_level=level, reason=reason,
                        member_id=member.member_id, growth_cents=growth))

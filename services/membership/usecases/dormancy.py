"""Dormancy: from the account's abnormal flag and its activity."""

from __future__ import annotations

from datetime import datetime

from brandclub.events.v1 import membership_events_pb2
from libs.db import Connection
from libs.outbox import add_event
from services.membership.adapters.facts_repository import FactRepository
from services.membership.adapters.members_repository import MemberRepository
from services.membership.adapters.programs_repository import ProgramRepository
from services.membership.dashboards import usecases as dashboards
from services.membership.domain.inputs import occurred_at, valid_account, valid_identifier
from services.membership.domain.model import (
    Member,
)
from services.membership.domain.program import (
    DEFAULT_DORMANT_AFTER_DAYS,
    is_dormant,
)
from services.membership.usecases.context import Context
from services.membership.usecases.events import PRODUCER, TOPIC


async def refresh_dormancy(conn: Connection, member: Member, abnormal: bool,
                           last_active: datetime | None, reason_on: str, reason_off: str,
                           now: datetime) -> bool:
    member_repo = MemberRepository(conn)
    program_repo = ProgramRepository(conn)
    program = await program_repo.get_program(member.brand_id)
    days = program.dormant_after_days if program else DEFAULT_DORMANT_AFTER_DAYS
    dormant = is_dormant(abnormal, last_active, member.member_since, days, now)
    if dormant == member.dormant:
        return False
    await member_repo.set_dormant(member.member_id, dormant, now)
    await dashboards.record_dormancy_change(
        conn, brand_id=member.brand_id, member_id=member.member_id,
        account_id=member.account_id, dormant=dormant,
        reason=reason_on if dormant else reason_off, at=now)
    await add_event(conn, topic=TOPIC, brand_id=member.brand_id, producer=PRODUCER,
                    payload=membership_events_pb2.MemberDormancyChanged(
                        brand_id=member.brand_id, account_id=member.account_id,
                        member_id=member.member_id, dormant=dormant,
                        reason=reason_on if dormant else reason_off))
    return True


async def initial_dormancy(conn: Connection, member: Member, now: datetime) -> None:
    """A new membership of an account the marketplace reported abnormal is dormant at once."""
    abnormal, last_active = await FactRepository(conn).account_state(member.account_id)
    if abnormal:
        await refresh_dormancy(conn, member, abnormal, last_active, "ACCOUNT_ABNORMAL",
                               "ACCOUNT_NORMAL", now)


async def record_account_status(context: Context, event_id: str, account_id: str,
                                abnormal: bool) -> bool:
    """RecordAccountStatus's flow, in one transaction; True for a duplicate."""
    async with context.db.transaction() as conn:
        duplicate, _ = await _apply_account_status(conn, event_id, account_id, abnormal,
                                                   context.clock())
    return duplicate


async def _apply_account_status(conn: Connection, event_id: str, account_id: str,
                                abnormal: bool, now: datetime) -> tuple[bool, list[str]]:
    """(duplicate, brands whose member of this account changed)."""
    event_id = valid_identifier(event_id, "event_id")
    account_id = valid_account(account_id)
    fact_repo = FactRepository(conn)
    member_repo = MemberRepository(conn)
    if not await fact_repo.claim_fact("", event_id, "account_status"):
        return True, []
    await fact_repo.set_account_abnormal(account_id, abnormal, now)
    _, last_active = await fact_repo.account_state(account_id)
    changed = []
    for member in await member_repo.live_members_of_account(account_id):
        if await refresh_dormancy(conn, member, abnormal, last_active, "ACCOUNT_ABNORMAL",
                                  "ACCOUNT_NORMAL", now):
            changed.append(member.brand_id)
    return False, changed


async def record_account_activity(context: Context, event_id: str, account_id: str,
                                  active_at: datetime | None) -> bool:
    """RecordAccountActivity's flow, in one transaction; True for a duplicate."""
    async with context.db.transaction() as conn:
        duplicate, _ = await _apply_account_activity(conn, event_id, account_id, active_at,
                                                     context.clock())
    return duplicate


async def _apply_account_activity(conn: Connection, event_id: str, account_id: str,
                                  active_at: datetime | None,
                                  now: datetime) -> tuple[bool, list[str]]:
    event_id = valid_identifier(event_id, "event_id")
    account_id = valid_account(account_id)
    active_at = occurred_at(active_at, "last_active_time")
    fact_repo = FactRepository(conn)
    member_repo = MemberRepository(conn)
    if not await fact_repo.claim_fact("", event_id, "account_activity"):
        return True, []
    await fact_repo.set_account_active(account_id, min(active_at, now), now)
    abnormal, last_active = await fact_repo.account_state(account_id)
    changed = []
    for member in await member_repo.live_members_of_account(account_id):
        if await refresh_dormancy(conn, member, abnormal, last_active, "INACTIVE", "ACTIVE",
                                  now):
            changed.append(member.brand_id)
    return False, changed

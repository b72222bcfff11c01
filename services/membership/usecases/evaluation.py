"""The periodic evaluation of every member: tiers down after retention, dormancy."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from libs.db import Connection, Database
from services.membership.adapters.brands_repository import BrandRepository
from services.membership.adapters.facts_repository import FactRepository
from services.membership.adapters.members_repository import MemberRepository
from services.membership.adapters.programs_repository import ProgramRepository
from services.membership.domain.program import (
    DEFAULT_DORMANT_AFTER_DAYS,
    Program,
    TierReason,
    is_dormant,
)
from services.membership.usecases.brands import existing_brand
from services.membership.usecases.context import MembershipContext
from services.membership.usecases.dormancy import refresh_dormancy
from services.membership.usecases.tiers import change_level

EVALUATION_BATCH = 500


@dataclass
class Evaluation:
    raised: int = 0
    lowered: int = 0
    became_dormant: int = 0
    became_valid: int = 0
    changed_accounts: list[str] = field(default_factory=list)


async def evaluate_members(context: MembershipContext, brand_id: str) -> Evaluation:
    """EvaluateMembers' and the evaluation loop's flow: evaluate the brand, then drop the
    cached cards of the members it changed."""
    result = await _evaluate_brand(context.db, brand_id, context.clock())
    await context.cards.forget(brand_id.strip(), result.changed_accounts)
    return result


async def evaluate_every_brand(context: MembershipContext) -> None:
    """The evaluation loop's round: every brand, one after the other."""
    async with context.db.connection() as conn:
        brand_ids = await BrandRepository(conn).brand_ids()
    for brand_id in brand_ids:
        await evaluate_members(context, brand_id)


async def _evaluate_brand(db: Database, brand_id: str, now: datetime) -> Evaluation:
    """Tiers: up where growth allows, down once the retention window has passed since the
    level was reached. Dormancy: from abnormal flags and inactivity. Batches of members, each
    change in its own transaction under the member's lock."""
    result = Evaluation()
    async with db.connection() as conn:
        brand = await existing_brand(conn, brand_id)
        program = await ProgramRepository(conn).get_program(brand.brand_id)
    if program is not None:
        await _evaluate_tiers(db, program, brand.brand_id, now, result)
    days = program.dormant_after_days if program else DEFAULT_DORMANT_AFTER_DAYS
    await _evaluate_dormancy(db, brand.brand_id, days, now, result)
    return result


async def _evaluate_tiers(db: Database, program: Program, brand_id: str, now: datetime,
                          result: Evaluation) -> None:
    after = ""
    while True:
        async with db.connection() as conn:
            rows = await MemberRepository(conn).card_members_with_growth(
                brand_id, program.growth_since(now), after, EVALUATION_BATCH)
        if not rows:
            return
        after = rows[-1]["member_id"]
        for row in rows:
            target = program.level_for(int(row["growth"]))
            if target == row["level"] or (
                    target < row["level"]
                    and not program.retention_over(row["level_since"], now)):
                continue
            async with db.transaction() as conn:
                moved = await _evaluate_member_tier(conn, program, brand_id,
                                                    row["account_id"], now)
            if moved > 0:
                result.raised += 1
            elif moved < 0:
                result.lowered += 1
            if moved:
                result.changed_accounts.append(row["account_id"])


async def _evaluate_dormancy(db: Database, brand_id: str, dormant_after_days: int,
                             now: datetime, result: Evaluation) -> None:
    after = ""
    while True:
        async with db.connection() as conn:
            rows = await MemberRepository(conn).dormancy_candidates(brand_id, after,
                                                                    EVALUATION_BATCH)
        if not rows:
            return
        after = rows[-1]["member_id"]
        for row in rows:
            dormant = is_dormant(row["abnormal"], row["last_active_at"], row["member_since"],
                                 dormant_after_days, now)
            if dormant == row["dormant"]:
                continue
            async with db.transaction() as conn:
                changed = await _evaluate_member_dormancy(conn, brand_id, row["account_id"],
                                                          row["member_id"], now)
            if changed:
                if dormant:
                    result.became_dormant += 1
                else:
                    result.became_valid += 1
                result.changed_accounts.append(row["account_id"])


async def _evaluate_member_dormancy(conn: Connection, brand_id: str, account_id: str,
                                    member_id: str, now: datetime) -> bool:
    """Under the member's lock, unless the membership ended or was replaced meanwhile."""
    fact_repo = FactRepository(conn)
    member_repo = MemberRepository(conn)
    await member_repo.lock_member_slot(brand_id, account_id)
    member = await member_repo.live_member(brand_id, account_id)
    if member is None or member.member_id != member_id:
        return False
    abnormal, last_active = await fact_repo.account_state(account_id)
    return await refresh_dormancy(conn, member, abnormal, last_active, "INACTIVE", "ACTIVE",
                                  now)


async def _evaluate_member_tier(conn: Connection, program: Program, brand_id: str,
                                account_id: str, now: datetime) -> int:
    fact_repo = FactRepository(conn)
    member_repo = MemberRepository(conn)
    await member_repo.lock_member_slot(brand_id, account_id)
    member = await member_repo.live_member(brand_id, account_id)
    if member is None or not member.is_card_member:
        return 0
    growth = await fact_repo.growth(brand_id, account_id, program.growth_since(now))
    target = program.level_for(growth)
    if target > member.level:
        await change_level(conn, member, target, TierReason.GROWTH_REACHED, growth, now)
    elif target < member.level and program.retention_over(member.level_since, now):
        await change_level(conn, member, target, TierReason.RETENTION_EXPIRED, growth, now)
    else:
        return 0
    return target - member.level

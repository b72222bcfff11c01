"""The periodic evaluation of every member: tiers down after retention, dormancy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from libs.db import Connection, Database
from services.membership.adapters.card_cache import CardCache
from services.membership.adapters.postgres import MembershipRepository
from services.membership.domain.program import (
    DEFAULT_DORMANT_AFTER_DAYS,
    Program,
    TierReason,
    is_dormant,
)
from services.membership.usecases.brands import get_brand
from services.membership.usecases.common import now_utc
from services.membership.usecases.dormancy import refresh_dormancy
from services.membership.usecases.tiers import change_level

EVALUATION_BATCH = 500


@dataclass
class Evaluation:
    raised: int = 0
    lowered: int = 0
    became_dormant: int = 0
    became_valid: int = 0
    changed_accounts: list[str] | None = None


async def evaluate_brand_and_forget_cards(db: Database, cache: CardCache,
                                          brand_id: str) -> Evaluation:
    """EvaluateMembers' and the evaluation loop's flow: evaluate the brand, then drop the
    cached cards of the members it changed."""
    result = await evaluate_brand(db, brand_id)
    await cache.forget(brand_id.strip(), result.changed_accounts or [])
    return result


async def evaluate_brand(db: Database, brand_id: str) -> Evaluation:
    """Tiers: up where growth allows, down once the retention window has passed since the
    level was reached. Dormancy: from abnormal flags and inactivity. Batches of members, each
    change in its own transaction under the member's lock."""
    result = Evaluation(changed_accounts=[])
    assert result.changed_accounts is not None
    async with db.connection() as conn:
        brand = await get_brand(conn, brand_id)
        program = await MembershipRepository(conn).get_program(brand.brand_id)
    now = now_utc()
    if program is not None:
        after = ""
        while True:
            async with db.connection() as conn:
                rows = await MembershipRepository(conn).card_members_with_growth(
                    brand.brand_id, program.growth_since(now), after, EVALUATION_BATCH)
            if not rows:
                break
            after = rows[-1]["member_id"]
            for row in rows:
                target = program.level_for(int(row["growth"]))
                if target == row["level"] or (
                        target < row["level"]
                        and not program.retention_over(row["level_since"], now)):
                    continue
                async with db.transaction() as conn:
                    moved = await _evaluate_member_tier(conn, program, brand.brand_id,
                                                        row["account_id"], now)
                if moved > 0:
                    result.raised += 1
                elif moved < 0:
                    result.lowered += 1
                if moved:
                    result.changed_accounts.append(row["account_id"])
    days = program.dormant_after_days if program else DEFAULT_DORMANT_AFTER_DAYS
    after = ""
    while True:
        async with db.connection() as conn:
            rows = await MembershipRepository(conn).dormancy_candidates(brand.brand_id, after,
                                                                        EVALUATION_BATCH)
        if not rows:
            break
        after = rows[-1]["member_id"]
        for row in rows:
            dormant = is_dormant(row["abnormal"], row["last_active_at"], row["member_since"],
                                 days, now)
            if dormant == row["dormant"]:
                continue
            async with db.transaction() as conn:
                repo = MembershipRepository(conn)
                await repo.lock_member_slot(brand.brand_id, row["account_id"])
                member = await repo.live_member(brand.brand_id, row["account_id"])
                if member is None or member.member_id != row["member_id"]:
                    continue
                abnormal, last_active = await repo.account_state(row["account_id"])
                if await refresh_dormancy(conn, member, abnormal, last_active, "INACTIVE",
                                          "ACTIVE", now):
                    if dormant:
                        result.became_dormant += 1
                    else:
                        result.became_valid += 1
                    result.changed_accounts.append(row["account_id"])
    return result


async def _evaluate_member_tier(conn: Connection, program: Program, brand_id: str,
                                account_id: str, now: datetime) -> int:
    repo = MembershipRepository(conn)
    await repo.lock_member_slot(brand_id, account_id)
    member = await repo.live_member(brand_id, account_id)
    if member is None or not member.is_card_member:
        return 0
    growth = await repo.growth(brand_id, account_id, program.growth_since(now))
    target = program.level_for(growth)
    if target > member.level:
        await change_level(conn, member, target, TierReason.GROWTH_REACHED, growth, now)
    elif target < member.level and program.retention_over(member.level_since, now):
        await change_level(conn, member, target, TierReason.RETENTION_EXPIRED, growth, now)
    else:
        return 0
    return target - member.level


async def brand_ids(db: Database) -> list[str]:
    async with db.connection() as conn:
        return await MembershipRepository(conn).brand_ids()

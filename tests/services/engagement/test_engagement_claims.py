"""Every reward grant's and draw saga's step runs exactly once, however many workers reach for
it: the request that drives it, its background dispatch, and the loops of two processes, all at
once on the same rows in a real PostgreSQL (ParticipationRepository.claim_grant /
claim_due_grants / claim_saga / claim_stale_sagas).

Each grant here fails for good twice (the delivery, then the refund of what paid for it), so
it crosses both steps: deliver (pending -> compensating) and refund (compensating -> failed).
Each saga fails its step for good: a spend refused (started -> failed) or a compensation that
cannot be made (compensating -> dead_letter).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest

from libs.db import Database
from libs.errors import DomainError, FailedPrecondition, NotFound
from libs.redis import connect_redis
from services.engagement.adapters.postgres import ParticipationRepository
from services.engagement.adapters.redis_lottery import LotteryCache
from services.engagement.domain.audience import MemberInfo
from services.engagement.domain.draws import DrawSaga
from services.engagement.usecases.engagement import Engagement

ROUNDS = 15
GRANTS_PER_ROUND = 8


class RefusingBenefits:
    """Benefits refusing every delivery and every refund, counting each call by the
    idempotency key it names (one key per grant and step)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    async def _refuse(self, request_id: str, error: Exception) -> str:
        self.calls[request_id] += 1
        await asyncio.sleep(0.005)  # a call takes time: the window a second worker would use
        raise error

    async def grant_points(self, *, request_id: str, brand_id: str, account_id: str,
                           amount: int, reason_code: str) -> str:
        return await self._refuse(request_id, FailedPrecondition(
            "the account is closed", reason="ACCOUNT_CLOSED"))

    async def spend_points(self, *, request_id: str, brand_id: str, account_id: str,
                           amount: int, reason_code: str) -> str:
        return await self._refuse(request_id, FailedPrecondition(
            "not enough points", reason="INSUFFICIENT_POINTS"))

    async def reverse_points(self, *, request_id: str, brand_id: str, entry_id: str,
                             reason_code: str) -> str:
        return await self._refuse(request_id, NotFound("no such entry",
                                                       reason="ENTRY_NOT_FOUND"))

    async def issue_coupon(self, *, request_id: str, brand_id: str, account_id: str,
                           coupon_template_id: str, reason_code: str) -> str:
        raise AssertionError("no grant here owes a coupon")

    async def coupon_template_exists(self, brand_id: str, template_id: str) -> bool:
        return True

    async def coupon_refusals(self, *, brand_id: str, account_id: str,
                              coupon_template_ids: list[str]) -> dict[str, str]:
        return {}


class NoMembership:
    async def time_zone(self, brand_id: str) -> str:
        return "Asia/Shanghai"

    async def member(self, brand_id: str, account_id: str) -> MemberInfo | None:
        return None


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await Database.connect(db_url, "engagement", min_size=2, max_size=30)
    yield database
    await database.close()


def worker(db: Database, benefits: RefusingBenefits, redis_url: str) -> Engagement:
    """One process's use cases; no grace, so its loop reaches for fresh grants at once."""
    return Engagement(db, LotteryCache(connect_redis(redis_url)), benefits, NoMembership(),
                      lambda: datetime.now(UTC), saga_grace_seconds=0.0)


async def owe(db: Database, count: int) -> list[str]:
    """`count` points rewards owed, each paid for by a spend to give back if it fails."""
    grant_ids = [f"g_{uuid.uuid4().hex}" for _ in range(count)]
    async with db.transaction() as conn:
        repo = ParticipationRepository(conn)
        for grant_id in grant_ids:
            await repo.add_grant(grant_id, "brd_1", f"acc_{grant_id}", 10, "", "TEST_REWARD",
                                 refund_entry_id=f"ent_{grant_id}")
    return grant_ids


async def test_each_grant_step_runs_once_with_request_and_loops_racing(
        db: Database, redis_url: str) -> None:
    benefits = RefusingBenefits()
    here, there = worker(db, benefits, redis_url), worker(db, benefits, redis_url)
    owed: list[str] = []
    try:
        for _ in range(ROUNDS):
            grant_ids = await owe(db, GRANTS_PER_ROUND)
            owed += grant_ids
            here.dispatch_later(grant_ids)
            await asyncio.gather(here.dispatch(grant_ids), here.dispatch_due(),
                                 there.dispatch_due(), there.dispatch(grant_ids[::-1]))
        for _ in range(50):  # drain: whatever a race left is finished by the loops
            if not await here.dispatch_due() + await there.dispatch_due():
                break
        await here.close()
    finally:
        await asyncio.gather(here.cache.redis.aclose(), there.cache.redis.aclose())
    twice = {key: n for key, n in benefits.calls.items() if n != 1}
    assert twice == {}, f"steps run more than once: {sorted(twice.items())[:5]}"
    expected = {f"eng:{g}:{step}" for g in owed for step in ("points", "refund")}
    assert set(benefits.calls) == expected
    async with db.connection() as conn:
        grants = await ParticipationRepository(conn).grants(owed)
    assert {g.state for g in grants} == {"failed"}
    assert all("ACCOUNT_CLOSED" in g.last_error for g in grants)


async def start_sagas(db: Database, count: int) -> dict[str, str]:
    """`count` paid draws left unfinished a minute ago (so recovery wants them at once), half
    before their spend and half giving their cost back; saga id -> the step's key."""
    steps: dict[str, str] = {}
    async with db.transaction() as conn:
        repo = ParticipationRepository(conn)
        for n in range(count):
            saga_id = f"drw_{uuid.uuid4().hex}"
            spending = n % 2 == 0
            await repo.add_saga(DrawSaga(saga_id, "brd_1", "act_1", f"acc_{saga_id}",
                                         f"req_{saga_id}", date(2026, 1, 1), 10,
                                         "started" if spending else "compensating", "", ""))
            steps[saga_id] = f"eng:{saga_id}:{'spend' if spending else 'reverse'}"
        await conn.execute(
            "UPDATE draw_sagas SET updated_at = now() - interval '1 minute', "
            "spend_entry_id = CASE WHEN state = 'compensating' THEN 'ent_' || saga_id "
            "ELSE '' END WHERE saga_id = ANY($1::text[])", list(steps))
    return steps


async def test_each_saga_step_runs_once_with_requests_and_recovery_racing(
        db: Database, redis_url: str) -> None:
    benefits = RefusingBenefits()
    here, there = worker(db, benefits, redis_url), worker(db, benefits, redis_url)
    steps: dict[str, str] = {}
    try:
        for _ in range(ROUNDS):
            started = await start_sagas(db, GRANTS_PER_ROUND)
            steps |= started
            answers = await asyncio.gather(
                here.recover_sagas(), there.recover_sagas(),
                *(runner.run_saga(saga_id) for saga_id in started for runner in (here, there)),
                return_exceptions=True)
            for answer in answers:  # a request answers the outcome, or that it is running
                assert isinstance(answer, int | DomainError), repr(answer)
                if isinstance(answer, DomainError):
                    assert answer.reason in ("INSUFFICIENT_POINTS", "REFUND_FAILED",
                                             "DRAW_IN_PROGRESS"), repr(answer)
    finally:
        await asyncio.gather(here.cache.redis.aclose(), there.cache.redis.aclose())
    twice = {key: n for key, n in benefits.calls.items() if n != 1}
    assert twice == {}, f"steps run more than once: {sorted(twice.items())[:5]}"
    assert set(benefits.calls) == set(steps.values())
    async with db.connection() as conn:
        states = {r["state"] for r in await conn.fetch(
            "SELECT state FROM draw_sagas WHERE saga_id = ANY($1::text[])", list(steps))}
    assert states == {"failed", "dead_letter"}

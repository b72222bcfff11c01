"""Rewards: owing a reward (a pending grant row) and delivering it through benefits."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from libs.errors import require
from libs.logging import get_logger
from libs.paging import Position, decode_time_and_id, keyset_page, page_size, time_and_id
from libs.sagas import decide
from services.engagement.adapters.postgres import ParticipationRepository
from services.engagement.domain.activity_kinds import Reward
from services.engagement.domain.grants import Grant
from services.engagement.usecases import saga_steps
from services.engagement.usecases.context import EngagementContext

MAKE_UP_REFUND_REASON = "MAKE_UP_SIGN_IN_NOT_RECORDED"
# Grants the dispatch loop sends to benefits at once.
DISPATCH_CONCURRENCY = 16
# How long a worker holds a grant's step (ParticipationRepository.claim_grant): well past a
# benefits call's deadline; a worker that dies holding it delays the grant this long.
GRANT_LEASE_SECONDS = 60.0
log = get_logger(__name__)


async def owe_reward(repo: ParticipationRepository, grant_id: str, brand_id: str, account_id: str,
                 reward: Reward, reason_code: str, refund_entry_id: str = "") -> str:
    await repo.add_grant(grant_id, brand_id, account_id, reward.points,
                         reward.coupon_template_id, reason_code, refund_entry_id)
    return grant_id


def _updated_position(grant: Grant) -> Position:
    # A failed grant was moved there by an UPDATE that set updated_at.
    assert grant.updated_at is not None
    return time_and_id(grant.updated_at, grant.grant_id)


class RewardDispatch(EngagementContext):
    """Owed rewards delivered through benefits: at once, in the background, or by the
    dispatch loop; a reward that cannot be delivered gives back what paid for it."""

    async def dispatch(self, grant_ids: list[str]) -> list[Grant]:
        """Grant owed rewards through benefits now; what fails stays pending for the loop."""
        for grant_id in grant_ids:
            await self._dispatch_one(grant_id)
        async with self.db.connection() as conn:
            return await ParticipationRepository(conn).grants(grant_ids)

    async def _dispatch_one(self, grant_id: str) -> None:
        """Run an owed reward's next step, when this worker claims it (see `_run_claimed`)."""
        async with self.db.connection() as conn:
            grant = await ParticipationRepository(conn).claim_grant(grant_id,
                                                                   GRANT_LEASE_SECONDS)
        if grant is not None:
            await self._run_claimed(grant)

    async def _run_claimed(self, grant: Grant) -> None:
        """Deliver one owed reward this worker holds the claim of. A transient failure is
        retried with backoff up to GRANT_RETRY; a permanent one (or the bound reached) ends
        the grant 'failed' with its reason, after giving back what the reward was paid with
        (a lottery draw's cost)."""
        if grant.state == "compensating":
            await self._refund_grant(grant)
            return
        grant_id = grant.grant_id
        entry_id, coupon_id = grant.points_entry_id, ""
        try:
            if grant.points and not entry_id:
                entry_id = await self.benefits.grant_points(
                    request_id=f"eng:{grant.grant_id}:points", brand_id=grant.brand_id,
                    account_id=grant.account_id, amount=grant.points,
                    reason_code=grant.reason_code)
            if grant.coupon_template_id:
                coupon_id = await self.benefits.issue_coupon(
                    request_id=f"eng:{grant.grant_id}:coupon", brand_id=grant.brand_id,
                    account_id=grant.account_id, coupon_template_id=grant.coupon_template_id,
                    reason_code=grant.reason_code)
        except Exception as exc:
            decision = decide(exc, grant.attempts + 1, saga_steps.GRANT_RETRY)
            if decision.retry:
                async with self.db.connection() as conn:
                    await ParticipationRepository(conn).retry_grant_later(
                        grant_id, entry_id, decision.reason, decision.delay)
                return
            log.error("reward_grant_failed", grant_id=grant_id, error=decision.reason,
                      refund=bool(grant.refund_entry_id))
            to_state = "compensating" if grant.refund_entry_id else "failed"
            async with self.db.connection() as conn:
                # Moving on to the refund keeps the claim: this worker refunds next.
                moved = await ParticipationRepository(conn).finish_grant(
                    grant_id, to_state, entry_id, "", decision.reason,
                    hold_seconds=GRANT_LEASE_SECONDS if grant.refund_entry_id else 0.0)
            if moved and grant.refund_entry_id:
                await self._refund_grant(replace(grant, state="compensating",
                                                 points_entry_id=entry_id,
                                                 attempts=grant.attempts + 1,
                                                 last_error=decision.reason))
            return
        async with self.db.connection() as conn:
            await ParticipationRepository(conn).finish_grant(grant_id, "done", entry_id,
                                                             coupon_id, "")

    async def _refund_grant(self, grant: Grant) -> None:
        """A reward that cannot be delivered gives back what paid for it (the draw's cost)
        and its prize goes back to the stock; then the grant ends 'failed' with the reason."""
        try:
            refund = await self.benefits.reverse_points(
                request_id=f"eng:{grant.grant_id}:refund", brand_id=grant.brand_id,
                entry_id=grant.refund_entry_id,
                reason_code=(MAKE_UP_REFUND_REASON if grant.reason_code == MAKE_UP_REFUND_REASON
                             else "LOTTERY_PRIZE_NOT_DELIVERED"))
        except Exception as exc:
            decision = decide(exc, grant.attempts + 1, saga_steps.REFUND_RETRY)
            async with self.db.connection() as conn:
                repo = ParticipationRepository(conn)
                if decision.retry:
                    await repo.retry_grant_later(grant.grant_id, grant.points_entry_id,
                                                 grant.last_error, decision.delay,
                                                 state="compensating")
                    return
                log.error("reward_refund_failed", grant_id=grant.grant_id,
                          error=decision.reason)
                await repo.finish_grant(
                    grant.grant_id, "failed", grant.points_entry_id, "",
                    f"{grant.last_error}; REFUND_FAILED: {decision.reason}",
                    from_state="compensating")
            return
        async with self.db.transaction() as conn:
            prize = await ParticipationRepository(conn).refunded_grant(grant.grant_id, refund)
        if prize is not None:
            brand_id, activity_id, prize_id = prize
            try:
                await self.cache.return_prize(brand_id=brand_id, activity_id=activity_id,
                                              prize_id=prize_id)
            except Exception as exc:  # reconciliation rebuilds the stock from PostgreSQL
                log.warning("lottery_prize_return_failed", grant_id=grant.grant_id,
                            error=repr(exc))

    async def member_grants(self, brand_id: str, account_id: str, requested_size: int,
                            token: str) -> tuple[list[Grant], str]:
        """ListMemberRewardGrants: a member's rewards in one brand, newest first, paged."""
        brand_id = require(brand_id, "brand_id")
        account_id = require(account_id, "account_id")
        size = page_size(requested_size)
        filters = {"brand_id": brand_id, "account_id": account_id}
        after = decode_time_and_id(token, filters=filters)
        async with self.db.connection() as conn:
            rows = await ParticipationRepository(conn).member_grants(brand_id, account_id,
                                                                     size + 1, after)
        page, next_token = keyset_page(rows, size, lambda r: time_and_id(r[1], r[0].grant_id),
                                       filters=filters)
        return [g for g, _ in page], next_token

    async def failed_grants(self, brand_id: str, requested_size: int,
                            token: str) -> tuple[list[Grant], str]:
        """ListFailedRewardGrants: the brand's rewards that could not be delivered, paged."""
        brand_id = require(brand_id, "brand_id")
        size = page_size(requested_size)
        filters = {"brand_id": brand_id}
        after = decode_time_and_id(token, filters=filters)
        async with self.db.connection() as conn:
            rows = await ParticipationRepository(conn).failed_grants(brand_id, size + 1, after)
        return keyset_page(rows, size, _updated_position, filters=filters)

    def dispatch_later(self, grant_ids: list[str]) -> None:
        """Grant in the background: the hot path (the midnight sign-in burst) answers at once
        and the rewards follow; the dispatch loop is the safety net for what this misses."""
        if not grant_ids:
            return
        task = asyncio.create_task(self._dispatch_quietly(grant_ids))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch_quietly(self, grant_ids: list[str]) -> None:
        for grant_id in grant_ids:
            try:
                await self._dispatch_one(grant_id)
            except Exception as exc:  # one bad grant must not stop the others
                log.warning("reward_dispatch_error", grant_id=grant_id, error=repr(exc))

    async def dispatch_due(self, limit: int = 100) -> int:
        """The dispatch loop's pass: the grants whose time has come, claimed in one
        statement (a grant a request or another process holds is not among them)."""
        async with self.db.connection() as conn:
            due = await ParticipationRepository(conn).claim_due_grants(
                limit, GRANT_LEASE_SECONDS, self.saga_grace_seconds)
        gate = asyncio.Semaphore(DISPATCH_CONCURRENCY)

        async def one(grant: Grant) -> None:
            async with gate:
                try:
                    await self._run_claimed(grant)
                except Exception as exc:  # one bad grant must not stop the others
                    log.warning("reward_dispatch_error", grant_id=grant.grant_id,
                                error=repr(exc))

        await asyncio.gather(*(one(grant) for grant in due))
        return len(due)

    async def close(self) -> None:
        """Stop background grants (their rows stay pending for the next start)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

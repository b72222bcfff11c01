"""The instant lottery's draw saga and its Redis reconciliation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime

from brandclub.events.v1 import engagement_events_pb2 as events
from libs.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
    found,
    require,
)
from libs.logging import get_logger
from libs.metrics import lottery_stock_left
from libs.outbox import add_event
from libs.paging import decode_time_and_id, keyset_page, page_size, time_and_id
from libs.sagas import decide, reason_of
from services.engagement.adapters.postgres import ParticipationRepository
from services.engagement.adapters.redis_lottery import PrizeSlot, RedisDraw
from services.engagement.domain.activities import Activity, ActivityState
from services.engagement.domain.activity_kinds import (
    ActivityKind,
    LotteryConfig,
    LotteryMode,
    PrizeKind,
)
from services.engagement.domain.draws import Draw, DrawSaga
from services.engagement.domain.grants import Grant
from services.engagement.domain.participation import (
    check_draw_limits,
    local_date,
    new_random,
    weights_of,
    weights_text,
)
from services.engagement.ports import is_transient
from services.engagement.usecases import saga_steps
from services.engagement.usecases.context import PRODUCER, TOPIC, get_activity, new_id
from services.engagement.usecases.rewards import RewardDispatch, owe_reward

# A paid draw that cannot reach Redis for this long is compensated rather than resumed.
DRAW_GIVE_UP_SECONDS = 300.0
# How long a runner holds a saga (ParticipationRepository.claim_saga): well past one step's
# calls to benefits and Redis; a runner that dies holding it delays its recovery this long.
SAGA_LEASE_SECONDS = 60.0
_UNFINISHED = ("started", "spent", "recorded", "compensating")
log = get_logger(__name__)


class DrawRefused(FailedPrecondition):
    """The draw could not happen; any points it cost were given back."""


def _in_progress(draw_id: str) -> Unavailable:
    return Unavailable("the draw is in progress and will complete; retry with the same "
                       "request_id to read its result", reason="DRAW_IN_PROGRESS",
                       metadata={"draw_id": draw_id})


@dataclass(frozen=True)
class DrawView:
    draw: Draw
    grant: Grant | None


@dataclass(frozen=True)
class LotteryStatus:
    config: LotteryConfig
    # prize_id -> (stock, won)
    prize_counts: dict[str, tuple[int, int]]
    draws: int
    # (draw_id, failure_reason) of draws whose compensation failed for good
    dead_letter: list[tuple[str, str]]


class LotteryDraws(RewardDispatch):
    """The instant lottery: its Redis state rebuilt from PostgreSQL, and the draw saga
    (spend, draw in Redis, record in PostgreSQL, grant the prize, or compensate)."""

    async def lottery(self, brand_id: str, activity_id: str) -> tuple[Activity, LotteryConfig]:
        """A lottery activity and its configuration (refused when the activity is another
        kind)."""
        activity = await self.activity(require(brand_id, "brand_id"),
                                       require(activity_id, "activity_id"))
        activity.require_kind(ActivityKind.LOTTERY)
        config = activity.definition.config
        assert isinstance(config, LotteryConfig)
        return activity, config

    async def get_draw(self, brand_id: str, draw_id: str) -> tuple[DrawView, LotteryConfig]:
        """GetDraw: a recorded draw, its prize's grant and its lottery's configuration."""
        async with self.db.connection() as conn:
            repo = ParticipationRepository(conn)
            draw = found(await repo.get_draw(require(brand_id, "brand_id"),
                                             require(draw_id, "draw_id")),
                         f"draw {draw_id}", reason="DRAW_NOT_FOUND", draw_id=draw_id)
            grants = await repo.grants([draw.grant_id]) if draw.grant_id else []
        _, config = await self.lottery(brand_id, draw.activity_id)
        return DrawView(draw, grants[0] if grants else None), config

    async def list_draws(self, brand_id: str, activity_id: str, account_id: str,
                         requested_size: int, token: str,
                         ) -> tuple[list[DrawView], str, LotteryConfig]:
        """ListDraws: a lottery's draws (one member's, when named), newest first, each with
        its prize's grant so the list tells what was delivered and what was not."""
        _, config = await self.lottery(brand_id, activity_id)
        size = page_size(requested_size)
        account_id = account_id.strip()
        filters = {"brand_id": brand_id, "activity_id": activity_id, "account_id": account_id}
        after = decode_time_and_id(token, filters=filters)
        async with self.db.connection() as conn:
            repo = ParticipationRepository(conn)
            rows = await repo.page_draws(brand_id, activity_id, account_id, size + 1, after)
            page, next_token = keyset_page(rows, size, lambda d: time_and_id(d.drawn_at,
                                                                             d.draw_id),
                                           filters=filters)
            grants = {g.grant_id: g for g in await repo.grants(
                [d.grant_id for d in page if d.grant_id])}
        return [DrawView(d, grants.get(d.grant_id or "")) for d in page], next_token, config

    async def lottery_status(self, brand_id: str, activity_id: str) -> LotteryStatus:
        """GetLotteryStatus: prizes won and left, draws made, draws dead-lettered."""
        activity, config = await self.lottery(brand_id, activity_id)
        async with self.db.connection() as conn:
            repo = ParticipationRepository(conn)
            counts = await repo.prize_counts(activity.activity_id)
            draws = await repo.count_draws(activity.activity_id)
            dead = await repo.dead_letter_draws(activity.activity_id)
        return LotteryStatus(config, counts, draws, dead)

    async def reconcile(self, brand_id: str, activity_id: str) -> dict[str, tuple[int, int]]:
        """Rebuild the lottery's Redis state from PostgreSQL: stock = stock - wins recorded."""
        lock = self._reconcile_locks.setdefault(activity_id, asyncio.Lock())
        async with lock, self.db.transaction() as conn:
            activity = await get_activity(conn, brand_id, activity_id)
            repo = ParticipationRepository(conn)
            await repo.lock("reconcile", activity_id)
            counts = await repo.prize_counts(activity_id)
            await self.cache.rebuild(brand_id=brand_id, activity_id=activity_id,
                                     remaining={k: v[0] - v[1] for k, v in counts.items()},
                                     ttl_seconds=self._ttl(activity))
            log.info("lottery_reconciled", activity_id=activity_id)
            return counts

    def _ttl(self, activity: Activity) -> int:
        left = (activity.ends_at - self.clock()).total_seconds()
        return int(max(left, 0) + 7 * 86400)

    async def reconcile_lottery(self, brand_id: str, activity_id: str, request_id: str,
                                ) -> tuple[LotteryConfig, dict[str, tuple[int, int]]]:
        """ReconcileLottery: Redis rebuilt from PostgreSQL; the prizes and their counts."""
        require(request_id, "request_id")
        _, config = await self.lottery(brand_id, activity_id)
        return config, await self.reconcile(brand_id, activity_id)

    # --- lottery: the draw saga ---
    async def draw_lottery(self, brand_id: str, activity_id: str, account_id: str,
                           request_id: str) -> tuple[DrawView, LotteryConfig]:
        """DrawLottery: the draw saga run to its end (see `draw`), with the lottery's
        configuration the answer names the prize from."""
        view = await self.draw(brand_id, activity_id, account_id, request_id)
        _, config = await self.lottery(brand_id, activity_id)
        return view, config

    async def draw(self, brand_id: str, activity_id: str, account_id: str,
                   request_id: str) -> DrawView:
        request_id = require(request_id, "request_id")
        if len(request_id) > 128:
            raise InvalidArgument("request_id must be at most 128 characters",
                                  field="request_id", reason="REQUEST_ID_TOO_LONG")
        activity_id = require(activity_id, "activity_id")
        saga: DrawSaga | None
        try:
            saga = await self._new_saga(brand_id, activity_id, account_id, request_id)
        except DomainError:
            # A retry of a draw that exists answers its outcome, even when a new draw would
            # now be refused (the lottery closed, the member reached a limit with it).
            saga = await self._saga_by_request(activity_id, request_id)
            if saga is None:
                raise
        if saga.account_id != account_id or saga.brand_id != brand_id:
            raise FailedPrecondition(f"request_id {request_id!r} was already used with "
                                     "different parameters", reason="REQUEST_ID_REUSED")
        return await self.run_saga(saga.saga_id, saga)

    async def _saga_by_request(self, activity_id: str, request_id: str) -> DrawSaga | None:
        async with self.db.connection() as conn:
            return await ParticipationRepository(conn).saga_by_request(activity_id, request_id)

    async def _new_saga(self, brand_id: str, activity_id: str, account_id: str,
                        request_id: str) -> DrawSaga:
        """Start a draw's saga, or find the one this request_id started before."""
        now = self.clock()
        p = await self.participant(brand_id, activity_id, account_id, ActivityKind.LOTTERY,
                                   now)
        config = p.activity.definition.config
        assert isinstance(config, LotteryConfig)
        if config.mode is not LotteryMode.INSTANT:
            raise FailedPrecondition("a koi draw is entered, not drawn",
                                     reason="NOT_AN_INSTANT_LOTTERY")
        new = DrawSaga(new_id("drw"), p.brand_id, p.activity_id, p.account_id, request_id,
                       local_date(now, p.time_zone), config.cost_points, "started", "", "")
        async with self.db.connection() as conn:
            repo = ParticipationRepository(conn)
            if config.daily_limit or config.total_limit:
                # Cheap early refusal, before any points move; the Redis script and the
                # record step decide.
                today, total = await repo.draw_counts(p.activity_id, p.account_id,
                                                      new.local_date)
                check_draw_limits(config, today, total)
            if await repo.add_saga(new):
                return new
            existing = await repo.saga_by_request(p.activity_id, request_id)
        assert existing is not None  # the conflicting saga is committed
        return existing

    async def run_saga(self, saga_id: str, saga: DrawSaga | None = None, *,
                       claimed: bool = False) -> DrawView:
        """Drive a draw saga from its recorded state to an end:
        started -> spent -> completed (draw recorded, prize owed), or
        -> compensating -> compensated (the spend reversed), or failed (spend refused).
        An unfinished saga is run only by the runner that claims it (`claimed`: the caller
        already did); one another runner holds answers DRAW_IN_PROGRESS. Each step still
        moves the state only from the state it saw; when it moved, the saga is read again."""
        recorded: Draw | None = None
        while True:
            if saga is None:
                async with self.db.connection() as conn:
                    saga = await ParticipationRepository(conn).saga(saga_id)
            assert saga is not None
            if saga.state in _UNFINISHED and not claimed:
                async with self.db.connection() as conn:
                    taken = await ParticipationRepository(conn).claim_saga(
                        saga.saga_id, SAGA_LEASE_SECONDS)
                if taken is None:  # finished meanwhile, or another runner holds it
                    async with self.db.connection() as conn:
                        saga = await ParticipationRepository(conn).saga(saga_id)
                    assert saga is not None
                    if saga.state in _UNFINISHED:
                        raise _in_progress(saga.saga_id)
                    continue
                saga, claimed = taken, True
            if saga.state == "started":
                saga = await self._spend(saga)
            elif saga.state == "spent":
                outcome = await self._draw_and_record(saga)
                if isinstance(outcome, Draw):
                    recorded, saga = outcome, replace(saga, state="completed")
                else:
                    saga = outcome
            elif saga.state == "compensating":
                saga = await self._compensate(saga)
            elif saga.state in ("completed", "recorded"):
                if recorded is None:
                    async with self.db.connection() as conn:
                        recorded = await ParticipationRepository(conn).get_draw(
                            saga.brand_id, saga.saga_id)
                assert recorded is not None
                grants = await self.dispatch([recorded.grant_id]) if recorded.grant_id else []
                return DrawView(recorded, grants[0] if grants else None)
            else:  # failed or compensated: the draw did not happen
                reason, _, message = saga.failure_reason.partition(": ")
                raise DrawRefused(message or "the draw did not happen",
                                  reason=reason or "DRAW_NOT_HAPPENED",
                                  metadata={"draw_id": saga.saga_id})

    async def _set_state(self, saga: DrawSaga, to_state: str, *, spend_entry_id: str = "",
                         failure_reason: str = "") -> DrawSaga | None:
        if saga.stored_state is not None:  # carry the unwritten spend along
            spend_entry_id = spend_entry_id or saga.spend_entry_id
        async with self.db.connection() as conn:
            moved = await ParticipationRepository(conn).move_saga(
                saga.saga_id, saga.stored_state or saga.state, to_state,
                spend_entry_id=spend_entry_id or None, failure_reason=failure_reason or None)
        if not moved:
            return None
        return replace(saga, state=to_state,
                       spend_entry_id=spend_entry_id or saga.spend_entry_id,
                       failure_reason=failure_reason or saga.failure_reason, stored_state=None,
                       attempts=saga.attempts if to_state == saga.state else 0)

    async def _transient(self, saga: DrawSaga, exc: DomainError,
                         backoff_seconds: float = 0.0) -> Unavailable:
        async with self.db.connection() as conn:
            repo = ParticipationRepository(conn)
            if saga.stored_state is not None:
                # Leaving the happy path: write the spend down before answering.
                await repo.move_saga(saga.saga_id, saga.stored_state, saga.state,
                                     spend_entry_id=saga.spend_entry_id or None)
            await repo.touch_saga(saga.saga_id, saga.failure_reason, backoff_seconds)
        log.warning("draw_saga_step_unavailable", saga_id=saga.saga_id, state=saga.state,
                    error=repr(exc))
        return _in_progress(saga.saga_id)

    async def _spend(self, saga: DrawSaga) -> DrawSaga | None:
        if not saga.cost_points:
            return await self._set_state(saga, "spent")
        try:
            entry_id = await self.benefits.spend_points(
                request_id=f"eng:{saga.saga_id}:spend", brand_id=saga.brand_id,
                account_id=saga.account_id, amount=saga.cost_points,
                reason_code="LOTTERY_DRAW_COST")
        except DomainError as exc:
            decision = decide(exc, saga.attempts + 1, saga_steps.SPEND_RETRY)
            if decision.retry:
                raise await self._transient(saga, exc, decision.delay) from None
            if is_transient(exc):
                # Benefits never answered within the bound: the spend may or may not have
                # been applied; compensation finds out (same request_id) and gives it back.
                return await self._set_state(saga, "compensating",
                                             failure_reason=decision.reason)
            return await self._set_state(saga, "failed", failure_reason=decision.reason)
        # Not written here: the draw's record (or any way off the happy path) writes "spent"
        # with its entry in the same statement. A saga left "started" by a crash spends again
        # on recovery under the same request_id, which benefits answers with this entry.
        return replace(saga, state="spent", spend_entry_id=entry_id,
                       stored_state=saga.stored_state or saga.state)

    async def _refuse(self, saga: DrawSaga, reason: str, message: str) -> DrawSaga | None:
        return await self._set_state(
            saga, "compensating" if saga.spend_entry_id else "compensated",
            failure_reason=f"{reason}: {message}")

    async def _compensate(self, saga: DrawSaga) -> DrawSaga | None:
        """Give the draw's cost back. Transient failures are retried up to REFUND_RETRY; a
        compensation that cannot be made ends 'dead_letter' with the reason."""
        try:
            entry_id = saga.spend_entry_id
            if not entry_id and saga.cost_points:
                # The spend's answer never came: the same request_id answers the entry if it
                # was applied (or applies it now, given back just below), or refuses it.
                try:
                    entry_id = await self.benefits.spend_points(
                        request_id=f"eng:{saga.saga_id}:spend", brand_id=saga.brand_id,
                        account_id=saga.account_id, amount=saga.cost_points,
                        reason_code="LOTTERY_DRAW_COST")
                except DomainError as exc:
                    if is_transient(exc):
                        raise
                    return await self._set_state(saga, "compensated")
            if entry_id:
                await self.benefits.reverse_points(
                    request_id=f"eng:{saga.saga_id}:reverse", brand_id=saga.brand_id,
                    entry_id=entry_id, reason_code="LOTTERY_DRAW_NOT_HAPPENED")
        except DomainError as exc:
            decision = decide(exc, saga.attempts + 1, saga_steps.REFUND_RETRY)
            if decision.retry:
                raise await self._transient(saga, exc, decision.delay) from None
            log.error("draw_compensation_failed", saga_id=saga.saga_id, error=decision.reason)
            return await self._set_state(
                saga, "dead_letter",
                failure_reason=f"REFUND_FAILED: {saga.failure_reason}; {decision.reason}")
        return await self._set_state(saga, "compensated")

    async def _draw_and_record(self, saga: DrawSaga) -> DrawSaga | Draw | None:
        now = self.clock()
        activity = await self.activity(saga.brand_id, saga.activity_id)
        config = activity.definition.config
        assert isinstance(config, LotteryConfig)
        if activity.state_at(now) is not ActivityState.LIVE:
            return await self._refuse(saga, "ACTIVITY_NOT_LIVE", "the lottery is not live")
        # A prize the member cannot get (a coupon they already hold to the limit, a template
        # that is closed or gone) weighs 0 in this draw: never a WON that cannot be delivered.
        undeliverable = await self._undeliverable_prizes(saga, config)
        weights = [(pid, 0 if pid in undeliverable else w) for pid, w in weights_of(config)]
        total_weight = sum(w for _, w in weights)
        if total_weight <= 0:
            return await self._refuse(saga, "NO_PRIZE_AVAILABLE",
                                      "no prize of this lottery can be given to the member")
        slots = [PrizeSlot(p.prize_id, 0 if p.prize_id in undeliverable else p.weight,
                           p.kind is not PrizeKind.THANKS) for p in config.prizes]
        random_value = new_random(total_weight)
        member_counts: tuple[int, int] | None = None
        try:
            for _ in range(5):
                result: RedisDraw = await self.cache.draw(
                    brand_id=saga.brand_id, activity_id=saga.activity_id,
                    account_id=saga.account_id, draw_id=saga.saga_id,
                    local_date=saga.local_date.isoformat(), daily_limit=config.daily_limit,
                    total_limit=config.total_limit, random_value=random_value, prizes=slots,
                    member_counts=member_counts, ttl_seconds=self._ttl(activity))
                if result.status == "NOT_READY":
                    await self.reconcile(saga.brand_id, saga.activity_id)
                elif result.status == "LOAD_MEMBER":
                    async with self.db.connection() as conn:
                        today, total = await ParticipationRepository(conn).draw_counts(
                            saga.activity_id, saga.account_id, saga.local_date)
                    member_counts = (total, today)
                else:
                    break
            else:
                raise Unavailable("the lottery's Redis state could not be made ready",
                                  reason="LOTTERY_NOT_READY")
        except Exception as exc:  # Redis unreachable: the saga stays "spent" and resumes
            if self._given_up(saga):
                return await self._refuse(saga, "LOTTERY_UNAVAILABLE",
                                          "the draw could not be made in time")
            error = exc if isinstance(exc, DomainError) else Unavailable(
                repr(exc), reason="REDIS_UNAVAILABLE")
            raise await self._transient(saga, error) from None
        if result.status == "DAILY_LIMIT":
            return await self._refuse(saga, "DAILY_LIMIT_REACHED",
                                      "the member has used today's draws")
        if result.status == "TOTAL_LIMIT":
            return await self._refuse(saga, "TOTAL_LIMIT_REACHED",
                                      "the member has used all draws of this lottery")
        return await self._record(saga, activity, config, result, weights, total_weight, now)

    async def _undeliverable_prizes(self, saga: DrawSaga, config: LotteryConfig) -> set[str]:
        """Coupon prizes benefits says it could not issue to the member now. When benefits
        cannot answer, every prize stays in (the grant step compensates if one fails)."""
        templates = {p.prize_id: p.reward.coupon_template_id for p in config.prizes
                     if p.kind is not PrizeKind.THANKS and p.reward.coupon_template_id}
        if not templates:
            return set()
        try:
            refusals = await self.benefits.coupon_refusals(
                brand_id=saga.brand_id, account_id=saga.account_id,
                coupon_template_ids=sorted(set(templates.values())))
        except Exception as exc:
            log.warning("lottery_prize_check_unavailable", saga_id=saga.saga_id,
                        error=reason_of(exc))
            return set()
        return {pid for pid, template in templates.items() if refusals.get(template)}

    def _given_up(self, saga: DrawSaga) -> bool:
        """A paid draw that could not be drawn for DRAW_GIVE_UP_SECONDS (Redis down that long)
        is compensated instead of keeping the member's points waiting."""
        if saga.created_at is None:
            return False
        return (self.clock() - saga.created_at).total_seconds() > DRAW_GIVE_UP_SECONDS

    async def _record(self, saga: DrawSaga, activity: Activity, config: LotteryConfig,
                      result: RedisDraw, weights: list[tuple[str, int]], total_weight: int,
                      now: datetime) -> DrawSaga | Draw | None:
        """PostgreSQL has the final say: limits and stock are checked again here, and a win
        exists only once this transaction commits."""
        refused = ""
        recorded: Draw | None = None
        from_state = saga.stored_state or "spent"
        entry_id = saga.spend_entry_id if saga.stored_state is not None else ""
        if not (config.daily_limit or config.total_limit) and not result.won_prize_id:
            # Nothing won and no limit to check again: the state move and the draw's record
            # are one statement (atomic on its own).
            lost = Draw(saga.saga_id, saga.brand_id, saga.activity_id, saga.account_id,
                        saga.local_date, result.picked_prize_id, None, result.random_value,
                        total_weight, weights_text(weights), saga.cost_points, None, now)
            async with self.db.connection() as conn:
                if not await ParticipationRepository(conn).complete_lost_draw(
                        from_state, entry_id or None, lost):
                    return None
            return lost
        async with self.db.transaction() as conn:
            repo = ParticipationRepository(conn)
            # Moving the state first locks the saga's row and proves no other runner did.
            if not await repo.move_saga(saga.saga_id, from_state, "completed",
                                        spend_entry_id=entry_id or None):
                return None
            if config.daily_limit or config.total_limit:
                await repo.lock("draw", saga.activity_id, saga.account_id)
                today, total = await repo.draw_counts(saga.activity_id, saga.account_id,
                                                      saga.local_date)
                try:
                    check_draw_limits(config, today, total)
                except FailedPrecondition as exc:
                    refused = f"{exc.reason}: {exc.message}"
            if not refused:
                won = result.won_prize_id or None
                left = await repo.take_prize(saga.activity_id, won) if won else None
                if won is not None:
                    lottery_stock_left(saga.activity_id, won, left or 0)
                if left is None:
                    won = None  # Redis thought stock remained; PostgreSQL says no
                prize = config.prize(won) if won else None
                grant_id: str | None = None
                if prize is not None and not prize.reward.empty:
                    grant_id = await owe_reward(repo, saga.saga_id, saga.brand_id,
                                            saga.account_id, prize.reward, "LOTTERY_PRIZE",
                                            saga.spend_entry_id)
                recorded = Draw(
                    saga.saga_id, saga.brand_id, saga.activity_id, saga.account_id,
                    saga.local_date, result.picked_prize_id, won, result.random_value,
                    total_weight, weights_text(weights), saga.cost_points, grant_id, now)
                await repo.add_draw(recorded)
                if prize is not None:
                    await add_event(conn, topic=TOPIC, brand_id=saga.brand_id,
                                    producer=PRODUCER, payload=events.LotteryPrizeWon(
                                        brand_id=saga.brand_id, account_id=saga.account_id,
                                        activity_id=saga.activity_id, draw_id=saga.saga_id,
                                        prize_id=prize.prize_id))
            else:
                await repo.move_saga(saga.saga_id, "completed",
                                     "compensating" if saga.spend_entry_id else "compensated",
                                     failure_reason=refused)
        if recorded is not None:
            return recorded
        try:
            await self.cache.undo(brand_id=saga.brand_id, activity_id=saga.activity_id,
                                  account_id=saga.account_id, draw_id=saga.saga_id,
                                  local_date=saga.local_date.isoformat())
        except Exception as exc:
            log.warning("lottery_undo_failed", saga_id=saga.saga_id, error=repr(exc))
        return replace(saga, state="compensating" if saga.spend_entry_id else "compensated",
                       failure_reason=refused, stored_state=None)

    async def recover_sagas(self, limit: int = 100) -> int:
        """Resume sagas left unfinished (a crash, an outage) after the grace period, each
        claimed in the same statement that finds it (none a request is driving)."""
        async with self.db.connection() as conn:
            stale = await ParticipationRepository(conn).claim_stale_sagas(
                self.saga_grace_seconds, limit, SAGA_LEASE_SECONDS)
        for saga in stale:
            saga_id = saga.saga_id
            try:
                await self.run_saga(saga_id, saga, claimed=True)
            except DomainError as exc:
                if exc.code.name != "FAILED_PRECONDITION":
                    log.warning("draw_saga_recovery_pending", saga_id=saga_id, error=repr(exc))
            except Exception as exc:
                log.warning("draw_saga_recovery_error", saga_id=saga_id, error=repr(exc))
        return len(stale)

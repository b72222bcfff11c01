"""Koi draws: committed seed, entries, and the reveal that picks the winners."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from brandclub.events.v1 import engagement_events_pb2 as events
from libs.db import Connection
from libs.errors import AlreadyExists, FailedPrecondition, require
from libs.idempotency import CommitOnce
from libs.outbox import add_event
from services.engagement.adapters.postgres import ParticipationRepository
from services.engagement.domain.activities import Activity, ActivityState
from services.engagement.domain.activity_kinds import ActivityKind, LotteryConfig, LotteryMode
from services.engagement.domain.participation import (
    KoiVerdict,
    koi_winners,
    stable_id,
    verify_koi,
)
from services.engagement.usecases.context import PRODUCER, TOPIC, Participant, get_activity
from services.engagement.usecases.rewards import RewardDispatch, owe_reward


@dataclass(frozen=True)
class KoiView:
    activity_id: str
    commitment: str
    entries_close: datetime
    entrant_count: int
    winner_count: int
    revealed_at: datetime | None
    seed_hex: str
    entrants: list[str]
    winners: list[str]


async def koi_view(conn: Connection, activity: Activity) -> KoiView:
    config = activity.definition.config
    if not isinstance(config, LotteryConfig) or config.mode is not LotteryMode.KOI:
        raise FailedPrecondition("this activity has no koi draw", reason="NOT_A_KOI_DRAW")
    repo = ParticipationRepository(conn)
    row = await repo.koi(activity.activity_id)
    assert row is not None
    revealed = row["revealed_at"]
    close = min(activity.ends_at, activity.closed_at or activity.ends_at)
    return KoiView(activity.activity_id, row["commitment"], close, int(row["entrants"]),
                   config.koi_prize.stock, revealed,
                   bytes(row["seed"]).hex() if revealed else "",
                   await repo.koi_entrants(activity.activity_id) if revealed else [],
                   list(row["winners"]) if revealed else [])


@dataclass(frozen=True)
class KoiEntry:
    """What an entrant is told: the commitment they can check the reveal against."""
    commitment: str
    entrant_count: int


async def enter_koi(conn: Connection, p: Participant, now: datetime) -> KoiEntry:
    view = await koi_view(conn, p.activity)
    if not await ParticipationRepository(conn).add_koi_entry(p.activity_id, p.account_id, now):
        raise AlreadyExists("the member already entered this koi draw",
                            reason="ALREADY_ENTERED")
    return KoiEntry(view.commitment, view.entrant_count + 1)


async def reveal_koi(conn: Connection, activity: Activity, now: datetime) -> KoiView:
    """After entries close: publish the seed and pick the winners from it and the sorted
    entrants; each winner's prize is owed through benefits."""
    config = activity.definition.config
    if not isinstance(config, LotteryConfig) or config.mode is not LotteryMode.KOI:
        raise FailedPrecondition("this activity has no koi draw", reason="NOT_A_KOI_DRAW")
    if activity.state is ActivityState.DRAFT or activity.state_at(now) is not ActivityState.CLOSED:
        raise FailedPrecondition("entries are still open: the seed is revealed after they close",
                                 reason="KOI_ENTRIES_OPEN")
    repo = ParticipationRepository(conn)
    row = await repo.koi(activity.activity_id, for_update=True)
    assert row is not None
    if row["revealed_at"] is not None:
        return await koi_view(conn, activity)
    seed = bytes(row["seed"])
    entrants = await repo.koi_entrants(activity.activity_id)
    prize = config.koi_prize
    winners = koi_winners(seed, entrants, prize.stock)
    await repo.reveal_koi(activity.activity_id, winners, now)
    for winner in winners:
        await repo.take_prize(activity.activity_id, prize.prize_id)
        draw_id = "koi_" + stable_id(activity.activity_id, winner)
        if not prize.reward.empty:
            await owe_reward(repo, draw_id, activity.brand_id, winner, prize.reward, "KOI_PRIZE")
        await add_event(conn, topic=TOPIC, brand_id=activity.brand_id, producer=PRODUCER,
                        payload=events.LotteryPrizeWon(
                            brand_id=activity.brand_id, account_id=winner,
                            activity_id=activity.activity_id, draw_id=draw_id,
                            prize_id=prize.prize_id))
    await add_event(conn, topic=TOPIC, brand_id=activity.brand_id, producer=PRODUCER,
                    payload=events.KoiDrawRevealed(
                        brand_id=activity.brand_id, activity_id=activity.activity_id,
                        seed=seed.hex(), commitment=row["commitment"],
                        entrant_count=len(entrants), winner_account_ids=winners))
    return await koi_view(conn, activity)


class KoiReveals(RewardDispatch):
    """Koi draws entered, read, and revealed once their entries close, their prizes
    granted."""

    async def enter_koi_draw(self, brand_id: str, activity_id: str, account_id: str,
                             once: CommitOnce[KoiEntry, KoiEntry]) -> KoiEntry:
        """EnterKoiDraw: a live member's one entry (once per request_id)."""
        now = self.clock()
        p = await self.participant(brand_id, activity_id, account_id, ActivityKind.LOTTERY,
                                   now)
        return await once(lambda conn: enter_koi(conn, p, now))

    async def reveal_koi_draw(self, brand_id: str, activity_id: str,
                              once: CommitOnce[KoiView, KoiView]) -> KoiView:
        """RevealKoiDraw: the seed published and the winners picked (once per request_id),
        then the prizes owed are granted."""
        now = self.clock()

        async def reveal(conn: Connection) -> KoiView:
            activity = await get_activity(conn, brand_id, activity_id)
            activity.require_kind(ActivityKind.LOTTERY)
            return await reveal_koi(conn, activity, now)

        view = await once(reveal)
        await self.dispatch_due()
        return view

    async def verify_koi_draw(self, seed: str, commitment: str, entrants: list[str],
                              winner_count: int, winners: list[str]) -> KoiVerdict:
        """VerifyKoiDraw: whether a revealed draw's winners follow from its seed (anyone can
        check; nothing is read or stored)."""
        return verify_koi(require(seed, "seed"), require(commitment, "commitment"), entrants,
                          winner_count, winners)

    async def koi_draw(self, brand_id: str, activity_id: str) -> KoiView:
        """GetKoiDraw: the commitment, the entrants count, and after the reveal the seed,
        the entrants and the winners."""
        activity = await self.activity(require(brand_id, "brand_id"),
                                       require(activity_id, "activity_id"))
        activity.require_kind(ActivityKind.LOTTERY)
        async with self.db.connection() as conn:
            return await koi_view(conn, activity)

    async def reveal_due_koi(self, limit: int = 20) -> int:
        now = self.clock()
        async with self.db.connection() as conn:
            due = await ParticipationRepository(conn).due_koi(now, limit)
        for brand_id, activity_id in due:
            async with self.db.transaction() as conn:
                activity = await get_activity(conn, brand_id, activity_id)
                view = await reveal_koi(conn, activity, now)
            await self.dispatch(["koi_" + stable_id(activity_id, w) for w in view.winners])
        return len(due)

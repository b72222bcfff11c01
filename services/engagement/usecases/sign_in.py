"""Sign-in: once per local day, streaks, make-ups and the Redis note of who signed in."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from brandclub.events.v1 import engagement_events_pb2 as events
from libs.db import Connection
from libs.errors import AlreadyExists, require
from libs.idempotency import CommitOnce
from libs.logging import get_logger
from libs.outbox import add_event
from libs.redis import key
from services.engagement.adapters.postgres import ParticipationRepository
from services.engagement.domain.activities import Activity
from services.engagement.domain.activity_kinds import ActivityKind, Reward, SignInConfig
from services.engagement.domain.audience import check_audience
from services.engagement.domain.grants import Grant
from services.engagement.domain.participation import (
    check_make_up,
    local_date,
    next_streak,
    parse_local_date,
    restreak,
    stable_id,
)
from services.engagement.usecases.context import PRODUCER, TOPIC, Participant, get_activity
from services.engagement.usecases.rewards import (
    GRANT_LEASE_SECONDS,
    MAKE_UP_REFUND_REASON,
    RewardDispatch,
)

log = get_logger(__name__)


@dataclass(frozen=True)
class SignInView:
    activity_id: str
    account_id: str
    local_date: date
    streak_days: int
    make_up: bool
    signed_at: datetime
    cost_points: int
    grant_ids: list[str]
    reward: Reward | None = None


async def record_sign_in(conn: Connection, p: Participant, now: datetime, *,
                         make_up_day: date | None = None, cost_points: int = 0) -> SignInView:
    """Sign in for today (or, as a make-up, for a missed day). The primary key
    (activity, account, local_date) decides "once per day"; the member's lock keeps streaks
    consistent with concurrent make-ups."""
    config = p.activity.definition.config
    assert isinstance(config, SignInConfig)
    day = make_up_day or local_date(now, p.time_zone)
    repo = ParticipationRepository(conn)
    await repo.lock("sign_in", p.activity_id, p.account_id)
    # The day and the day before in one round trip (read after the lock is held).
    yesterday = day - timedelta(days=1)
    existing = await repo.sign_ins_on(p.activity_id, p.account_id, [day, yesterday])
    if day in existing:
        raise AlreadyExists(f"already signed in for {day.isoformat()}",
                            reason="ALREADY_SIGNED_IN", metadata={"local_date": day.isoformat()})
    previous = existing.get(yesterday)
    streak = next_streak(previous.streak_days if previous else None)
    grant_ids: list[str] = []
    reward = config.reward_for(streak)
    if reward is not None and not reward.empty:
        grant_id = "signin_" + stable_id(p.activity_id, p.account_id, day.isoformat())
        grant_ids.append(grant_id)
        # The grant and the sign-in it rewards are written by one statement.
        added = await repo.add_sign_in_with_grant(
            p.brand_id, p.activity_id, p.account_id, day, streak, make_up_day is not None,
            cost_points, now, (grant_id, reward.points, reward.coupon_template_id,
                               "SIGN_IN_REWARD"))
    else:
        added = await repo.add_sign_in(p.brand_id, p.activity_id, p.account_id, day, streak,
                                       make_up_day is not None, cost_points, now, grant_ids)
    if not added:
        raise AlreadyExists(f"already signed in for {day.isoformat()}",
                            reason="ALREADY_SIGNED_IN", metadata={"local_date": day.isoformat()})
    if make_up_day is not None:
        following = await repo.sign_ins_after(p.activity_id, p.account_id, day)
        for later, later_streak in restreak(following, day, streak):
            await repo.set_streak(p.activity_id, p.account_id, later, later_streak)
    await add_event(conn, topic=TOPIC, brand_id=p.brand_id, producer=PRODUCER,
                    payload=events.MemberSignedIn(
                        brand_id=p.brand_id, account_id=p.account_id,
                        activity_id=p.activity_id, local_date=day.isoformat(),
                        streak_days=streak, make_up=make_up_day is not None))
    return SignInView(p.activity_id, p.account_id, day, streak, make_up_day is not None, now,
                      cost_points, grant_ids, reward if grant_ids else None)


@dataclass(frozen=True)
class SignInStatus:
    today: date
    signed_today: bool
    current_streak: int
    recent: list[date]


async def read_sign_in_status(conn: Connection, activity: Activity, account_id: str,
                              time_zone: str, now: datetime) -> SignInStatus:
    today = local_date(now, time_zone)
    rows = await ParticipationRepository(conn).recent_sign_ins(
        activity.activity_id, require(account_id, "account_id"), 31)
    by_day = {r.local_date: r for r in rows}
    current = by_day.get(today) or by_day.get(today - timedelta(days=1))
    return SignInStatus(today, today in by_day, current.streak_days if current else 0,
                        [r.local_date for r in rows])


def _signin_key(brand_id: str, activity_id: str, account_id: str, day: date) -> str:
    # Tagged by member and activity: used alone, so nothing wider (the midnight burst of one
    # activity spreads over every cluster node).
    return key("eng", brand_id, tag=(activity_id, account_id), rest=["signin", day.isoformat()])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class MadeUp:
    """A make-up's answer: the sign-in, and its rewards as granted just now."""
    view: SignInView
    grants: list[Grant]


class SignIns(RewardDispatch):
    """The sign-in flows that cross services or Redis: the participant check with the
    Redis note, the after-commit grants, and the make-up's spend and refund."""

    async def sign_in_today(self, brand_id: str, activity_id: str, account_id: str,
                            request_id: str,
                            once: CommitOnce[SignInView, SignInView]) -> SignInView:
        """SignIn, the whole flow: the member and Redis checks, today's sign-in and its
        reward owed in one transaction (once per request_id), then after the reply the Redis
        note and the reward granted. A replayed answer's rewards are read back and granted in
        the background (they may be done already)."""
        now = self.clock()
        p = await self.sign_in_participant(brand_id, activity_id, account_id, now, request_id)
        fresh: list[Grant] = []

        async def record(conn: Connection) -> SignInView:
            view = await record_sign_in(conn, p, now)
            if view.reward is not None:
                fresh[:] = [Grant.owed(g, p.brand_id, p.account_id, view.reward.points,
                                       view.reward.coupon_template_id, "SIGN_IN_REWARD")
                            for g in view.grant_ids]
            return view

        view = await once(record)
        if not fresh or [g.grant_id for g in fresh] != view.grant_ids:
            fresh = []  # a replayed answer
            self.dispatch_later(view.grant_ids)
        # The midnight burst's hot path: the Redis note and the rewards follow in the
        # background (rewards answered PENDING).
        self.after_sign_in(p, view.local_date, request_id, fresh)
        return view

    async def make_up_sign_in(self, brand_id: str, activity_id: str, account_id: str,
                              local_day: str, once: CommitOnce[SignInView, SignInView]) -> MadeUp:
        """MakeUpSignIn, the whole flow: the member check, the make-up's cost taken, the
        day's sign-in recorded (once per request_id; its cost given back when it cannot be),
        then its rewards granted before the answer."""
        day = parse_local_date(require(local_day, "local_date"), "local_date")
        now = self.clock()
        p = await self.participant(brand_id, activity_id, account_id, ActivityKind.SIGN_IN, now)
        try:
            cost = await self.make_up_spend(p, day, now)
        except AlreadyExists as exc:
            refusal = exc

            # A retry of the request that made this day up gets its first answer back, its
            # rewards as they stand now (as the first answer told them after granting).
            async def replay(conn: Connection) -> SignInView:
                raise refusal

            replayed = await once(replay)
            return MadeUp(replayed, await self.dispatch(replayed.grant_ids))

        async def record(conn: Connection) -> SignInView:
            return await record_sign_in(conn, p, now, make_up_day=day, cost_points=cost)

        try:
            view = await once(record)
        except AlreadyExists:
            await self.refund_make_up(p, day)
            raise
        return MadeUp(view, await self.dispatch(view.grant_ids))

    async def sign_in_status(self, brand_id: str, activity_id: str,
                             account_id: str) -> SignInStatus:
        """GetSignInStatus: today in the brand's zone, whether signed in, the streak."""
        async with self.db.connection() as conn:
            activity = await get_activity(conn, brand_id, activity_id)
        activity.require_kind(ActivityKind.SIGN_IN)
        zone = await self.membership.time_zone(activity.brand_id)
        async with self.db.connection() as conn:
            return await read_sign_in_status(conn, activity, account_id, zone, self.clock())

    async def sign_in_participant(self, brand_id: str, activity_id: str, account_id: str,
                                  now: datetime, request_id: str) -> Participant:
        """participant() for SignIn, with the Redis "already signed in today" check made
        while the member card is fetched (refusals keep participant()'s order: not a
        member before already signed in)."""
        account_id = require(account_id, "account_id")
        activity = await self.activity(require(brand_id, "brand_id"),
                                       require(activity_id, "activity_id"))
        activity.require_kind(ActivityKind.SIGN_IN)
        activity.require_live(now)
        zone = await self.membership.time_zone(activity.brand_id)
        day = local_date(now, zone)
        member_result, holder = await asyncio.gather(
            self.membership.member(activity.brand_id, account_id),
            self._sign_in_holder(activity, account_id, day), return_exceptions=True)
        if isinstance(member_result, BaseException):
            raise member_result
        check_audience(activity.definition.audience_levels, member_result)
        p = Participant(activity, account_id, zone, member_result)
        if isinstance(holder, str) and holder != request_id:
            raise AlreadyExists(f"already signed in for {day.isoformat()}",
                                reason="ALREADY_SIGNED_IN",
                                metadata={"local_date": day.isoformat()})
        return p

    def signin_key(self, p: Participant, day: date) -> str:
        return _signin_key(p.brand_id, p.activity_id, p.account_id, day)

    async def _sign_in_holder(self, activity: Activity, account_id: str,
                              day: date) -> str | None:
        """The request_id that signed the member in on `day`, per Redis (None when unknown
        or Redis is down: PostgreSQL still decides)."""
        try:
            holder = await self.cache.redis.get(
                _signin_key(activity.brand_id, activity.activity_id, account_id, day))
        except Exception:
            return None
        return None if holder is None else _text(holder)

    def after_sign_in(self, p: Participant, day: date, request_id: str,
                      grants: list[Grant]) -> None:
        """After the reply (the midnight burst's hot path): note the sign-in in Redis and
        grant its rewards. Both are optional to correctness: PostgreSQL's key refuses a second
        sign-in without the Redis note, and the dispatch loop grants what this misses."""
        task = asyncio.create_task(self._after_sign_in(p, day, request_id, grants))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_sign_in(self, p: Participant, day: date, request_id: str,
                             grants: list[Grant]) -> None:
        await self.remember_sign_in(p, day, request_id)
        for grant in grants:
            try:
                await self._dispatch_one(grant.grant_id)
            except Exception as exc:  # one bad grant must not stop the others
                log.warning("reward_dispatch_error", grant_id=grant.grant_id, error=repr(exc))

    async def remember_sign_in(self, p: Participant, day: date, request_id: str) -> None:
        try:
            await self.cache.redis.set(self.signin_key(p, day), request_id, ex=3 * 86400)
        except Exception as exc:
            log.warning("sign_in_cache_error", error=repr(exc))

    async def make_up_spend(self, p: Participant, day: date, now: datetime) -> int:
        """Check a make-up sign-in and take its cost (idempotent per activity, member, day);
        returns the cost taken."""
        config = p.activity.definition.config
        assert isinstance(config, SignInConfig)
        check_make_up(config, day, local_date(now, p.time_zone))
        async with self.db.connection() as conn:
            if await ParticipationRepository(conn).sign_in_on(p.activity_id, p.account_id,
                                                              day) is not None:
                raise AlreadyExists(f"already signed in for {day.isoformat()}",
                                    reason="ALREADY_SIGNED_IN",
                                    metadata={"local_date": day.isoformat()})
        if config.make_up_cost_points:
            await self.benefits.spend_points(
                request_id=self._make_up_key(p, day), brand_id=p.brand_id,
                account_id=p.account_id, amount=config.make_up_cost_points,
                reason_code="MAKE_UP_SIGN_IN_COST")
        return config.make_up_cost_points

    def _make_up_key(self, p: Participant, day: date) -> str:
        return f"eng:makeup:{stable_id(p.activity_id, p.account_id, day.isoformat())}"

    async def refund_make_up(self, p: Participant, day: date) -> None:
        """Give back a make-up's cost when the sign-in was not recorded. The refund is owed
        durably (a reward grant in 'compensating', retried by the dispatch loop up to
        REFUND_RETRY, listed by ListFailedRewardGrants if it cannot be made)."""
        config = p.activity.definition.config
        assert isinstance(config, SignInConfig)
        if not config.make_up_cost_points:
            return
        async with self.db.connection() as conn:
            recorded = await ParticipationRepository(conn).sign_in_on(p.activity_id,
                                                                      p.account_id, day)
        if recorded is not None and recorded.cost_points:
            # A concurrent make-up of the same day recorded it: it was paid with this same
            # spend (one key per activity, member and day), which is not ours to give back.
            return
        entry = await self.benefits.spend_points(
            request_id=self._make_up_key(p, day), brand_id=p.brand_id, account_id=p.account_id,
            amount=config.make_up_cost_points, reason_code="MAKE_UP_SIGN_IN_COST")
        grant_id = "mkref_" + stable_id(p.activity_id, p.account_id, day.isoformat())
        reason = "MAKE_UP_NOT_RECORDED: the day was not signed in"
        async with self.db.transaction() as conn:
            repo = ParticipationRepository(conn)
            await repo.add_grant(grant_id, p.brand_id, p.account_id, 0, "",
                                 MAKE_UP_REFUND_REASON, entry)
            # Moving it to 'compensating' claims it: only the mover refunds (a concurrent
            # retry of this make-up, or the dispatch loop, finds it held).
            moved = await repo.finish_grant(grant_id, "compensating", "", "", reason,
                                            hold_seconds=GRANT_LEASE_SECONDS)
            rows = await repo.grants([grant_id]) if moved else []
        if rows:
            await self._refund_grant(rows[0])

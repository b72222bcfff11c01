"""Engagement use cases.

Functions that take a connection run inside the caller's transaction (the servicer's
IdempotentExecutor) and write their events to the outbox in that same transaction.
`Engagement` orchestrates what crosses services: reading members and time zones through the
membership port, granting rewards and running the lottery's draw saga through the benefits port,
and the Redis hot path of the lottery.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from brandclub.events.v1 import engagement_events_pb2 as events
from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from libs.db import Connection, Database
from libs.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    require,
)
from libs.logging import get_logger
from libs.outbox import add_event
from libs.paging import decode_page_token, encode_page_token, page_size
from libs.sagas import Outcome, RetryPolicy, decide, reason_of, saga_step
from services.engagement.adapters.postgres import (
    ActivityRepository,
    DrawRow,
    GrantRow,
    ParticipationRepository,
    SagaRow,
)
from services.engagement.adapters.redis_lottery import LotteryCache, PrizeSlot, RedisDraw
from services.engagement.domain.activities import (
    Activity,
    ActivityKind,
    ActivitySpec,
    ActivityState,
    ChangeContext,
    InviteConfig,
    LotteryConfig,
    LotteryMode,
    MemberInfo,
    Owner,
    OwnerKind,
    PrizeKind,
    QuizConfig,
    Reward,
    SignInConfig,
    VoteConfig,
    check_actor,
    check_audience,
    check_change,
    coupon_references,
)
from services.engagement.domain.participation import (
    check_draw_limits,
    check_make_up,
    check_quiz_attempt,
    check_vote,
    commitment,
    decide_invite,
    grade_quiz,
    koi_winners,
    local_date,
    new_invite_code,
    new_random,
    new_seed,
    next_streak,
    quiz_points,
    restreak,
    revealed,
    stable_id,
    weights_of,
    weights_text,
)
from services.engagement.ports import BenefitsPort, Clock, MembershipPort, is_transient

TOPIC = "engagement"
PRODUCER = "engagement"
# How long a process may act on an activity definition another process just changed.
ACTIVITY_CACHE_SECONDS = 1.0
# A paid draw that cannot reach Redis for this long is compensated rather than resumed.
DRAW_GIVE_UP_SECONDS = 300.0
# Grants the dispatch loop sends to benefits at once.
DISPATCH_CONCURRENCY = 16
log = get_logger(__name__)

# --- what each saga step does when it fails (libs.sagas; the table is in architecture.md) ---
# Delivering an owed reward through benefits: ~12 attempts over about an hour, then stop.
GRANT_RETRY = RetryPolicy(max_attempts=12, base_seconds=0.5, cap_seconds=900.0)
# Giving a cost back must not give up early: about a day of attempts, then a dead letter.
REFUND_RETRY = RetryPolicy(max_attempts=100, base_seconds=1.0, cap_seconds=900.0)
# A draw's spend that benefits does not answer: the recovery loop tries again this often.
SPEND_RETRY = RetryPolicy(max_attempts=10, base_seconds=1.0, cap_seconds=120.0)
_GRANT = "services.engagement.usecases:Engagement._dispatch_one"
MAKE_UP_REFUND_REASON = "MAKE_UP_SIGN_IN_NOT_RECORDED"
_GRANT_SEEN = ("the answer's GrantedReward (state, failure_reason) and the draw / vote / quiz / "
               "invite record it belongs to; operators: ListFailedRewardGrants")
for _saga in ("sign_in", "vote", "quiz", "invite", "koi_draw"):
    saga_step(_saga, "grant_reward", where=_GRANT, on_permanent=Outcome.DEAD_LETTER,
              on_exhausted=Outcome.DEAD_LETTER, retry=GRANT_RETRY, visible_in=_GRANT_SEEN)
saga_step("sign_in", "make_up_spend",
          where="services.engagement.usecases:Engagement.make_up_spend",
          on_permanent=Outcome.REFUSE, on_exhausted=Outcome.REFUSE,
          visible_in="the MakeUpSignIn answer (UNAVAILABLE: retry with the same request_id)")
saga_step("sign_in", "make_up_refund",
          where="services.engagement.usecases:Engagement.refund_make_up",
          on_permanent=Outcome.DEAD_LETTER, on_exhausted=Outcome.DEAD_LETTER,
          retry=REFUND_RETRY,
          visible_in="owed as a reward grant in 'compensating' until given back "
                     "(Engagement._refund_grant); ListFailedRewardGrants when it cannot be")
saga_step("lottery_draw", "spend", where="services.engagement.usecases:Engagement._spend",
          on_permanent=Outcome.REFUSE, on_exhausted=Outcome.COMPENSATE, retry=SPEND_RETRY,
          visible_in="the DrawLottery answer (refused with the reason, or DRAW_IN_PROGRESS "
                     "then the final answer to a retry with the same request_id)")
saga_step("lottery_draw", "check_prizes",
          where="services.engagement.usecases:Engagement._undeliverable_prizes",
          on_permanent=Outcome.FALLBACK, on_exhausted=Outcome.FALLBACK,
          retry=RetryPolicy(max_attempts=1),
          visible_in="the draw's recorded weights (a prize the member cannot get weighs 0)")
saga_step("lottery_draw", "draw_and_record",
          where="services.engagement.usecases:Engagement._draw_and_record",
          on_permanent=Outcome.COMPENSATE, on_exhausted=Outcome.COMPENSATE,
          visible_in="the DrawLottery answer (refused with the reason; the cost given back)")
saga_step("lottery_draw", "grant_prize", where=_GRANT, on_permanent=Outcome.COMPENSATE,
          on_exhausted=Outcome.COMPENSATE, retry=GRANT_RETRY,
          visible_in="Draw.outcome DRAW_OUTCOME_NOT_DELIVERED with grant.failure_reason and "
                     "grant.cost_refunded (DrawLottery, GetDraw, ListDraws); "
                     "ListFailedRewardGrants")
saga_step("reward_grant", "refund_cost",
          where="services.engagement.usecases:Engagement._refund_grant",
          on_permanent=Outcome.DEAD_LETTER, on_exhausted=Outcome.DEAD_LETTER,
          retry=REFUND_RETRY, visible_in="ListFailedRewardGrants (cost_refunded false)")
saga_step("lottery_draw", "compensate", where="services.engagement.usecases:Engagement._compensate",
          on_permanent=Outcome.DEAD_LETTER, on_exhausted=Outcome.DEAD_LETTER,
          retry=REFUND_RETRY,
          visible_in="draw_sagas 'dead_letter' with its reason: GetLotteryStatus "
                     "dead_letter_draws; the DrawLottery answer names REFUND_FAILED")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _not_found(activity_id: str) -> NotFound:
    return NotFound(f"activity {activity_id} does not exist", reason="ACTIVITY_NOT_FOUND",
                    metadata={"activity_id": activity_id})


# --- activities ------------------------------------------------------------------------------


async def get_activity(conn: Connection, brand_id: str, activity_id: str, *,
                       for_update: bool = False) -> Activity:
    activity = await ActivityRepository(conn).get(require(brand_id, "brand_id"),
                                                  require(activity_id, "activity_id"),
                                                  for_update=for_update)
    if activity is None:
        raise _not_found(activity_id)
    return activity


async def create_activity(conn: Connection, brand_id: str, owner: Owner, spec: ActivitySpec,
                          publish: bool, now: datetime) -> Activity:
    brand_id = require(brand_id, "brand_id")
    if owner.kind is OwnerKind.ISV_APP:
        require(owner.owner_id, "owner.id")
    else:
        owner = Owner(OwnerKind.BRAND, brand_id)
    if publish and spec.ends_at <= now:
        raise InvalidArgument("spec.end_time is in the past: nothing to publish",
                              field="spec.end_time", reason="END_TIME_IN_PAST")
    activity = Activity(
        activity_id=new_id("act"), brand_id=brand_id, kind=spec.kind,
        state=ActivityState.SCHEDULED if publish else ActivityState.DRAFT, title=spec.title,
        starts_at=spec.starts_at, ends_at=spec.ends_at, created_at=now, owner=owner,
        spec=spec, version=1, updated_at=now)
    await ActivityRepository(conn).add(activity)
    await _after_definition(conn, activity)
    return activity


async def _after_definition(conn: Connection, activity: Activity) -> None:
    """Keep the per-kind tables in step with the definition."""
    config = activity.definition.config
    repo = ParticipationRepository(conn)
    if isinstance(config, LotteryConfig):
        await repo.add_prizes(activity.brand_id, activity.activity_id,
                              [(p.prize_id, p.stock) for p in config.prizes])
        if config.mode is LotteryMode.KOI:
            seed = new_seed()
            await repo.add_koi(activity.brand_id, activity.activity_id, seed, commitment(seed))


async def update_activity(conn: Connection, brand_id: str, activity_id: str,
                          actor: Owner | None, spec: ActivitySpec, now: datetime) -> Activity:
    activity = await get_activity(conn, brand_id, activity_id, for_update=True)
    check_actor(activity, actor)
    counts = await ParticipationRepository(conn).prize_counts(activity.activity_id)
    check_change(activity, spec, ChangeContext(now, {k: v[1] for k, v in counts.items()}))
    updated = replace(activity, spec=spec, title=spec.title, starts_at=spec.starts_at,
                      ends_at=spec.ends_at, version=activity.version + 1, updated_at=now)
    await ActivityRepository(conn).save(updated)
    await _after_definition(conn, updated)
    return updated


async def publish_activity(conn: Connection, brand_id: str, activity_id: str,
                           actor: Owner | None, now: datetime) -> Activity:
    activity = await get_activity(conn, brand_id, activity_id, for_update=True)
    check_actor(activity, actor)
    if activity.state is not ActivityState.DRAFT:
        raise FailedPrecondition(f"activity {activity_id} is not a draft",
                                 reason="ACTIVITY_NOT_DRAFT",
                                 metadata={"state": activity.state_at(now).value})
    if activity.ends_at <= now:
        raise FailedPrecondition("the activity's end time has passed",
                                 reason="END_TIME_IN_PAST", metadata={"field": "spec.end_time"})
    updated = replace(activity, state=ActivityState.SCHEDULED, version=activity.version + 1,
                      updated_at=now)
    await ActivityRepository(conn).save(updated)
    return updated


async def close_activity(conn: Connection, brand_id: str, activity_id: str,
                         actor: Owner | None, now: datetime) -> Activity:
    activity = await get_activity(conn, brand_id, activity_id, for_update=True)
    check_actor(activity, actor)
    if activity.state_at(now) is ActivityState.CLOSED:
        raise FailedPrecondition(f"activity {activity_id} is already closed",
                                 reason="ACTIVITY_CLOSED")
    updated = replace(activity, state=ActivityState.CLOSED, version=activity.version + 1,
                      updated_at=now, closed_at=now)
    await ActivityRepository(conn).save(updated)
    return updated


async def list_activities(conn: Connection, brand_id: str, requested_size: int, token: str, *,
                          now: datetime, state: ActivityState | None = None,
                          kind: ActivityKind | None = None,
                          window_start: datetime | None = None,
                          window_end: datetime | None = None) -> tuple[list[Activity], str]:
    brand_id = require(brand_id, "brand_id")
    size = page_size(requested_size)
    if window_start and window_end and window_end <= window_start:
        raise InvalidArgument("window_end_time must be after window_start_time",
                              field="window_end_time")
    position = decode_page_token(token, ("t", "id"))
    after = (datetime.fromisoformat(position["t"]), position["id"]) if position else None
    rows = await ActivityRepository(conn).page(brand_id, size + 1, after, now=now, state=state,
                                               kind=kind, window_start=window_start,
                                               window_end=window_end)
    page, more = rows[:size], len(rows) > size
    next_token = (encode_page_token({"t": page[-1].created_at.isoformat(),
                                     "id": page[-1].activity_id}) if more else "")
    return page, next_token


# --- participation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Participant:
    activity: Activity
    account_id: str
    time_zone: str
    member: MemberInfo | None

    @property
    def brand_id(self) -> str:
        return self.activity.brand_id

    @property
    def activity_id(self) -> str:
        return self.activity.activity_id


async def _grant(repo: ParticipationRepository, grant_id: str, brand_id: str, account_id: str,
                 reward: Reward, reason_code: str, refund_entry_id: str = "") -> str:
    await repo.add_grant(grant_id, brand_id, account_id, reward.points,
                         reward.coupon_template_id, reason_code, refund_entry_id)
    return grant_id


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


async def sign_in(conn: Connection, p: Participant, now: datetime, *,
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


async def sign_in_status(conn: Connection, activity: Activity, account_id: str,
                         time_zone: str, now: datetime) -> SignInStatus:
    today = local_date(now, time_zone)
    rows = await ParticipationRepository(conn).recent_sign_ins(
        activity.activity_id, require(account_id, "account_id"), 31)
    by_day = {r.local_date: r for r in rows}
    current = by_day.get(today) or by_day.get(today - timedelta(days=1))
    return SignInStatus(today, today in by_day, current.streak_days if current else 0,
                        [r.local_date for r in rows])


@dataclass(frozen=True)
class VoteView:
    tallies: list[tuple[str, str, int]]
    votes_left_today: int
    gift_grant_id: str


async def vote_tallies(conn: Connection, activity: Activity) -> list[tuple[str, str, int]]:
    config = activity.definition.config
    assert isinstance(config, VoteConfig)
    counts = await ParticipationRepository(conn).tallies(activity.activity_id)
    return [(o.option_id, o.label, counts.get(o.option_id, 0)) for o in config.options]


async def cast_vote(conn: Connection, p: Participant, option_id: str,
                    now: datetime) -> VoteView:
    config = p.activity.definition.config
    assert isinstance(config, VoteConfig)
    option_id = require(option_id, "option_id")
    day = local_date(now, p.time_zone)
    repo = ParticipationRepository(conn)
    await repo.lock("vote", p.activity_id, p.account_id)
    used = await repo.votes_on(p.activity_id, p.account_id, day)
    check_vote(config, option_id, used)
    first_ever = not await repo.has_voted(p.activity_id, p.account_id)
    await repo.add_vote(p.brand_id, p.activity_id, p.account_id, day, used + 1, option_id, now)
    gift = ""
    if first_ever and not config.gift.empty:
        gift = await _grant(repo, "vote_" + stable_id(p.activity_id, p.account_id),
                            p.brand_id, p.account_id, config.gift, "VOTE_GIFT")
    await add_event(conn, topic=TOPIC, brand_id=p.brand_id, producer=PRODUCER,
                    payload=events.MemberVoted(brand_id=p.brand_id, account_id=p.account_id,
                                               activity_id=p.activity_id, option_id=option_id))
    return VoteView(await vote_tallies(conn, p.activity), config.votes_per_day - used - 1, gift)


@dataclass(frozen=True)
class QuizResult:
    attempt: int
    correct: int
    total: int
    grades: list[tuple[str, bool, list[str]]]
    points: int
    grant_id: str


async def submit_quiz(conn: Connection, p: Participant,
                      answers: list[tuple[str, list[str]]], now: datetime) -> QuizResult:
    config = p.activity.definition.config
    assert isinstance(config, QuizConfig)
    repo = ParticipationRepository(conn)
    await repo.lock("quiz", p.activity_id, p.account_id)
    attempts, best = await repo.quiz_attempts(p.activity_id, p.account_id)
    check_quiz_attempt(config, attempts)
    grades = grade_quiz(config, answers)
    correct = sum(1 for g in grades if g.correct)
    points = quiz_points(config, correct, best)
    attempt = attempts + 1
    grant_id = ""
    if points:
        grant_id = await _grant(repo, "quiz_" + stable_id(p.activity_id, p.account_id,
                                                          str(attempt)),
                                p.brand_id, p.account_id, Reward(points=points), "QUIZ_REWARD")
    await repo.add_quiz_attempt(p.brand_id, p.activity_id, p.account_id, attempt,
                                [[q, list(o)] for q, o in answers], correct, points,
                                grant_id or None, now)
    await add_event(conn, topic=TOPIC, brand_id=p.brand_id, producer=PRODUCER,
                    payload=events.QuizSubmitted(brand_id=p.brand_id, account_id=p.account_id,
                                                 activity_id=p.activity_id,
                                                 correct_answers=correct,
                                                 total_questions=len(grades)))
    return QuizResult(attempt, correct, len(grades),
                      [(g.question_id, g.correct, g.correct_option_ids)
                       for g in revealed(config, attempt, grades)],
                      points, grant_id)


async def invite_code(conn: Connection, p: Participant) -> tuple[str, int, int]:
    config = p.activity.definition.config
    assert isinstance(config, InviteConfig)
    repo = ParticipationRepository(conn)
    code = await repo.invite_code(p.activity_id, p.account_id)
    while code is None:
        candidate = new_invite_code()
        if await repo.add_invite_code(candidate, p.brand_id, p.activity_id, p.account_id):
            code = candidate
        else:  # a racing call made one, or (rarely) the code was taken: read again
            code = await repo.invite_code(p.activity_id, p.account_id)
    rewarded = await repo.rewarded_invites(p.activity_id, p.account_id)
    return code, rewarded, config.max_rewarded_per_inviter


async def accept_invite(conn: Connection, brand_id: str, invitee: str, code: str,
                        joined_at: datetime) -> str:
    """React to an invitee opening the card with an invite code; returns "" when accepted,
    or why not. Runs in the event consumer's transaction (at most once per event)."""
    repo = ParticipationRepository(conn)
    owner = await repo.code_owner(brand_id, code.strip().upper())
    if owner is None:
        return "UNKNOWN_CODE"
    activity_id, inviter = owner
    activity = await ActivityRepository(conn).get(brand_id, activity_id)
    if activity is None or activity.state_at(joined_at) is not ActivityState.LIVE:
        return "ACTIVITY_NOT_LIVE"
    config = activity.definition.config
    assert isinstance(config, InviteConfig)
    await repo.lock("invite", activity_id, inviter)
    decision = decide_invite(inviter, invitee, await repo.invited_before(brand_id, invitee),
                             await repo.rewarded_invites(activity_id, inviter),
                             config.max_rewarded_per_inviter)
    if decision.reason:
        return decision.reason
    if not await repo.add_invite(brand_id, invitee, activity_id, inviter, code,
                                 decision.reward_inviter, joined_at):
        return "ALREADY_INVITED"
    if decision.reward_inviter and not config.inviter_reward.empty:
        await _grant(repo, "invr_" + stable_id(activity_id, inviter, invitee), brand_id,
                     inviter, config.inviter_reward, "INVITE_INVITER_REWARD")
    if decision.reward_invitee and not config.invitee_reward.empty:
        await _grant(repo, "inve_" + stable_id(activity_id, invitee), brand_id, invitee,
                     config.invitee_reward, "INVITE_INVITEE_REWARD")
    await add_event(conn, topic=TOPIC, brand_id=brand_id, producer=PRODUCER,
                    payload=events.InviteAccepted(brand_id=brand_id, activity_id=activity_id,
                                                  inviter_account_id=inviter,
                                                  invitee_account_id=invitee))
    return ""


# --- koi -------------------------------------------------------------------------------------


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


async def enter_koi(conn: Connection, p: Participant, now: datetime) -> KoiView:
    view = await koi_view(conn, p.activity)
    if not await ParticipationRepository(conn).add_koi_entry(p.activity_id, p.account_id, now):
        raise AlreadyExists("the member already entered this koi draw",
                            reason="ALREADY_ENTERED")
    return replace(view, entrant_count=view.entrant_count + 1)


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
            await _grant(repo, draw_id, activity.brand_id, winner, prize.reward, "KOI_PRIZE")
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


# --- the orchestrator ------------------------------------------------------------------------


class DrawRefused(FailedPrecondition):
    """The draw could not happen; any points it cost were given back."""


@dataclass(frozen=True)
class DrawView:
    draw: DrawRow
    grant: GrantRow | None


class Engagement:
    """Use cases that cross services or Redis; each step is idempotent and resumable."""

    def __init__(self, db: Database, cache: LotteryCache, benefits: BenefitsPort,
                 membership: MembershipPort, clock: Clock, *,
                 saga_grace_seconds: float = 10.0) -> None:
        self.db = db
        self.cache = cache
        self.benefits = benefits
        self.membership = membership
        self.clock = clock
        self.saga_grace_seconds = saga_grace_seconds
        self._reconcile_locks: dict[str, asyncio.Lock] = {}
        self._activities: dict[tuple[str, str], tuple[float, Activity]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def activity(self, brand_id: str, activity_id: str) -> Activity:
        """An activity, cached for ACTIVITY_CACHE_SECONDS on the hot paths (this process
        forgets it at once when it changes it)."""
        key = (brand_id, activity_id)
        cached = self._activities.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        async with self.db.connection() as conn:
            activity = await get_activity(conn, brand_id, activity_id)
        if len(self._activities) > 10_000:
            self._activities.clear()
        self._activities[key] = (time.monotonic() + ACTIVITY_CACHE_SECONDS, activity)
        return activity

    async def check_references(self, brand_id: str, spec: ActivitySpec) -> None:
        """Every coupon template the spec names (prizes, rewards, gifts) is one of the brand's
        own in benefits, checked before it is saved; another brand's id reads as absent there
        and is refused the same way, naming the field."""
        brand_id = require(brand_id, "brand_id")
        checked: set[str] = set()
        for field_path, template_id in coupon_references(spec):
            if template_id in checked:
                continue
            if not await self.benefits.coupon_template_exists(brand_id, template_id):
                raise InvalidArgument(f"{field_path} names no coupon template of this brand",
                                      field=field_path, reason="COUPON_TEMPLATE_NOT_FOUND",
                                      metadata={"coupon_template_id": template_id})
            checked.add(template_id)

    def forget(self, brand_id: str, activity_id: str) -> None:
        self._activities.pop((brand_id, activity_id), None)

    # --- context ---
    async def participant(self, brand_id: str, activity_id: str, account_id: str,
                          kind: ActivityKind, now: datetime, *,
                          require_live: bool = True) -> Participant:
        account_id = require(account_id, "account_id")
        activity = await self.activity(require(brand_id, "brand_id"),
                                       require(activity_id, "activity_id"))
        activity.require_kind(kind)
        if require_live:
            activity.require_live(now)
        member = await self.membership.member(activity.brand_id, account_id)
        check_audience(activity.definition.audience_levels, member)
        return Participant(activity, account_id, await self.membership.time_zone(
            activity.brand_id), member)

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

    # --- rewards ---
    async def dispatch(self, grant_ids: list[str]) -> list[GrantRow]:
        """Grant owed rewards through benefits now; what fails stays pending for the loop."""
        for grant_id in grant_ids:
            await self._dispatch_one(grant_id)
        async with self.db.connection() as conn:
            return await ParticipationRepository(conn).grants(grant_ids)

    async def _dispatch_one(self, grant_id: str, known: GrantRow | None = None) -> None:
        """Deliver one owed reward. A transient failure is retried with backoff up to
        GRANT_RETRY; a permanent one (or the bound reached) ends the grant 'failed' with its
        reason, after giving back what the reward was paid with (a lottery draw's cost).
        `known`: the row as this process just committed it (saves reading it back)."""
        if known is not None and known.grant_id == grant_id:
            grant = known
        else:
            async with self.db.connection() as conn:
                rows = await ParticipationRepository(conn).grants([grant_id])
            if not rows:
                return
            grant = rows[0]
            if grant.state == "compensating":
                await self._refund_grant(grant)
                return
            if grant.state != "pending":
                return
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
            decision = decide(exc, grant.attempts + 1, GRANT_RETRY)
            if decision.retry:
                async with self.db.connection() as conn:
                    await ParticipationRepository(conn).retry_grant_later(
                        grant_id, entry_id, decision.reason, decision.delay)
                return
            log.error("reward_grant_failed", grant_id=grant_id, error=decision.reason,
                      refund=bool(grant.refund_entry_id))
            to_state = "compensating" if grant.refund_entry_id else "failed"
            async with self.db.connection() as conn:
                moved = await ParticipationRepository(conn).finish_grant(
                    grant_id, to_state, entry_id, "", decision.reason)
            if moved and grant.refund_entry_id:
                await self._refund_grant(replace(grant, state="compensating",
                                                 points_entry_id=entry_id,
                                                 attempts=grant.attempts + 1,
                                                 last_error=decision.reason))
            return
        async with self.db.connection() as conn:
            await ParticipationRepository(conn).finish_grant(grant_id, "done", entry_id,
                                                             coupon_id, "")

    async def _refund_grant(self, grant: GrantRow) -> None:
        """A reward that cannot be delivered gives back what paid for it (the draw's cost)
        and its prize goes back to the stock; then the grant ends 'failed' with the reason."""
        try:
            refund = await self.benefits.reverse_points(
                request_id=f"eng:{grant.grant_id}:refund", brand_id=grant.brand_id,
                entry_id=grant.refund_entry_id,
                reason_code=(MAKE_UP_REFUND_REASON if grant.reason_code == MAKE_UP_REFUND_REASON
                             else "LOTTERY_PRIZE_NOT_DELIVERED"))
        except Exception as exc:
            decision = decide(exc, grant.attempts + 1, REFUND_RETRY)
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
        async with self.db.connection() as conn:
            due = await ParticipationRepository(conn).due_grants(limit)
        gate = asyncio.Semaphore(DISPATCH_CONCURRENCY)

        async def one(grant_id: str) -> None:
            async with gate:
                await self._dispatch_quietly([grant_id])

        await asyncio.gather(*(one(grant_id) for grant_id in due))
        return len(due)

    async def close(self) -> None:
        """Stop background grants (their rows stay pending for the next start)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- sign-in ---
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
                      grants: list[GrantRow]) -> None:
        """After the reply (the midnight burst's hot path): note the sign-in in Redis and
        grant its rewards. Both are optional to correctness: PostgreSQL's key refuses a second
        sign-in without the Redis note, and the dispatch loop grants what this misses."""
        task = asyncio.create_task(self._after_sign_in(p, day, request_id, grants))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_sign_in(self, p: Participant, day: date, request_id: str,
                             grants: list[GrantRow]) -> None:
        await self.remember_sign_in(p, day, request_id)
        for grant in grants:
            try:
                await self._dispatch_one(grant.grant_id, grant)
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
            await repo.finish_grant(grant_id, "compensating", "", "", reason)
            rows = await repo.grants([grant_id])
        if rows and rows[0].state == "compensating":
            await self._refund_grant(rows[0])

    # --- lottery: reconciliation ---
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

    # --- lottery: the draw saga ---
    async def draw(self, brand_id: str, activity_id: str, account_id: str,
                   request_id: str) -> DrawView:
        request_id = require(request_id, "request_id")
        if len(request_id) > 128:
            raise InvalidArgument("request_id must be at most 128 characters",
                                  field="request_id", reason="REQUEST_ID_TOO_LONG")
        activity_id = require(activity_id, "activity_id")
        saga: SagaRow | None
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

    async def _saga_by_request(self, activity_id: str, request_id: str) -> SagaRow | None:
        async with self.db.connection() as conn:
            return await ParticipationRepository(conn).saga_by_request(activity_id, request_id)

    async def _new_saga(self, brand_id: str, activity_id: str, account_id: str,
                        request_id: str) -> SagaRow:
        """Start a draw's saga, or find the one this request_id started before."""
        now = self.clock()
        p = await self.participant(brand_id, activity_id, account_id, ActivityKind.LOTTERY,
                                   now)
        config = p.activity.definition.config
        assert isinstance(config, LotteryConfig)
        if config.mode is not LotteryMode.INSTANT:
            raise FailedPrecondition("a koi draw is entered, not drawn",
                                     reason="NOT_AN_INSTANT_LOTTERY")
        new = SagaRow(new_id("drw"), p.brand_id, p.activity_id, p.account_id, request_id,
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

    async def run_saga(self, saga_id: str, saga: SagaRow | None = None) -> DrawView:
        """Drive a draw saga from its recorded state to an end:
        started -> spent -> completed (draw recorded, prize owed), or
        -> compensating -> compensated (the spend reversed), or failed (spend refused).
        Each step moves the state only from the state it saw; when another runner moved it
        first, the saga is read again."""
        recorded: DrawRow | None = None
        while True:
            if saga is None:
                async with self.db.connection() as conn:
                    saga = await ParticipationRepository(conn).saga(saga_id)
            assert saga is not None
            if saga.state == "started":
                saga = await self._spend(saga)
            elif saga.state == "spent":
                outcome = await self._draw_and_record(saga)
                if isinstance(outcome, DrawRow):
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

    async def _set_state(self, saga: SagaRow, to_state: str, *, spend_entry_id: str = "",
                         failure_reason: str = "") -> SagaRow | None:
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

    async def _transient(self, saga: SagaRow, exc: DomainError,
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
        return Unavailable("the draw is in progress and will complete; retry with the same "
                           "request_id to read its result", reason="DRAW_IN_PROGRESS",
                           metadata={"draw_id": saga.saga_id})

    async def _spend(self, saga: SagaRow) -> SagaRow | None:
        if not saga.cost_points:
            return await self._set_state(saga, "spent")
        try:
            entry_id = await self.benefits.spend_points(
                request_id=f"eng:{saga.saga_id}:spend", brand_id=saga.brand_id,
                account_id=saga.account_id, amount=saga.cost_points,
                reason_code="LOTTERY_DRAW_COST")
        except DomainError as exc:
            decision = decide(exc, saga.attempts + 1, SPEND_RETRY)
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

    async def _refuse(self, saga: SagaRow, reason: str, message: str) -> SagaRow | None:
        return await self._set_state(
            saga, "compensating" if saga.spend_entry_id else "compensated",
            failure_reason=f"{reason}: {message}")

    async def _compensate(self, saga: SagaRow) -> SagaRow | None:
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
            decision = decide(exc, saga.attempts + 1, REFUND_RETRY)
            if decision.retry:
                raise await self._transient(saga, exc, decision.delay) from None
            log.error("draw_compensation_failed", saga_id=saga.saga_id, error=decision.reason)
            return await self._set_state(
                saga, "dead_letter",
                failure_reason=f"REFUND_FAILED: {saga.failure_reason}; {decision.reason}")
        return await self._set_state(saga, "compensated")

    async def _draw_and_record(self, saga: SagaRow) -> SagaRow | DrawRow | None:
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

    async def _undeliverable_prizes(self, saga: SagaRow, config: LotteryConfig) -> set[str]:
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

    def _given_up(self, saga: SagaRow) -> bool:
        """A paid draw that could not be drawn for DRAW_GIVE_UP_SECONDS (Redis down that long)
        is compensated instead of keeping the member's points waiting."""
        if saga.created_at is None:
            return False
        return (datetime.now(UTC) - saga.created_at).total_seconds() > DRAW_GIVE_UP_SECONDS

    async def _record(self, saga: SagaRow, activity: Activity, config: LotteryConfig,
                      result: RedisDraw, weights: list[tuple[str, int]], total_weight: int,
                      now: datetime) -> SagaRow | DrawRow | None:
        """PostgreSQL has the final say: limits and stock are checked again here, and a win
        exists only once this transaction commits."""
        refused = ""
        recorded: DrawRow | None = None
        from_state = saga.stored_state or "spent"
        entry_id = saga.spend_entry_id if saga.stored_state is not None else ""
        if not (config.daily_limit or config.total_limit) and not result.won_prize_id:
            # Nothing won and no limit to check again: the state move and the draw's record
            # are one statement (atomic on its own).
            lost = DrawRow(saga.saga_id, saga.brand_id, saga.activity_id, saga.account_id,
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
                if won is not None and not await repo.take_prize(saga.activity_id, won):
                    won = None  # Redis thought stock remained; PostgreSQL says no
                prize = config.prize(won) if won else None
                grant_id: str | None = None
                if prize is not None and not prize.reward.empty:
                    grant_id = await _grant(repo, saga.saga_id, saga.brand_id,
                                            saga.account_id, prize.reward, "LOTTERY_PRIZE",
                                            saga.spend_entry_id)
                recorded = DrawRow(
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
        """Resume sagas left unfinished (a crash, an outage) after the grace period."""
        async with self.db.connection() as conn:
            stale = await ParticipationRepository(conn).stale_sagas(self.saga_grace_seconds,
                                                                    limit)
        for saga_id in stale:
            try:
                await self.run_saga(saga_id)
            except DomainError as exc:
                if exc.code.name != "FAILED_PRECONDITION":
                    log.warning("draw_saga_recovery_pending", saga_id=saga_id, error=repr(exc))
            except Exception as exc:
                log.warning("draw_saga_recovery_error", saga_id=saga_id, error=repr(exc))
        return len(stale)

    # --- koi ---
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

    # --- invites (membership events) ---
    async def on_membership_event(self, conn: Connection,
                                  envelope: envelope_pb2.EventEnvelope) -> None:
        joined = membership_events_pb2.MemberJoined()
        if not envelope.payload.Is(joined.DESCRIPTOR) or not envelope.payload.Unpack(joined):
            return
        if not joined.invite_code:
            return
        occurred = (envelope.occur_time.ToDatetime(tzinfo=UTC)
                    if envelope.HasField("occur_time") else self.clock())
        outcome = await accept_invite(conn, joined.brand_id, joined.account_id,
                                      joined.invite_code, occurred)
        log.info("invite_processed", brand_id=joined.brand_id, outcome=outcome or "ACCEPTED")


def _signin_key(brand_id: str, activity_id: str, account_id: str, day: date) -> str:
    return f"eng:{brand_id}:{{{activity_id}}}:signin:{account_id}:{day.isoformat()}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

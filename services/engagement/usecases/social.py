"""Vote, quiz and invite: the social activities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from brandclub.events.v1 import engagement_events_pb2 as events
from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from libs.db import Connection
from libs.errors import require
from libs.idempotency import CommitOnce
from libs.logging import get_logger
from libs.outbox import add_event
from libs.paging import decode_time_and_id, keyset_page, page_size, time_and_id
from services.engagement.adapters.postgres import ActivityRepository, ParticipationRepository
from services.engagement.domain.activities import Activity, ActivityState
from services.engagement.domain.activity_kinds import (
    ActivityKind,
    InviteConfig,
    QuizConfig,
    Reward,
    VoteConfig,
)
from services.engagement.domain.grants import Grant
from services.engagement.domain.invites import AcceptedInvite
from services.engagement.domain.participation import (
    check_quiz_attempt,
    check_vote,
    decide_invite,
    grade_quiz,
    local_date,
    new_invite_code,
    quiz_points,
    revealed,
    stable_id,
)
from services.engagement.usecases.context import (
    PRODUCER,
    TOPIC,
    Participant,
    get_activity,
)
from services.engagement.usecases.rewards import RewardDispatch, owe_reward

log = get_logger(__name__)


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
        gift = await owe_reward(repo, "vote_" + stable_id(p.activity_id, p.account_id),
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
        grant_id = await owe_reward(repo, "quiz_" + stable_id(p.activity_id, p.account_id,
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
        await owe_reward(repo, "invr_" + stable_id(activity_id, inviter, invitee), brand_id,
                     inviter, config.inviter_reward, "INVITE_INVITER_REWARD")
    if decision.reward_invitee and not config.invitee_reward.empty:
        await owe_reward(repo, "inve_" + stable_id(activity_id, invitee), brand_id, invitee,
                     config.invitee_reward, "INVITE_INVITEE_REWARD")
    await add_event(conn, topic=TOPIC, brand_id=brand_id, producer=PRODUCER,
                    payload=events.InviteAccepted(brand_id=brand_id, activity_id=activity_id,
                                                  inviter_account_id=inviter,
                                                  invitee_account_id=invitee))
    return ""


@dataclass(frozen=True)
class Voted:
    """A vote's answer: the tallies, and the first vote's gift as granted just now."""
    view: VoteView
    gift: Grant | None


@dataclass(frozen=True)
class QuizSubmitted:
    """A quiz attempt's answer: its grades, and its points as granted just now."""
    result: QuizResult
    grant: Grant | None


@dataclass(frozen=True)
class InvitePage:
    invites: list[AcceptedInvite]
    next_page_token: str


class SocialActivities(RewardDispatch):
    """Votes, quizzes, invite codes, and invites accepted when membership says an invitee
    joined with a code."""

    async def vote(self, brand_id: str, activity_id: str, account_id: str, option_id: str,
                   once: CommitOnce[VoteView, VoteView]) -> Voted:
        """CastVote: a live member's vote recorded with its first-vote gift owed (once per
        request_id), then the gift granted before the answer."""
        now = self.clock()
        p = await self.participant(brand_id, activity_id, account_id, ActivityKind.VOTE, now)
        view = await once(lambda conn: cast_vote(conn, p, option_id, now))
        return Voted(view, await self._granted_now(view.gift_grant_id))

    async def answer_quiz(self, brand_id: str, activity_id: str, account_id: str,
                          answers: list[tuple[str, list[str]]],
                          once: CommitOnce[QuizResult, QuizResult]) -> QuizSubmitted:
        """SubmitQuiz: a live member's attempt graded and its points owed (once per
        request_id), then the points granted before the answer."""
        now = self.clock()
        p = await self.participant(brand_id, activity_id, account_id, ActivityKind.QUIZ, now)
        result = await once(lambda conn: submit_quiz(conn, p, answers, now))
        return QuizSubmitted(result, await self._granted_now(result.grant_id))

    async def _granted_now(self, grant_id: str) -> Grant | None:
        if not grant_id:
            return None
        grants = await self.dispatch([grant_id])
        return grants[0] if grants else None

    async def quiz(self, brand_id: str, activity_id: str) -> tuple[Activity, QuizConfig]:
        """GetQuiz: the quiz's activity and questions (the caller shows them without the
        answers)."""
        async with self.db.connection() as conn:
            activity = await get_activity(conn, brand_id, activity_id)
        activity.require_kind(ActivityKind.QUIZ)
        config = activity.definition.config
        assert isinstance(config, QuizConfig)
        return activity, config

    async def invites(self, brand_id: str, activity_id: str, inviter_account_id: str,
                      requested_size: int, token: str) -> InvitePage:
        """ListInvites: who joined with the inviter's code, newest first, paged."""
        async with self.db.connection() as conn:
            activity = await get_activity(conn, brand_id, activity_id)
        activity.require_kind(ActivityKind.INVITE)
        inviter = require(inviter_account_id, "inviter_account_id")
        size = page_size(requested_size)
        filters = {"brand_id": activity.brand_id, "activity_id": activity.activity_id,
                   "inviter_account_id": inviter}
        after = decode_time_and_id(token, filters=filters)
        async with self.db.connection() as conn:
            rows = await ParticipationRepository(conn).page_invites(
                activity.activity_id, inviter, size + 1, after)
        return InvitePage(*keyset_page(
            rows, size, lambda i: time_and_id(i.accepted_at, i.invitee_account_id),
            filters=filters))

    async def vote_results(self, brand_id: str, activity_id: str) -> list[tuple[str, str, int]]:
        """GetVoteResults: (option_id, label, votes) of each option."""
        async with self.db.connection() as conn:
            activity = await get_activity(conn, brand_id, activity_id)
        activity.require_kind(ActivityKind.VOTE)
        async with self.db.connection() as conn:
            return await vote_tallies(conn, activity)

    async def member_invite_code(self, brand_id: str, activity_id: str,
                                 account_id: str) -> tuple[str, int, int]:
        """GetInviteCode: the member's code (made on first ask), rewarded invites, the cap."""
        p = await self.participant(brand_id, activity_id, account_id, ActivityKind.INVITE,
                                   self.clock())
        async with self.db.transaction() as conn:
            return await invite_code(conn, p)

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

"""Voting, quizzes and invites."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
import pytest

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from brandclub.events.v1 import engagement_events_pb2, envelope_pb2, membership_events_pb2
from libs.grpc_client import remote_error
from libs.outbox import new_envelope, stream_name
from tests.services.engagement.harness import Env, eventually, rid

VOTE = {"vote": {"options": [{"option_id": "red", "label": "Red"},
                             {"option_id": "blue", "label": "Blue"}],
                 "votes_per_day": 2, "gift": {"points": 3}}}


async def vote(env: Env, activity_id: str, account: str, option: str) -> pb.CastVoteResponse:
    return await env.engagement.CastVote(pb.CastVoteRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activity_id, account_id=account,
        option_id=option))


async def test_votes_per_day_gift_once_and_live_results(env: Env) -> None:
    """Members vote up to the daily allowance, get the gift on their first vote only, and
    results are live."""
    await env.members("acc_v1", "acc_v2")
    activity = await env.activity(VOTE)
    first = await vote(env, activity.activity_id, "acc_v1", "red")
    assert first.votes_left_today == 1 and first.gift.points == 3
    assert first.gift.state == pb.GRANT_STATE_DONE
    second = await vote(env, activity.activity_id, "acc_v1", "blue")
    assert not second.gift.grant_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vote(env, activity.activity_id, "acc_v1", "red")
    assert remote_error(caught.value).reason == "DAILY_VOTES_USED"
    await vote(env, activity.activity_id, "acc_v2", "red")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vote(env, activity.activity_id, "acc_v2", "green")
    assert remote_error(caught.value).metadata["field"] == "option_id"
    results = await env.engagement.GetVoteResults(pb.GetVoteResultsRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id))
    assert {t.option_id: t.votes for t in results.tallies} == {"red": 2, "blue": 1}
    assert results.total_votes == 3
    env.clock.advance(timedelta(days=1))
    assert (await vote(env, activity.activity_id, "acc_v1", "red")).votes_left_today == 1
    assert [e.amount for e in env.benefits.entries_of("acc_v1")] == [3]


QUIZ = {"quiz": {"points_per_correct": 10, "max_attempts": 2, "questions": [
    {"question_id": "q1", "text": "1+1?", "options": [{"option_id": "a", "text": "2"},
                                                     {"option_id": "b", "text": "3"}],
     "correct_option_ids": ["a"]},
    {"question_id": "q2", "text": "Pick primes", "options": [
        {"option_id": "x", "text": "2"}, {"option_id": "y", "text": "3"},
        {"option_id": "z", "text": "4"}], "correct_option_ids": ["x", "y"]}]}}


async def submit(env: Env, activity_id: str, account: str,
                 answers: dict[str, list[str]]) -> pb.SubmitQuizResponse:
    return await env.engagement.SubmitQuiz(pb.SubmitQuizRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activity_id, account_id=account,
        answers=[pb.QuizAnswer(question_id=q, option_ids=o) for q, o in answers.items()]))


async def test_quiz_hides_answers_grades_and_limits_attempts(env: Env) -> None:
    """Answers are never shown while an attempt remains (the last attempt reveals them);
    points reward improvement; attempts cap."""
    await env.members("acc_q")
    activity = await env.activity(QUIZ)
    quiz = await env.engagement.GetQuiz(pb.GetQuizRequest(brand_id=env.brand_id,
                                                          activity_id=activity.activity_id))
    assert [q.question_id for q in quiz.questions] == ["q1", "q2"]
    assert all(not q.correct_option_ids for q in quiz.questions)
    public = await env.engagement.GetActivity(pb.GetActivityRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id))
    assert all(not q.correct_option_ids for q in public.activity.spec.quiz.questions)
    listed = await env.engagement.ListActivities(pb.ListActivitiesRequest(brand_id=env.brand_id))
    assert all(not q.correct_option_ids for q in listed.activities[0].spec.quiz.questions)
    first = await submit(env, activity.activity_id, "acc_q", {"q1": ["a"], "q2": ["x"]})
    assert (first.correct_answers, first.total_questions, first.points_awarded) == (1, 2, 10)
    assert [r.correct for r in first.results] == [True, False]
    assert [list(r.correct_option_ids) for r in first.results] == [[], []]
    second = await submit(env, activity.activity_id, "acc_q", {"q1": ["a"], "q2": ["y", "x"]})
    assert (second.correct_answers, second.points_awarded, second.attempt) == (2, 10, 2)
    assert [list(r.correct_option_ids) for r in second.results] == [["a"], ["x", "y"]]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await submit(env, activity.activity_id, "acc_q", {"q1": ["a"]})
    assert remote_error(caught.value).reason == "QUIZ_ATTEMPTS_USED"
    assert sorted(e.amount for e in env.benefits.entries_of("acc_q")) == [10, 10]


async def test_quiz_refuses_unknown_questions_naming_the_field(env: Env) -> None:
    """An answer to a question that is not in the quiz is refused naming it."""
    await env.members("acc_q2")
    activity = await env.activity(QUIZ)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await submit(env, activity.activity_id, "acc_q2", {"q9": ["a"]})
    assert remote_error(caught.value).metadata["field"] == "answers[0].question_id"


INVITE = {"invite": {"inviter_reward": {"points": 50}, "invitee_reward": {"points": 20},
                     "max_rewarded_per_inviter": 2}}


async def joined(env: Env, account: str, code: str) -> None:
    """Membership's MemberJoined event, as the membership service publishes it."""
    envelope = new_envelope(brand_id=env.brand_id, producer="membership",
                            payload=membership_events_pb2.MemberJoined(
                                brand_id=env.brand_id, account_id=account,
                                member_id=f"mbr_{account}", level=1, invite_code=code))
    await env.redis.xadd(stream_name("membership"), {"envelope": envelope.SerializeToString()})


async def test_invites_reward_both_once_without_self_invites_and_with_caps(env: Env) -> None:
    """Opening the card with a code rewards inviter and invitee once; no self-invite; the
    inviter's rewards stop at the cap while invitees still get theirs."""
    await env.members("acc_host")
    activity = await env.activity(INVITE)
    code = (await env.engagement.GetInviteCode(pb.GetInviteCodeRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id, account_id="acc_host"))).code
    again = await env.engagement.GetInviteCode(pb.GetInviteCodeRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id, account_id="acc_host"))
    assert again.code == code and again.max_rewarded_per_inviter == 2
    for account in ("acc_host", "acc_g1", "acc_g1", "acc_g2", "acc_g3"):
        await joined(env, account, code)

    async def processed() -> bool:
        return len(env.benefits.entries_of("acc_g3")) == 1

    await eventually(processed)
    assert [e.amount for e in env.benefits.entries_of("acc_host")] == [50, 50]
    for guest in ("acc_g1", "acc_g2", "acc_g3"):
        assert [e.amount for e in env.benefits.entries_of(guest)] == [20]
    invites = await env.engagement.ListInvites(pb.ListInvitesRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id,
        inviter_account_id="acc_host"))
    assert sorted((i.invitee_account_id, i.inviter_rewarded) for i in invites.invites) == [
        ("acc_g1", True), ("acc_g2", True), ("acc_g3", False)]

    async def published() -> bool:
        entries: Any = await env.redis.xrange(stream_name("engagement"))
        accepted = []
        for _, fields in entries:
            event = envelope_pb2.EventEnvelope.FromString(fields[b"envelope"])
            message = engagement_events_pb2.InviteAccepted()
            if event.payload.Unpack(message):
                accepted.append(message.invitee_account_id)
        return sorted(accepted) == ["acc_g1", "acc_g2", "acc_g3"]

    await eventually(published)

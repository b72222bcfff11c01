"""Page tokens are bound to the request's filters: a token taken to another filter (or
edited) is refused INVALID_ARGUMENT PAGE_TOKEN_INVALID, swept over engagement's List RPCs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import grpc
import pytest

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from libs.grpc_client import remote_error
from tests.services.engagement.harness import Env, rid

VOTE = {"vote": {"options": [{"option_id": "a", "label": "A"}, {"option_id": "b", "label": "B"}],
                 "gift": {"points": 1}}}
QUIZ = {"quiz": {"points_per_correct": 1, "questions": [
    {"question_id": "q", "text": "?", "options": [{"option_id": "a", "text": "A"},
                                                 {"option_id": "b", "text": "B"}],
     "correct_option_ids": ["a"]}]}}
LOTTERY = {"lottery": {"prizes": [
    {"prize_id": "t", "name": "Thanks", "kind": "PRIZE_KIND_THANKS", "weight": 1},
    {"prize_id": "p", "name": "P", "kind": "PRIZE_KIND_POINTS", "weight": 1, "stock": 9,
     "points": 1}]}}


async def refused(call: Callable[[], Awaitable[Any]]) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call()
    error = remote_error(caught.value)
    return f"{error.reason}:{error.metadata.get('field')}"


async def test_a_page_token_goes_on_only_with_its_own_filters(env: Env) -> None:
    """Each List RPC's second page follows with the same filters and is refused with others
    or with an edited token."""
    e, brand = env.engagement, env.brand_id
    await env.members("acc_p1", "acc_p2")
    vote = await env.activity(VOTE)
    quiz = await env.activity(QUIZ)
    lottery = await env.activity(LOTTERY)
    await e.CastVote(pb.CastVoteRequest(request_id=rid(), brand_id=brand,
                                        activity_id=vote.activity_id, account_id="acc_p1",
                                        option_id="a"))
    await e.SubmitQuiz(pb.SubmitQuizRequest(
        request_id=rid(), brand_id=brand, activity_id=quiz.activity_id, account_id="acc_p1",
        answers=[pb.QuizAnswer(question_id="q", option_ids=["a"])]))
    for _ in range(2):
        await e.DrawLottery(pb.DrawLotteryRequest(request_id=rid(), brand_id=brand,
                                                  activity_id=lottery.activity_id,
                                                  account_id="acc_p1"))
    env.clock.advance(timedelta(seconds=1))

    activities = pb.ListActivitiesRequest(brand_id=brand, page_size=1)
    token = (await e.ListActivities(activities)).next_page_token
    assert (await e.ListActivities(pb.ListActivitiesRequest(
        brand_id=brand, page_size=1, page_token=token))).activities
    assert await refused(lambda: e.ListActivities(pb.ListActivitiesRequest(
        brand_id=brand, page_size=1, page_token=token, kind=pb.ACTIVITY_KIND_VOTE))) == (
        "PAGE_TOKEN_INVALID:page_token")

    grants = pb.ListMemberRewardGrantsRequest(brand_id=brand, account_id="acc_p1", page_size=1)
    token = (await e.ListMemberRewardGrants(grants)).next_page_token
    assert token
    assert await refused(lambda: e.ListMemberRewardGrants(pb.ListMemberRewardGrantsRequest(
        brand_id=brand, account_id="acc_p2", page_size=1, page_token=token))) == (
        "PAGE_TOKEN_INVALID:page_token")

    draws = pb.ListDrawsRequest(brand_id=brand, activity_id=lottery.activity_id, page_size=1)
    token = (await e.ListDraws(draws)).next_page_token
    assert (await e.ListDraws(pb.ListDrawsRequest(
        brand_id=brand, activity_id=lottery.activity_id, page_size=1,
        page_token=token))).draws
    assert await refused(lambda: e.ListDraws(pb.ListDrawsRequest(
        brand_id=brand, activity_id=lottery.activity_id, account_id="acc_p1", page_size=1,
        page_token=token))) == "PAGE_TOKEN_INVALID:page_token"
    edited = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert await refused(lambda: e.ListDraws(pb.ListDrawsRequest(
        brand_id=brand, activity_id=lottery.activity_id, page_size=1,
        page_token=edited))) == "PAGE_TOKEN_INVALID:page_token"

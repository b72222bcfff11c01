"""A retried mutation (same request_id) answers exactly what the first call answered: swept
over every RPC whose use case runs its step through a stored answer (api/answers.py)."""

from __future__ import annotations

import ast
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from tests.services.engagement.harness import Env, rid

SERVICER = Path(__file__).resolve().parents[3] / "services" / "engagement" / "api" / "servicer.py"
SIGN_IN = {"sign_in": {"rewards": [{"day": 1, "reward": {"points": 5}}],
                       "make_up_allowed": True, "make_up_window_days": 3}}
VOTE = {"vote": {"options": [{"option_id": "red", "label": "Red"},
                             {"option_id": "blue", "label": "Blue"}], "gift": {"points": 3}}}
QUIZ = {"quiz": {"points_per_correct": 10, "questions": [
    {"question_id": "q1", "text": "1+1?", "options": [{"option_id": "a", "text": "2"},
                                                     {"option_id": "b", "text": "3"}],
     "correct_option_ids": ["a"]}]}}
KOI = {"lottery": {"mode": "LOTTERY_MODE_KOI", "prizes": [
    {"prize_id": "koi", "name": "Koi", "kind": "PRIZE_KIND_POINTS", "weight": 1, "stock": 1,
     "points": 50}]}}


def _spec(env: Env, config: dict[str, Any], **window: timedelta) -> pb.ActivitySpec:
    return json_format.ParseDict({
        "title": "Replay", "start_time": (env.clock.now + window.get(
            "starts", -timedelta(hours=1))).isoformat(),
        "end_time": (env.clock.now + window.get("ends", timedelta(days=3))).isoformat(),
        **config}, pb.ActivitySpec())


async def twice(call: Callable[[Any], Awaitable[Message]], request: Message) -> None:
    first = await call(request)
    assert await call(request) == first


def _methods_with_stored_answers() -> set[str]:
    """The RPC names the servicer passes to `once(...)` / `_activity_once(...)`."""
    names = set()
    for node in ast.walk(ast.parse(SERVICER.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and re.fullmatch(r"_?\w*once", node.func.attr) and node.args \
                and isinstance(node.args[0], ast.Constant):
            names.add(str(node.args[0].value))
    return names


SWEPT = {"CreateActivity", "UpdateActivity", "PublishActivity", "CloseActivity", "SignIn",
         "MakeUpSignIn", "CastVote", "SubmitQuiz", "EnterKoiDraw", "RevealKoiDraw"}


def test_the_sweep_covers_every_stored_answer() -> None:
    """Every RPC answering from a stored answer is replayed below."""
    assert _methods_with_stored_answers() == SWEPT


async def test_every_stored_answer_replays_identically(env: Env) -> None:
    """Each mutation sent twice with one request_id answers the same both times."""
    e = env.engagement
    await env.members("acc_r")
    draft = pb.CreateActivityRequest(request_id=rid(), brand_id=env.brand_id,
                                     spec=_spec(env, VOTE), publish=False)
    await twice(e.CreateActivity, draft)
    activity_id = (await e.CreateActivity(draft)).activity.activity_id
    await twice(e.UpdateActivity, pb.UpdateActivityRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activity_id,
        spec=_spec(env, VOTE, ends=timedelta(days=4))))
    await twice(e.PublishActivity, pb.PublishActivityRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activity_id))
    await twice(e.CastVote, pb.CastVoteRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activity_id, account_id="acc_r",
        option_id="red"))
    await twice(e.CloseActivity, pb.CloseActivityRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activity_id))

    quiz = await env.activity(QUIZ)
    await twice(e.SubmitQuiz, pb.SubmitQuizRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=quiz.activity_id,
        account_id="acc_r", answers=[pb.QuizAnswer(question_id="q1", option_ids=["a"])]))

    sign_in = await env.activity(SIGN_IN, starts=-timedelta(days=3))
    await twice(e.SignIn, pb.SignInRequest(request_id=rid(), brand_id=env.brand_id,
                                           activity_id=sign_in.activity_id, account_id="acc_r"))
    yesterday = (env.clock.now + timedelta(hours=8) - timedelta(days=1)).date().isoformat()
    await twice(e.MakeUpSignIn, pb.MakeUpSignInRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=sign_in.activity_id,
        account_id="acc_r", local_date=yesterday))

    koi = await env.activity(KOI, ends=timedelta(hours=1))
    await twice(e.EnterKoiDraw, pb.EnterKoiDrawRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=koi.activity_id,
        account_id="acc_r"))
    env.clock.advance(timedelta(hours=2))
    reveal = pb.RevealKoiDrawRequest(request_id=rid(), brand_id=env.brand_id,
                                     activity_id=koi.activity_id)
    await twice(e.RevealKoiDraw, reveal)

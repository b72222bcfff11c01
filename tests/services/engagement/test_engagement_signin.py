"""Daily sign-in: once per local day whatever the concurrency, streaks, rewards, make-up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from libs.grpc_client import remote_error
from tests.services.engagement.harness import Env, eventually, rid

REWARDS = {"sign_in": {"rewards": [{"day": 1, "reward": {"points": 5}},
                                   {"day": 2, "reward": {"points": 10,
                                                         "coupon_template_id": "tpl_day2"}}],
                       "cycle_days": 7, "make_up_allowed": True, "make_up_cost_points": 30,
                       "make_up_window_days": 3}}


async def sign_in(env: Env, activity_id: str, account: str,
                  request_id: str | None = None) -> pb.SignInRecord:
    reply = await env.engagement.SignIn(pb.SignInRequest(
        request_id=request_id or rid(), brand_id=env.brand_id, activity_id=activity_id,
        account_id=account))
    return reply.record


async def test_thousand_concurrent_sign_ins_across_local_midnight(env: Env) -> None:
    """1,000 concurrent sign-ins of one member across Shanghai midnight: one per local day."""
    await env.members("acc_burst")
    env.clock.now = datetime(2026, 11, 25, 15, 59, 59, 500_000, tzinfo=UTC)  # 23:59:59.5 CST
    activity = await env.activity(REWARDS)
    env.clock.tick = timedelta(milliseconds=1)  # every reading moves time on: crosses midnight

    async def attempt() -> str:
        try:
            record = await sign_in(env, activity.activity_id, "acc_burst")
        except grpc.aio.AioRpcError as error:
            return remote_error(error).reason
        return record.local_date

    outcomes = await asyncio.gather(*(attempt() for _ in range(1000)))
    env.clock.tick = timedelta(0)
    assert sorted(o for o in outcomes if o != "ALREADY_SIGNED_IN") == ["2026-11-25",
                                                                      "2026-11-26"]
    rows = await env.db.fetch("SELECT local_date, streak_days FROM sign_ins "
                              "WHERE account_id = 'acc_burst' ORDER BY local_date")
    assert [(str(r[0]), r[1]) for r in rows] == [("2026-11-25", 1), ("2026-11-26", 2)]

    async def rewarded() -> bool:
        return len(env.benefits.entries_of("acc_burst", "SIGN_IN_REWARD")) == 2 and len(
            env.benefits.coupons) == 1

    await eventually(rewarded)
    assert sorted(e.amount for e in env.benefits.entries_of("acc_burst")) == [5, 10]
    assert env.benefits.coupons == [("acc_burst", "tpl_day2", "SIGN_IN_REWARD")]


async def test_streak_rewards_and_idempotent_retry(env: Env) -> None:
    """Consecutive days grow the streak; a retried request returns the first answer."""
    await env.members("acc_s")
    activity = await env.activity(REWARDS)
    first = await sign_in(env, activity.activity_id, "acc_s", request_id="r-day1")
    again = await sign_in(env, activity.activity_id, "acc_s", request_id="r-day1")
    assert again.local_date == first.local_date and again.streak_days == 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sign_in(env, activity.activity_id, "acc_s")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    env.clock.advance(timedelta(days=1))
    second = await sign_in(env, activity.activity_id, "acc_s")
    assert second.streak_days == 2
    assert [r.points for r in second.rewards] == [10]

    async def granted() -> bool:
        return sorted(e.amount for e in env.benefits.entries_of("acc_s")) == [5, 10]

    await eventually(granted)
    env.clock.advance(timedelta(days=2))
    assert (await sign_in(env, activity.activity_id, "acc_s")).streak_days == 1
    status = await env.engagement.GetSignInStatus(pb.GetSignInStatusRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id, account_id="acc_s"))
    assert status.signed_in_today and status.current_streak_days == 1
    assert len(status.recent_dates) == 3


async def test_make_up_costs_points_and_mends_the_streak(env: Env) -> None:
    """A make-up for a missed day costs its points and joins the streak around it."""
    await env.members("acc_m")
    env.give_points("acc_m", 100)
    activity = await env.activity(REWARDS, starts=-timedelta(days=5))
    env.clock.advance(-timedelta(days=2))
    await sign_in(env, activity.activity_id, "acc_m")  # day D-2
    env.clock.advance(timedelta(days=2))
    today = await sign_in(env, activity.activity_id, "acc_m")  # day D, streak 1
    assert today.streak_days == 1
    missed = (datetime.fromisoformat(today.local_date) - timedelta(days=1)).date().isoformat()
    request = pb.MakeUpSignInRequest(request_id=rid(), brand_id=env.brand_id,
                                     activity_id=activity.activity_id, account_id="acc_m",
                                     local_date=missed)
    made_up = (await env.engagement.MakeUpSignIn(request)).record
    assert made_up.make_up and made_up.streak_days == 2 and made_up.cost_points == 30
    assert (await env.engagement.MakeUpSignIn(request)).record.local_date == missed
    assert env.benefits.net_spent("acc_m") == 30
    status = await env.engagement.GetSignInStatus(pb.GetSignInStatusRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id, account_id="acc_m"))
    assert status.current_streak_days == 3
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.engagement.MakeUpSignIn(pb.MakeUpSignInRequest(
            request_id=rid(), brand_id=env.brand_id, activity_id=activity.activity_id,
            account_id="acc_m", local_date=missed))
    assert remote_error(caught.value).reason == "ALREADY_SIGNED_IN"
    too_old = (datetime.fromisoformat(today.local_date) - timedelta(days=4)).date().isoformat()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.engagement.MakeUpSignIn(pb.MakeUpSignInRequest(
            request_id=rid(), brand_id=env.brand_id, activity_id=activity.activity_id,
            account_id="acc_m", local_date=too_old))
    assert remote_error(caught.value).metadata["field"] == "local_date"
    assert env.benefits.net_spent("acc_m") == 30


async def test_make_up_without_points_is_refused_and_not_recorded(env: Env) -> None:
    """A make-up the member cannot pay for is refused and leaves no sign-in."""
    await env.members("acc_poor")
    activity = await env.activity(REWARDS, starts=-timedelta(days=5))
    missed = "2026-11-24"  # the default clock reads 2026-11-25 12:00 in Shanghai
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.engagement.MakeUpSignIn(pb.MakeUpSignInRequest(
            request_id=rid(), brand_id=env.brand_id, activity_id=activity.activity_id,
            account_id="acc_poor", local_date=missed))
    assert remote_error(caught.value).reason == "INSUFFICIENT_POINTS"
    assert await env.db.fetchval("SELECT count(*) FROM sign_ins") == 0


async def test_audience_and_membership_are_required(env: Env) -> None:
    """Non-members, and members outside the audience's levels, cannot sign in."""
    await env.members("acc_lv0")
    activity = await env.activity(REWARDS, levels=[1, 2])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sign_in(env, activity.activity_id, "acc_lv0")
    assert remote_error(caught.value).reason == "NOT_IN_AUDIENCE"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sign_in(env, activity.activity_id, "acc_stranger")
    assert remote_error(caught.value).reason == "NOT_A_MEMBER"


async def test_sign_in_outside_the_window_is_refused(env: Env) -> None:
    """A sign-in before the activity starts is refused as not live."""
    await env.members("acc_early")
    activity = await env.activity(REWARDS, starts=timedelta(hours=3))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await sign_in(env, activity.activity_id, "acc_early")
    assert remote_error(caught.value).reason == "ACTIVITY_NOT_LIVE"

"""Lottery: Redis hot path, PostgreSQL truth, reconciliation, the draw saga, audits, koi."""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from datetime import timedelta

import grpc
import pytest

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from libs.grpc_client import remote_error
from services.engagement.domain.participation import parse_weights, pick
from tests.services.engagement.harness import Env, eventually, rid
from tests.services.engagement.lottery_helpers import COST, draw, lottery

RETRIED = (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE,
           grpc.StatusCode.DEADLINE_EXCEEDED)
# gRPC servers cancel requests beyond 1,000 waiting to be picked up (the core's default
# server_max_pending_requests); like the gateway's connection pool, the test keeps fewer
# calls in flight on its one channel, all 5,000 draws being submitted at once.
IN_FLIGHT = 600


async def try_draw(env: Env, activity_id: str, account: str,
                   in_flight: asyncio.Semaphore | None = None) -> str:
    """Draw as a real client does: a call that got no answer is retried with the same
    request_id, which returns the draw's result if it happened."""
    request_id = rid()
    for _ in range(20):
        try:
            async with in_flight or asyncio.Semaphore(1):
                result = await draw(env, activity_id, account, request_id)
        except grpc.aio.AioRpcError as error:
            if error.code() in RETRIED:
                await asyncio.sleep(0.5)
                continue
            return remote_error(error).reason
        return "WON" if result.outcome == pb.DRAW_OUTCOME_WON else "LOST"
    return "NO_ANSWER"


async def recorded(env: Env, activity_id: str) -> tuple[int, int, int]:
    """(draws recorded, wins recorded, won counter of the prize) in PostgreSQL."""
    row = await env.db.fetchrow(
        "SELECT count(*) AS draws, count(won_prize_id) AS wins, "
        "(SELECT won FROM lottery_prizes WHERE activity_id = $1 AND prize_id = 'gift') AS won "
        "FROM lottery_draws WHERE activity_id = $1", activity_id)
    assert row is not None
    return int(row["draws"]), int(row["wins"]), int(row["won"])


async def test_five_thousand_concurrent_draws_against_a_hundred_prizes(env: Env,
                                                                      quiet_logs: None) -> None:
    """5,000 concurrent draws, 100 prizes: exactly 100 won; points only for draws that happened."""
    accounts = [f"acc_{i}" for i in range(250)]
    await env.members(*accounts)
    for account in accounts:
        env.give_points(account, 19 * COST)  # 20 attempts each, points for 19
    activity = await env.activity(lottery(100, total_limit=19, prize_weight=30))
    attempts = [account for account in accounts for _ in range(20)]
    in_flight = asyncio.Semaphore(IN_FLIGHT)
    outcomes = Counter(await asyncio.gather(*(try_draw(env, activity.activity_id, a, in_flight)
                                              for a in attempts)))
    draws, wins, won = await recorded(env, activity.activity_id)
    assert wins == won == outcomes["WON"] == 100
    assert draws == outcomes["WON"] + outcomes["LOST"]
    assert set(outcomes) <= {"WON", "LOST", "TOTAL_LIMIT_REACHED", "INSUFFICIENT_POINTS"}, outcomes
    per_member = dict(await env.db.fetch(
        "SELECT account_id, count(*) FROM lottery_draws WHERE activity_id = $1 "
        "GROUP BY account_id", activity.activity_id))
    for account in accounts:
        assert env.benefits.net_spent(account) == COST * per_member.get(account, 0)
        assert per_member.get(account, 0) <= 19
    assert await env.redis.hget(f"eng:{env.brand_id}:{{{activity.activity_id}}}:stock",
                                "gift") == b"0"

    async def prizes_granted() -> bool:
        return len(env.benefits.entries_of_reason("LOTTERY_PRIZE")) == 100

    await eventually(prizes_granted)


async def test_redis_flushed_mid_campaign_is_reconciled_without_oversell(
        env: Env, quiet_logs: None) -> None:
    """Redis loses everything twice mid-campaign (once during draws): still no oversell."""
    accounts = [f"acc_f{i}" for i in range(40)]
    await env.members(*accounts)
    for account in accounts:
        env.give_points(account, 1000)
    activity = await env.activity(lottery(30, prize_weight=60))
    await asyncio.gather(*(try_draw(env, activity.activity_id, a) for a in accounts))
    _, wins_before, _ = await recorded(env, activity.activity_id)
    await env.redis.flushall()

    async def flush_soon() -> None:
        await asyncio.sleep(0.05)
        await env.redis.flushall()

    flusher = asyncio.create_task(flush_soon())
    outcomes = await asyncio.gather(*(try_draw(env, activity.activity_id, a)
                                      for a in accounts * 4))
    await flusher
    _, wins, won = await recorded(env, activity.activity_id)
    assert wins == won <= 30
    assert wins == wins_before + outcomes.count("WON")
    assert wins == 30  # 200 draws at 60% against 30 prizes: all of them go
    reconciled = await env.engagement.ReconcileLottery(pb.ReconcileLotteryRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activity.activity_id))
    gift = reconciled.prizes[0]
    assert (gift.prize.prize_id, gift.won, gift.remaining) == ("gift", 30, 0)
    assert await env.redis.hget(f"eng:{env.brand_id}:{{{activity.activity_id}}}:stock",
                                "gift") == b"0"
    for account in accounts:
        per = await env.db.fetchval("SELECT count(*) FROM lottery_draws WHERE account_id = $1",
                                    account)
        assert env.benefits.net_spent(account) == COST * per


async def test_lost_spend_answer_is_recovered_to_one_draw(env: Env) -> None:
    """The spend applies but its answer is lost (a crash before the draw): the saga recovers,
    draws once, and the member paid once."""
    await env.members("acc_crash")
    env.give_points("acc_crash", 100)
    activity = await env.activity(lottery(5))
    env.benefits.lose_spend_answers = 10  # more than the client's retries
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await draw(env, activity.activity_id, "acc_crash", request_id="draw-1")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert remote_error(caught.value).reason == "DRAW_IN_PROGRESS"
    assert env.benefits.net_spent("acc_crash") == COST
    env.benefits.lose_spend_answers = 0

    async def completed() -> bool:
        state = await env.db.fetchval("SELECT state FROM draw_sagas WHERE request_id = 'draw-1'")
        return state == "completed"

    await eventually(completed)
    result = await draw(env, activity.activity_id, "acc_crash", request_id="draw-1")
    assert result.verified and result.cost_points == COST
    assert (await recorded(env, activity.activity_id))[0] == 1
    assert env.benefits.net_spent("acc_crash") == COST


async def test_crash_after_spend_resumes_or_compensates(env: Env) -> None:
    """Sagas left after the spend by a crashed process: a live lottery draws, a closed one
    gives the points back."""
    await env.members("acc_a", "acc_b")
    env.give_points("acc_a", 100)
    env.give_points("acc_b", 100)
    live = await env.activity(lottery(5))
    closed = await env.activity(lottery(5))
    for saga_id, activity_id, account in (("drw_live", live.activity_id, "acc_a"),
                                          ("drw_closed", closed.activity_id, "acc_b")):
        # The process spent the points, then died before drawing.
        entry = env.benefits.record_spend(env.brand_id, account, COST, "LOTTERY_DRAW_COST",
                                          f"eng:{saga_id}:spend")
        await env.db.execute(
            "INSERT INTO draw_sagas (saga_id, brand_id, activity_id, account_id, request_id, "
            "local_date, cost_points, state, spend_entry_id) "
            "VALUES ($1, $2, $3, $4, $5, '2026-11-25', $6, 'spent', $7)",
            saga_id, env.brand_id, activity_id, account, saga_id, COST, entry.entry_id)
    await env.engagement.CloseActivity(pb.CloseActivityRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=closed.activity_id))

    async def settled() -> bool:
        states = dict(await env.db.fetch("SELECT saga_id, state FROM draw_sagas"))
        return states == {"drw_live": "completed", "drw_closed": "compensated"}

    await eventually(settled)
    assert env.benefits.net_spent("acc_a") == COST
    assert env.benefits.net_spent("acc_b") == 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await draw(env, closed.activity_id, "acc_b", request_id="drw_closed")
    assert remote_error(caught.value).reason == "ACTIVITY_NOT_LIVE"


async def test_insufficient_points_and_limits_spend_nothing(env: Env) -> None:
    """A draw refused for points or a daily limit leaves the member's points untouched."""
    await env.members("acc_l")
    activity = await env.activity(lottery(5, daily_limit=1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await draw(env, activity.activity_id, "acc_l")
    assert remote_error(caught.value).reason == "INSUFFICIENT_POINTS"
    env.give_points("acc_l", 100)
    await draw(env, activity.activity_id, "acc_l")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await draw(env, activity.activity_id, "acc_l")
    assert remote_error(caught.value).reason == "DAILY_LIMIT_REACHED"
    assert env.balance("acc_l") == 100 - COST + sum(
        e.amount for e in env.benefits.entries_of_reason("LOTTERY_PRIZE"))
    env.clock.advance(timedelta(days=1))
    await draw(env, activity.activity_id, "acc_l")
    assert env.benefits.net_spent("acc_l") == 2 * COST


async def test_draws_record_their_randomness_for_audit(env: Env) -> None:
    """Every draw records its random value and weights; recomputing gives the same prize."""
    await env.members("acc_audit")
    env.give_points("acc_audit", 1000)
    activity = await env.activity(lottery(50))
    for _ in range(10):
        await draw(env, activity.activity_id, "acc_audit")
    listed = await env.engagement.ListDraws(pb.ListDrawsRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id, account_id="acc_audit",
        page_size=6))
    rest = await env.engagement.ListDraws(pb.ListDrawsRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id, account_id="acc_audit",
        page_token=listed.next_page_token))
    every = list(listed.draws) + list(rest.draws)
    assert len(every) == 10
    for item in every:
        assert item.verified
        assert pick(parse_weights(item.weights), item.random_value) == item.picked_prize_id
        assert 0 <= item.random_value < item.total_weight == 100
    await env.db.execute("UPDATE lottery_draws SET random_value = 99, picked_prize_id = 'gift' "
                         "WHERE draw_id = $1", every[0].draw_id)
    tampered = await env.engagement.GetDraw(pb.GetDrawRequest(brand_id=env.brand_id,
                                                             draw_id=every[0].draw_id))
    assert not tampered.draw.verified


KOI = {"lottery": {"mode": "LOTTERY_MODE_KOI", "prizes": [
    {"prize_id": "koi", "name": "Koi pack", "kind": "PRIZE_KIND_POINTS", "weight": 1,
     "stock": 3, "points": 5000}]}}


async def test_koi_draw_commits_before_and_reveals_after(env: Env) -> None:
    """The koi draw publishes sha256(seed) first; after entries close anyone can verify."""
    accounts = [f"acc_k{i}" for i in range(12)]
    await env.members(*accounts)
    activity = await env.activity(KOI, ends=timedelta(hours=2))
    before = (await env.engagement.GetKoiDraw(pb.GetKoiDrawRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id))).koi
    assert len(before.commitment) == 64 and not before.seed and not before.revealed
    for account in accounts:
        await env.engagement.EnterKoiDraw(pb.EnterKoiDrawRequest(
            request_id=rid(), brand_id=env.brand_id, activity_id=activity.activity_id,
            account_id=account))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.engagement.EnterKoiDraw(pb.EnterKoiDrawRequest(
            request_id=rid(), brand_id=env.brand_id, activity_id=activity.activity_id,
            account_id=accounts[0]))
    assert remote_error(caught.value).reason == "ALREADY_ENTERED"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await env.engagement.RevealKoiDraw(pb.RevealKoiDrawRequest(
            request_id=rid(), brand_id=env.brand_id, activity_id=activity.activity_id))
    assert remote_error(caught.value).reason == "KOI_ENTRIES_OPEN"
    env.clock.advance(timedelta(hours=3))

    async def revealed() -> bool:
        koi = (await env.engagement.GetKoiDraw(pb.GetKoiDrawRequest(
            brand_id=env.brand_id, activity_id=activity.activity_id))).koi
        return koi.revealed

    await eventually(revealed)  # the background loop reveals once entries close
    koi = (await env.engagement.GetKoiDraw(pb.GetKoiDrawRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id))).koi
    assert koi.commitment == before.commitment
    assert hashlib.sha256(bytes.fromhex(koi.seed)).hexdigest() == koi.commitment
    assert list(koi.entrant_account_ids) == sorted(accounts)
    assert len(koi.winner_account_ids) == 3
    verdict = await env.engagement.VerifyKoiDraw(pb.VerifyKoiDrawRequest(
        seed=koi.seed, commitment=koi.commitment, entrant_account_ids=koi.entrant_account_ids,
        winner_count=3, winner_account_ids=koi.winner_account_ids))
    assert verdict.valid
    forged = sorted(set(accounts) - set(koi.winner_account_ids))[:3]
    verdict = await env.engagement.VerifyKoiDraw(pb.VerifyKoiDrawRequest(
        seed=koi.seed, commitment=koi.commitment, entrant_account_ids=koi.entrant_account_ids,
        winner_count=3, winner_account_ids=forged))
    assert not verdict.valid and verdict.reason == "WINNERS_MISMATCH"
    verdict = await env.engagement.VerifyKoiDraw(pb.VerifyKoiDrawRequest(
        seed="00" * 32, commitment=koi.commitment, entrant_account_ids=koi.entrant_account_ids,
        winner_count=3, winner_account_ids=koi.winner_account_ids))
    assert verdict.reason == "COMMITMENT_MISMATCH"

    async def paid() -> bool:
        return sorted(e.account_id for e in env.benefits.entries_of_reason("KOI_PRIZE")) == (
            sorted(koi.winner_account_ids))

    await eventually(paid)

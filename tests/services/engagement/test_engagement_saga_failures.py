"""Every step of engagement's sagas failing, permanently and transiently (issue 11 §3): the
member is told the truth, what was paid is given back, and retries stop at their bound with
the reason where the operator can list it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from libs.errors import FailedPrecondition, NotFound, Unavailable
from libs.grpc_client import remote_error
from libs.sagas import RetryPolicy
from services.engagement.usecases import saga_steps
from tests.services.engagement.harness import Env, eventually, rid

COST = 10
QUICK = RetryPolicy(max_attempts=3, base_seconds=0.05, cap_seconds=0.05)


def coupon_lottery(*, with_thanks: bool = True, stock: int = 5) -> dict[str, object]:
    prizes: list[dict[str, object]] = [
        {"prize_id": "cpn", "name": "Coupon", "kind": "PRIZE_KIND_COUPON", "weight": 99,
         "stock": stock, "coupon_template_id": "tpl_prize"}]
    if with_thanks:
        prizes.append({"prize_id": "thanks", "name": "Thanks", "kind": "PRIZE_KIND_THANKS",
                       "weight": 1})
    return {"lottery": {"mode": "LOTTERY_MODE_INSTANT", "cost_points": COST,
                        "prizes": prizes}}


async def draw(env: Env, activity_id: str, account: str, request_id: str = "") -> pb.Draw:
    reply = await env.engagement.DrawLottery(pb.DrawLotteryRequest(
        request_id=request_id or rid(), brand_id=env.brand_id, activity_id=activity_id,
        account_id=account))
    return reply.draw


async def failed_grants(env: Env) -> list[pb.GrantedReward]:
    reply = await env.engagement.ListFailedRewardGrants(pb.ListFailedRewardGrantsRequest(
        brand_id=env.brand_id))
    return list(reply.grants)


async def grant_row(env: Env, grant_id: str) -> dict[str, object]:
    row = await env.db.fetchrow("SELECT * FROM reward_grants WHERE grant_id = $1", grant_id)
    assert row is not None
    return dict(row)


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Retry bounds of three quick attempts, so a test sees the bound reached."""
    for name in ("GRANT_RETRY", "SPEND_RETRY", "REFUND_RETRY"):
        monkeypatch.setattr(saga_steps, name, QUICK)
    yield


async def test_a_coupon_prize_the_member_cannot_get_is_never_drawn(env: Env) -> None:
    """Checked before the pick: a coupon the member already holds to the limit weighs 0 in
    their draw (never WON for it); when no prize is left for them the draw is refused and its
    cost given back."""
    await env.members("acc_held")
    env.give_points("acc_held", 100)
    env.benefits.coupon_refusals["tpl_prize"] = "COUPON_LIMIT_REACHED"
    activity = await env.activity(coupon_lottery())
    for _ in range(3):
        result = await draw(env, activity.activity_id, "acc_held")
        assert result.outcome == pb.DRAW_OUTCOME_LOST
        assert result.weights == "cpn:0,thanks:1" and result.verified
    assert env.benefits.calls["IssueCoupon"] == 0
    assert env.benefits.net_spent("acc_held") == 3 * COST

    only_coupon = await env.activity(coupon_lottery(with_thanks=False))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await draw(env, only_coupon.activity_id, "acc_held")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert remote_error(caught.value).reason == "NO_PRIZE_AVAILABLE"
    assert env.benefits.net_spent("acc_held") == 3 * COST  # that draw's cost came back


@pytest.mark.parametrize("failure", [
    FailedPrecondition("the limit of 1 per member is reached", reason="COUPON_LIMIT_REACHED"),
    NotFound("coupon template tpl_prize does not exist", reason="COUPON_TEMPLATE_NOT_FOUND"),
], ids=["limit", "missing-template"])
async def test_a_prize_benefits_refuses_is_refunded_and_told(env: Env,
                                                             failure: Exception) -> None:
    """The issue refused for good (the check passed, then another grant took the slot, or the
    template is gone): not retried; the draw says NOT_DELIVERED with the reason, its cost is
    given back, the prize returns to the stock, and the operator lists the grant."""
    await env.members("acc_refused")
    env.give_points("acc_refused", 100)
    assert isinstance(failure, FailedPrecondition | NotFound)
    env.benefits.failures["IssueCoupon"] = failure
    activity = await env.activity(coupon_lottery(with_thanks=False))
    result = await draw(env, activity.activity_id, "acc_refused")
    assert result.outcome == pb.DRAW_OUTCOME_NOT_DELIVERED
    assert result.grant.state == pb.GRANT_STATE_FAILED and result.grant.cost_refunded
    assert result.grant.failure_reason.startswith(failure.reason + ":")
    assert env.benefits.net_spent("acc_refused") == 0
    assert env.balance("acc_refused") == 100
    status = await env.engagement.GetLotteryStatus(pb.GetLotteryStatusRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id))
    assert [(p.won, p.remaining) for p in status.prizes] == [(0, 5)]
    again = await env.engagement.GetDraw(pb.GetDrawRequest(brand_id=env.brand_id,
                                                           draw_id=result.draw_id))
    assert again.draw.outcome == pb.DRAW_OUTCOME_NOT_DELIVERED
    listed = await env.engagement.ListDraws(pb.ListDrawsRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id))
    assert [d.outcome for d in listed.draws] == [pb.DRAW_OUTCOME_NOT_DELIVERED]
    dead = await failed_grants(env)
    assert [(g.grant_id, g.account_id, g.reason_code, g.cost_refunded) for g in dead] == [
        (result.grant.grant_id, "acc_refused", "LOTTERY_PRIZE", True)]
    calls = env.benefits.calls["IssueCoupon"]
    await env.engagement.ListDraws(pb.ListDrawsRequest(brand_id=env.brand_id,
                                                       activity_id=activity.activity_id))
    assert (await grant_row(env, result.grant.grant_id))["attempts"] == 1
    assert env.benefits.calls["IssueCoupon"] == calls


async def test_an_unreachable_prize_grant_is_retried_to_its_bound_then_refunded(
        env: Env, quick_retries: None) -> None:
    """Benefits does not answer the prize's issue: the draw answers WON with the grant
    PENDING; the loop retries with backoff up to the bound, then gives the cost back and the
    draw says NOT_DELIVERED with RETRIES_EXHAUSTED."""
    await env.members("acc_down")
    env.give_points("acc_down", 100)
    env.benefits.failures["IssueCoupon"] = Unavailable("benefits is down", reason="DOWN")
    activity = await env.activity(coupon_lottery(with_thanks=False))
    result = await draw(env, activity.activity_id, "acc_down")
    assert result.outcome == pb.DRAW_OUTCOME_WON
    assert result.grant.state == pb.GRANT_STATE_PENDING

    async def stopped() -> bool:
        return (await grant_row(env, result.grant.grant_id))["state"] == "failed"

    await eventually(stopped)
    row = await grant_row(env, result.grant.grant_id)
    assert row["attempts"] == QUICK.max_attempts
    assert str(row["last_error"]).startswith("RETRIES_EXHAUSTED: DOWN:")
    assert env.benefits.net_spent("acc_down") == 0
    again = await env.engagement.GetDraw(pb.GetDrawRequest(brand_id=env.brand_id,
                                                           draw_id=result.draw_id))
    assert again.draw.outcome == pb.DRAW_OUTCOME_NOT_DELIVERED
    assert again.draw.grant.cost_refunded


async def test_a_refund_that_cannot_be_made_is_a_visible_dead_letter(
        env: Env, quick_retries: None) -> None:
    """The prize is refused and the refund of the draw's cost is refused too: the grant ends
    failed with both reasons (REFUND_FAILED) and cost_refunded false, listed for the
    operator; nothing retries it forever."""
    await env.members("acc_stuck")
    env.give_points("acc_stuck", 100)
    env.benefits.failures["IssueCoupon"] = FailedPrecondition("closed",
                                                              reason="COUPON_NOT_AVAILABLE")
    env.benefits.failures["ReversePointsEntry"] = NotFound("no such entry",
                                                           reason="ENTRY_NOT_FOUND")
    activity = await env.activity(coupon_lottery(with_thanks=False))
    result = await draw(env, activity.activity_id, "acc_stuck")
    assert result.outcome == pb.DRAW_OUTCOME_NOT_DELIVERED
    assert not result.grant.cost_refunded
    assert "REFUND_FAILED: ENTRY_NOT_FOUND" in result.grant.failure_reason
    [dead] = await failed_grants(env)
    assert dead.grant_id == result.grant.grant_id and not dead.cost_refunded
    assert env.benefits.calls["ReversePointsEntry"] == 1


async def test_a_draw_whose_spend_never_answers_is_bounded_then_compensated(
        env: Env, quick_retries: None) -> None:
    """The spend is applied but its answer never comes: the draw answers DRAW_IN_PROGRESS,
    recovery retries up to the bound, then compensates (the same request id finds the entry,
    which is reversed): the member paid nothing and the retry of the draw says why."""
    await env.members("acc_lost")
    env.give_points("acc_lost", 100)
    activity = await env.activity(coupon_lottery())
    env.benefits.lose_spend_answers = 10_000
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await draw(env, activity.activity_id, "acc_lost", request_id="lost-1")
    assert remote_error(caught.value).reason == "DRAW_IN_PROGRESS"

    async def compensating() -> bool:
        state = await env.db.fetchval("SELECT state FROM draw_sagas WHERE request_id = 'lost-1'")
        return state in ("compensating", "compensated")

    await eventually(compensating)
    env.benefits.lose_spend_answers = 0

    async def compensated() -> bool:
        state = await env.db.fetchval("SELECT state FROM draw_sagas WHERE request_id = 'lost-1'")
        return state == "compensated"

    await eventually(compensated)
    assert env.benefits.net_spent("acc_lost") == 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await draw(env, activity.activity_id, "acc_lost", request_id="lost-1")
    assert remote_error(caught.value).reason == "RETRIES_EXHAUSTED"


async def test_a_compensation_that_cannot_be_made_stops_as_a_dead_letter(
        env: Env, quick_retries: None) -> None:
    """Benefits stays down through the spend and the compensation: after both bounds the
    draw is 'dead_letter' with REFUND_FAILED, listed by GetLotteryStatus, and no longer
    retried."""
    await env.members("acc_dl")
    env.give_points("acc_dl", 100)
    activity = await env.activity(coupon_lottery())
    env.benefits.failures["SpendPoints"] = Unavailable("benefits is down", reason="DOWN")
    env.benefits.failures["ReversePointsEntry"] = Unavailable("down", reason="DOWN")
    with pytest.raises(grpc.aio.AioRpcError):
        await draw(env, activity.activity_id, "acc_dl", request_id="dl-1")

    async def dead() -> bool:
        state = await env.db.fetchval("SELECT state FROM draw_sagas WHERE request_id = 'dl-1'")
        return state == "dead_letter"

    await eventually(dead, attempts=400)
    status = await env.engagement.GetLotteryStatus(pb.GetLotteryStatusRequest(
        brand_id=env.brand_id, activity_id=activity.activity_id))
    [letter] = status.dead_letter_draws
    assert letter.failure_reason.startswith("REFUND_FAILED: RETRIES_EXHAUSTED")
    assert env.benefits.net_spent("acc_dl") == 0  # no spend was ever applied
    calls = env.benefits.calls["SpendPoints"]
    await usecases_recover(env)
    assert env.benefits.calls["SpendPoints"] == calls
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await draw(env, activity.activity_id, "acc_dl", request_id="dl-1")
    assert remote_error(caught.value).reason == "REFUND_FAILED"


async def usecases_recover(env: Env) -> None:
    """Give the recovery loop a few passes."""
    passes = 0

    async def three_passes() -> bool:
        nonlocal passes
        passes += 1
        return passes > 6

    await eventually(three_passes, delay=0.1)


# Every reward saga owes its reward through one grant step: a table of them, each failing
# permanently (stopped at once) and transiently (stopped at the bound), none refunding a cost
# it did not take.
REWARD_SAGAS = ["SIGN_IN_REWARD", "VOTE_GIFT", "QUIZ_REWARD", "INVITE_INVITER_REWARD",
                "INVITE_INVITEE_REWARD", "KOI_PRIZE"]


@pytest.mark.parametrize("reason_code", REWARD_SAGAS)
@pytest.mark.parametrize("kind", ["permanent", "transient"])
async def test_every_reward_saga_stops_visibly(env: Env, quick_retries: None, reason_code: str,
                                               kind: str) -> None:
    """A reward owed by any activity whose coupon cannot be issued ends 'failed' with the
    reason (permanent: after one attempt; transient: RETRIES_EXHAUSTED after the bound),
    keeps the points already granted, and is listed for the operator."""
    env.benefits.failures["IssueCoupon"] = (
        FailedPrecondition("out", reason="COUPON_OUT_OF_STOCK") if kind == "permanent"
        else Unavailable("down", reason="DOWN"))
    grant_id = f"g_{reason_code.lower()}_{kind}"
    await env.db.execute(
        "INSERT INTO reward_grants (grant_id, brand_id, account_id, points, "
        "coupon_template_id, reason_code) VALUES ($1, $2, 'acc_r', 5, 'tpl_x', $3)",
        grant_id, env.brand_id, reason_code)

    async def stopped() -> bool:
        return (await grant_row(env, grant_id))["state"] == "failed"

    await eventually(stopped)
    row = await grant_row(env, grant_id)
    if kind == "permanent":
        assert row["attempts"] == 1
        assert str(row["last_error"]).startswith("COUPON_OUT_OF_STOCK:")
    else:
        assert row["attempts"] == QUICK.max_attempts
        assert str(row["last_error"]).startswith("RETRIES_EXHAUSTED: DOWN:")
    assert row["points_entry_id"] and row["refunded_entry_id"] == ""
    assert env.balance("acc_r") == 5  # the points part was delivered, once
    [listed] = await failed_grants(env)
    assert (listed.grant_id, listed.reason_code, listed.state) == (
        grant_id, reason_code, pb.GRANT_STATE_FAILED)


async def test_a_vote_gift_that_cannot_be_given_is_told_in_the_answer(env: Env) -> None:
    """The vote counts; its gift refused for good is answered FAILED with the reason."""
    await env.members("acc_voter")
    env.benefits.failures["IssueCoupon"] = FailedPrecondition("gone",
                                                              reason="COUPON_NOT_AVAILABLE")
    activity = await env.activity({"vote": {
        "options": [{"option_id": "red", "label": "Red"}, {"option_id": "blue", "label": "B"}],
        "votes_per_day": 1, "gift": {"coupon_template_id": "tpl_gift"}}})
    reply = await env.engagement.CastVote(pb.CastVoteRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activity.activity_id,
        account_id="acc_voter", option_id="red"))
    assert reply.gift.state == pb.GRANT_STATE_FAILED
    assert reply.gift.failure_reason.startswith("COUPON_NOT_AVAILABLE:")
    assert [t.votes for t in reply.tallies if t.option_id == "red"] == [1]



async def test_a_member_reads_their_rewards_with_the_truth_about_each(env: Env) -> None:
    """ListMemberRewardGrants shows a member their own rewards, newest first and paged: the
    undelivered one with its reason; another member's list is theirs alone."""
    await env.members("acc_mine", "acc_other")
    env.benefits.failures["IssueCoupon"] = FailedPrecondition("gone",
                                                              reason="COUPON_NOT_AVAILABLE")
    for number in range(3):
        activity = await env.activity({"vote": {
            "options": [{"option_id": "red", "label": "Red"},
                        {"option_id": "blue", "label": "B"}],
            "gift": {"coupon_template_id": "tpl_gift"}}}, title=f"Vote {number}")
        await env.engagement.CastVote(pb.CastVoteRequest(
            request_id=rid(), brand_id=env.brand_id, activity_id=activity.activity_id,
            account_id="acc_mine", option_id="red"))
    seen: list[pb.GrantedReward] = []
    token = ""
    while True:
        page = await env.engagement.ListMemberRewardGrants(pb.ListMemberRewardGrantsRequest(
            brand_id=env.brand_id, account_id="acc_mine", page_size=2, page_token=token))
        seen += page.grants
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 3 and len({g.grant_id for g in seen}) == 3
    assert all(g.state == pb.GRANT_STATE_FAILED for g in seen)
    assert all(g.failure_reason.startswith("COUPON_NOT_AVAILABLE:") for g in seen)
    other = await env.engagement.ListMemberRewardGrants(pb.ListMemberRewardGrantsRequest(
        brand_id=env.brand_id, account_id="acc_other"))
    assert list(other.grants) == []


async def test_concurrent_make_ups_of_one_day_pay_once(env: Env) -> None:
    """Make-ups of one missed day race: one records the day, the others are refused
    ALREADY_SIGNED_IN, and the member paid exactly once (a refused one does not give back the
    recorded one's payment, which is the same spend)."""
    await env.members("acc_twice")
    env.give_points("acc_twice", 100)
    activity = await env.activity({"sign_in": {
        "rewards": [{"day": 1, "reward": {"points": 5}}], "make_up_allowed": True,
        "make_up_cost_points": 30, "make_up_window_days": 3}})
    missed = "2026-11-24"  # the default clock reads 2026-11-25 12:00 in Shanghai
    results = await asyncio.gather(*(env.engagement.MakeUpSignIn(pb.MakeUpSignInRequest(
        request_id=rid(), brand_id=env.brand_id, activity_id=activity.activity_id,
        account_id="acc_twice", local_date=missed)) for _ in range(5)),
        return_exceptions=True)
    recorded = [r for r in results if isinstance(r, pb.MakeUpSignInResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(recorded) == 1 and len(refused) == 4
    assert {remote_error(r).reason for r in refused} == {"ALREADY_SIGNED_IN"}
    assert env.benefits.net_spent("acc_twice") == 30
    assert await env.db.fetchval(
        "SELECT count(*) FROM reward_grants WHERE state = 'compensating'") == 0

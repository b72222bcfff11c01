"""brandclub_lottery_stock_left follows the wins PostgreSQL records."""

from __future__ import annotations

from prometheus_client import REGISTRY

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from tests.services.engagement.harness import Env
from tests.services.engagement.lottery_helpers import COST, draw, lottery


async def test_each_win_lowers_the_stock_left_to_zero(env: Env) -> None:
    """A prize with stock 2 that (all but) always wins: after each draw the gauge shows what
    is left, 1 then 0; a third draw no longer wins and the gauge stays at 0."""
    await env.members("acc_stock")
    env.give_points("acc_stock", 10 * COST)
    spec = lottery(2)
    prizes = spec["lottery"]["prizes"]  # type: ignore[index]
    prizes[0]["weight"], prizes[1]["weight"] = 999_999_999, 1  # a win, but for 1 in 10^9
    activity = await env.activity(spec)
    labels = {"activity_id": activity.activity_id, "prize_id": "gift"}
    left = []
    outcomes = []
    for _ in range(3):
        result = await draw(env, activity.activity_id, "acc_stock")
        outcomes.append(result.outcome)
        left.append(REGISTRY.get_sample_value("brandclub_lottery_stock_left", labels))
    assert outcomes[:2] == [pb.DRAW_OUTCOME_WON, pb.DRAW_OUTCOME_WON]
    assert outcomes[2] != pb.DRAW_OUTCOME_WON
    assert left == [1, 0, 0]

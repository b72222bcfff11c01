"""A lottery activity's spec and one draw, shared by the lottery tests."""

from __future__ import annotations

from brandclub.engagement.v1 import engagement_service_pb2 as pb
from tests.services.engagement.harness import Env, rid

COST = 10


def lottery(stock: int, *, total_limit: int = 0, daily_limit: int = 0,
            prize_weight: int = 50) -> dict[str, object]:
    return {"lottery": {"mode": "LOTTERY_MODE_INSTANT", "cost_points": COST,
                        "total_limit": total_limit, "daily_limit": daily_limit, "prizes": [
                            {"prize_id": "gift", "name": "Gift", "kind": "PRIZE_KIND_POINTS",
                             "weight": prize_weight, "stock": stock, "points": 100},
                            {"prize_id": "thanks", "name": "Thanks", "kind": "PRIZE_KIND_THANKS",
                             "weight": 100 - prize_weight}]}}


async def draw(env: Env, activity_id: str, account: str,
               request_id: str | None = None) -> pb.Draw:
    reply = await env.engagement.DrawLottery(pb.DrawLotteryRequest(
        request_id=request_id or rid(), brand_id=env.brand_id, activity_id=activity_id,
        account_id=account))
    return reply.draw

"""brandclub_points_issued_total and brandclub_points_redeemed_total follow the ledger."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from prometheus_client import REGISTRY

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from tests.services.benefits.conftest import Benefits, brand, rid


def points(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_points_issued_and_redeemed_count_what_the_ledger_applied(
        benefits: Benefits) -> None:
    """Grants add their amounts, a repeated request_id counts once, a spend adds its amount;
    a refused spend counts nothing."""
    b = brand()
    issued = points("brandclub_points_issued_total")
    redeemed = points("brandclub_points_redeemed_total")
    await benefits.grant(b, "acc", 100)
    repeated = pb.GrantPointsRequest(request_id=rid(), brand_id=b, account_id="acc", amount=40,
                                     reason_code="ISV", source=pb.POINTS_SOURCE_ISV_APP)
    await asyncio.gather(benefits.api.GrantPoints(repeated), benefits.api.GrantPoints(repeated))
    assert points("brandclub_points_issued_total") == issued + 140
    await benefits.api.SpendPoints(pb.SpendPointsRequest(
        request_id=rid(), brand_id=b, account_id="acc", amount=30, reason_code="LOTTERY",
        source=pb.POINTS_SOURCE_ACTIVITY))
    with pytest.raises(grpc.aio.AioRpcError):
        await benefits.api.SpendPoints(pb.SpendPointsRequest(
            request_id=rid(), brand_id=b, account_id="acc", amount=10_000,
            reason_code="LOTTERY", source=pb.POINTS_SOURCE_ACTIVITY))
    assert points("brandclub_points_redeemed_total") == redeemed + 30

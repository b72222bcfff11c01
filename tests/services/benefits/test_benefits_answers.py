"""Every answer that reports a balance after a write reports the true balance, the one
GetPointsBalance reads right after, even when the write also paid off a shortfall."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.message import Message

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from tests.services.benefits.conftest import Benefits, brand, rid

BALANCE_FIELDS = ("available_points", "pending_points")


async def with_shortfall(benefits: Benefits, brand_id: str, account: str) -> str:
    """An account owing 95 points with 0 available; returns the id of its 95-point spend.
    (Grant 100, spend 95, reverse the grant: only 5 can be taken back, 95 are owed.)"""
    granted = await benefits.grant(brand_id, account, 100)
    spent = await benefits.api.SpendPoints(pb.SpendPointsRequest(
        request_id=rid(), brand_id=brand_id, account_id=account, amount=95,
        reason_code="TEST", source=pb.POINTS_SOURCE_OPERATOR))
    await benefits.api.ReversePointsEntry(pb.ReversePointsEntryRequest(
        request_id=rid(), brand_id=brand_id, entry_id=granted.entry.entry_id,
        reason_code="TEST"))
    balance = await benefits.balance(brand_id, account)
    assert (balance.available_points, balance.shortfall_points) == (0, 95)
    return spent.entry.entry_id


Write = Callable[[Benefits, str, str, str], Awaitable[Message]]


async def grant_now(benefits: Benefits, b: str, account: str, spend_id: str) -> Message:
    return await benefits.grant(b, account, 120)


async def grant_pending(benefits: Benefits, b: str, account: str, spend_id: str) -> Message:
    later = pb.GrantPointsRequest().available_time
    later.FromDatetime(datetime.now(UTC) + timedelta(days=7))
    return await benefits.grant(b, account, 40, available_time=later)


async def spend_after_grant(benefits: Benefits, b: str, account: str,
                            spend_id: str) -> Message:
    await benefits.grant(b, account, 120)
    return await benefits.api.SpendPoints(pb.SpendPointsRequest(
        request_id=rid(), brand_id=b, account_id=account, amount=10, reason_code="TEST",
        source=pb.POINTS_SOURCE_OPERATOR))


async def reverse_spend(benefits: Benefits, b: str, account: str, spend_id: str) -> Message:
    return await benefits.api.ReversePointsEntry(pb.ReversePointsEntryRequest(
        request_id=rid(), brand_id=b, entry_id=spend_id, reason_code="TEST"))


async def reverse_grant(benefits: Benefits, b: str, account: str, spend_id: str) -> Message:
    granted = await benefits.grant(b, account, 120)
    return await benefits.api.ReversePointsEntry(pb.ReversePointsEntryRequest(
        request_id=rid(), brand_id=b, entry_id=granted.entry.entry_id, reason_code="TEST"))


# (RPC, scenario, the available balance it must report)
CASES: list[tuple[str, Write, int]] = [
    ("GrantPoints", grant_now, 25),
    ("GrantPoints", grant_pending, 0),
    ("SpendPoints", spend_after_grant, 15),
    ("ReversePointsEntry", reverse_spend, 0),
    ("ReversePointsEntry", reverse_grant, 0),
]


def test_every_rpc_answering_a_balance_is_in_the_sweep() -> None:
    """Each RPC whose answer carries a balance is covered by the sweep below (a new one must be
    added to CASES)."""
    reporting = {
        method.name
        for service in pb.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if "available_points" in method.output_type.fields_by_name
        and method.name != "GetPointsBalance"}
    assert reporting == {rpc for rpc, _, _ in CASES}


@pytest.mark.parametrize(("rpc", "write", "available"), CASES,
                         ids=[f"{rpc}-{write.__name__}" for rpc, write, _ in CASES])
async def test_answer_reports_the_balance_get_points_balance_reads(
        benefits: Benefits, rpc: str, write: Write, available: int) -> None:
    """With a 95-point shortfall outstanding, the write's answer equals GetPointsBalance."""
    b = brand()
    spend_id = await with_shortfall(benefits, b, "acc")
    answer = await write(benefits, b, "acc", spend_id)
    assert answer.DESCRIPTOR.name == f"{rpc}Response"
    balance = await benefits.balance(b, "acc")
    assert balance.available_points == available
    for field in BALANCE_FIELDS:
        if field in answer.DESCRIPTOR.fields_by_name:
            assert getattr(answer, field) == getattr(balance, field), field
    assert await benefits.consistent(b)

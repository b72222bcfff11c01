"""The points ledger over gRPC and its jobs, on real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import cast

import grpc
import pytest

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from brandclub.events.v1 import benefits_events_pb2, envelope_pb2
from libs.grpc_client import remote_error
from libs.outbox import stream_name
from libs.protoconv import timestamp
from libs.redis import connect_redis
from services.benefits.domain.points import ExpiryMode, PointsPolicy, Source
from services.benefits.usecases import config, jobs
from services.benefits.usecases.ledger import Ledger
from tests.services.benefits.conftest import Benefits, brand, rid


async def test_grant_spend_and_paged_history(benefits: Benefits) -> None:
    """Grants and spends move the balance; history pages newest first."""
    b = brand()
    for amount in (100, 50, 25):
        await benefits.grant(b, "acc", amount)
    spent = await benefits.api.SpendPoints(pb.SpendPointsRequest(
        request_id=rid(), brand_id=b, account_id="acc", amount=30, reason_code="LOTTERY",
        source=pb.POINTS_SOURCE_ACTIVITY))
    assert spent.available_points == 145
    assert spent.entry.kind == pb.POINTS_ENTRY_KIND_SPEND and spent.entry.amount == -30
    first = await benefits.api.ListPointsEntries(pb.ListPointsEntriesRequest(
        brand_id=b, account_id="acc", page_size=3))
    assert [e.amount for e in first.entries] == [-30, 25, 50]
    second = await benefits.api.ListPointsEntries(pb.ListPointsEntriesRequest(
        brand_id=b, account_id="acc", page_size=3, page_token=first.next_page_token))
    assert [e.amount for e in second.entries] == [100]
    assert second.next_page_token == ""


async def test_same_key_applies_once_and_other_parameters_are_refused(
        benefits: Benefits) -> None:
    """A repeated request_id returns the first answer; with other parameters it is refused."""
    b = brand()
    request = pb.GrantPointsRequest(request_id="isv:app1:biz-42", brand_id=b, account_id="acc",
                                    amount=80, reason_code="ISV", source=pb.POINTS_SOURCE_ISV_APP)
    first, again = await asyncio.gather(benefits.api.GrantPoints(request),
                                        benefits.api.GrantPoints(request))
    assert first.entry.entry_id == again.entry.entry_id
    assert (await benefits.balance(b, "acc")).available_points == 80
    changed = pb.GrantPointsRequest()
    changed.CopyFrom(request)
    changed.amount = 81
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await benefits.api.GrantPoints(changed)
    assert remote_error(caught.value).reason == "REQUEST_ID_REUSED"
    assert (await benefits.balance(b, "acc")).available_points == 80


async def test_200_concurrent_spends_never_go_negative(benefits: Benefits) -> None:
    """200 concurrent spends of one account: exactly those that fit succeed, the balance ends
    at the remainder, never below zero, and equals the sum of the entries."""
    b = brand()
    await benefits.grant(b, "hot", 1000)

    async def spend(i: int) -> bool:
        try:
            await benefits.api.SpendPoints(pb.SpendPointsRequest(
                request_id=f"spend-{b}-{i}", brand_id=b, account_id="hot", amount=7,
                reason_code="DRAW", source=pb.POINTS_SOURCE_ACTIVITY), timeout=60)
            return True
        except grpc.aio.AioRpcError as error:
            assert remote_error(error).reason == "INSUFFICIENT_POINTS"
            return False

    results = await asyncio.gather(*(spend(i) for i in range(200)))
    assert sum(results) == 142
    assert (await benefits.balance(b, "hot")).available_points == 1000 - 142 * 7
    assert await benefits.consistent(b)


async def test_spend_takes_soonest_expiring_lot_and_expiry_job_writes_entries(
        benefits: Benefits) -> None:
    """Spends take the lot that expires first; the expiry job expires what is left of due lots
    once, and members see what expires when."""
    b = brand()
    t0 = datetime.now(UTC) + timedelta(days=1)  # in the future: the live expiry loop waits
    async with benefits.db.transaction() as conn:
        await config.save_policy(conn, PointsPolicy(b, ExpiryMode.ROLLING_DAYS, 10),
                                 datetime.now(UTC))
        ledger = Ledger(conn)
        await ledger.grant(b, "acc", 100, reason_code="LATE", source=Source.OPERATOR,
                           request_id="g1", now=t0 + timedelta(days=5))
        await ledger.grant(b, "acc", 40, reason_code="EARLY", source=Source.OPERATOR,
                           request_id="g2", now=t0)
        await ledger.spend(b, "acc", 30, reason_code="S", source=Source.MALL,
                           request_id="s1", now=t0 + timedelta(days=6))
    expiring = await benefits.api.ListExpiringPoints(pb.ListExpiringPointsRequest(
        brand_id=b, account_id="acc"))
    assert [e.points for e in expiring.expiring] == [10, 100]
    assert expiring.expiring[0].expire_time.ToDatetime(tzinfo=UTC) < \
        expiring.expiring[1].expire_time.ToDatetime(tzinfo=UTC)
    after_first = t0 + timedelta(days=12)
    assert await jobs.expire_once(benefits.db, after_first) == 1
    assert await jobs.expire_once(benefits.db, after_first) == 0
    balance = await benefits.balance(b, "acc")
    assert balance.available_points == 100
    history = await benefits.api.ListPointsEntries(pb.ListPointsEntriesRequest(
        brand_id=b, account_id="acc"))
    assert history.entries[0].kind == pb.POINTS_ENTRY_KIND_EXPIRE
    assert history.entries[0].amount == -10
    assert await benefits.consistent(b)


async def test_pending_points_become_available_after_release(benefits: Benefits) -> None:
    """Points granted with a future available time are pending until the release job."""
    b = brand()
    later = datetime.now(UTC) + timedelta(days=7)
    granted = await benefits.grant(b, "acc", 60, available_time=timestamp(later))
    assert (granted.available_points, granted.pending_points) == (0, 60)
    assert await jobs.release_once(benefits.db, datetime.now(UTC)) == 0
    assert await jobs.release_once(benefits.db, later + timedelta(seconds=1)) == 1
    assert await jobs.release_once(benefits.db, later + timedelta(seconds=2)) == 0
    balance = await benefits.balance(b, "acc")
    assert (balance.available_points, balance.pending_points) == (60, 0)
    assert await benefits.consistent(b)


async def test_reversal_of_a_spend_returns_points_once(benefits: Benefits) -> None:
    """Reversing a spend gives the points back; a second reversal is refused."""
    b = brand()
    await benefits.grant(b, "acc", 100)
    spent = await benefits.api.SpendPoints(pb.SpendPointsRequest(
        request_id=rid(), brand_id=b, account_id="acc", amount=70, reason_code="DRAW",
        source=pb.POINTS_SOURCE_ACTIVITY))
    back = await benefits.api.ReversePointsEntry(pb.ReversePointsEntryRequest(
        request_id=rid(), brand_id=b, entry_id=spent.entry.entry_id, reason_code="DRAW_FAILED"))
    assert back.available_points == 100
    assert back.entry.reverses_entry_id == spent.entry.entry_id
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await benefits.api.ReversePointsEntry(pb.ReversePointsEntryRequest(
            request_id=rid(), brand_id=b, entry_id=spent.entry.entry_id))
    assert remote_error(caught.value).reason == "ENTRY_ALREADY_REVERSED"
    assert await benefits.consistent(b)


async def test_insufficient_points_and_bad_input_are_refused(benefits: Benefits) -> None:
    """A spend above the balance and a non-positive amount are refused, naming the field."""
    b = brand()
    await benefits.grant(b, "acc", 10)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await benefits.api.SpendPoints(pb.SpendPointsRequest(
            request_id=rid(), brand_id=b, account_id="acc", amount=11,
            source=pb.POINTS_SOURCE_MALL))
    assert remote_error(caught.value).reason == "INSUFFICIENT_POINTS"
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await benefits.api.GrantPoints(pb.GrantPointsRequest(
            request_id=rid(), brand_id=b, account_id="acc", amount=0,
            source=pb.POINTS_SOURCE_OPERATOR))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert remote_error(bad.value).metadata["field"] == "amount"
    assert (await benefits.balance(b, "acc")).available_points == 10


async def test_check_detects_a_balance_that_differs_from_entries(benefits: Benefits) -> None:
    """The ledger check reports an account whose stored balance is not the sum of entries."""
    b = brand()
    await benefits.grant(b, "acc", 10)
    assert await benefits.consistent(b)
    await benefits.db.execute("UPDATE points_accounts SET available = available + 1 "
                              "WHERE brand_id = $1", b)
    check = await benefits.api.CheckPointsLedger(pb.CheckPointsLedgerRequest(brand_id=b))
    assert not check.consistent
    assert check.discrepancies[0].available_points == 11
    assert check.discrepancies[0].entries_available_sum == 10


async def test_every_change_publishes_balance_changed(benefits: Benefits,
                                                     redis_url: str) -> None:
    """Each ledger entry publishes PointsBalanceChanged with the new balance and a version."""
    b = brand()
    await benefits.grant(b, "acc", 10)
    await benefits.grant(b, "acc", 5)
    redis = connect_redis(redis_url)
    seen: list[tuple[int, int]] = []
    try:
        for _ in range(200):
            seen = []
            entries = cast(list[tuple[bytes, dict[bytes, bytes]]],
                           await redis.xrange(stream_name("benefits")))
            for _, fields in entries:
                envelope = envelope_pb2.EventEnvelope.FromString(fields[b"envelope"])
                changed = benefits_events_pb2.PointsBalanceChanged()
                if envelope.brand_id == b and envelope.payload.Unpack(changed):
                    seen.append((changed.balance_version, changed.available_points))
            if len(seen) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()
    assert seen == [(1, 10), (2, 15)]

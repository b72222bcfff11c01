"""The points mall: redemption all or nothing, idempotent, recoverable after a crash."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import grpc
import pytest

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from libs.grpc_client import remote_error
from libs.migrations import ROOT
from libs.sagas import RetryPolicy
from services.benefits.usecases import mall
from tests.services.benefits.conftest import Benefits, brand, rid


async def coupon_item(benefits: Benefits, b: str, price: int = 100, stock: int = 10,
                      limit: int = 0) -> pb.MallItem:
    template = await benefits.template(b, stock=1000, limit=100)
    return (await benefits.admin.CreateMallItem(pb.CreateMallItemRequest(
        request_id=rid(), item=pb.MallItem(
            brand_id=b, kind=pb.MALL_ITEM_KIND_COUPON, title="Coupon for points",
            price_points=price, stock_total=stock, per_member_limit=limit,
            coupon_template_id=template.template_id, state=pb.MALL_ITEM_STATE_ON_SALE)))).item


async def test_redeem_spends_takes_stock_and_issues_once(benefits: Benefits) -> None:
    """Redeeming spends the points, takes stock and issues the coupon; a repeat of the same
    request_id returns the same redemption and applies nothing more."""
    b = brand()
    item = await coupon_item(benefits, b, price=100, stock=5)
    await benefits.grant(b, "acc", 250)
    request = pb.RedeemMallItemRequest(request_id="r-1", brand_id=b, account_id="acc",
                                       item_id=item.item_id, quantity=2)
    first, again = await asyncio.gather(benefits.api.RedeemMallItem(request),
                                        benefits.api.RedeemMallItem(request))
    assert first.redemption.redemption_id == again.redemption.redemption_id
    assert first.redemption.state == pb.REDEMPTION_STATE_COMPLETED
    assert len(first.redemption.coupon_ids) == 2
    assert (await benefits.balance(b, "acc")).available_points == 50
    items = await benefits.api.ListMallItems(pb.ListMallItemsRequest(brand_id=b))
    assert items.items[0].stock_redeemed == 2
    other = pb.RedeemMallItemRequest()
    other.CopyFrom(request)
    other.quantity = 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await benefits.api.RedeemMallItem(other)
    assert remote_error(caught.value).reason == "REQUEST_ID_REUSED"


async def test_redeem_without_enough_points_takes_nothing(benefits: Benefits) -> None:
    """A redemption the member cannot afford is refused and takes no stock."""
    b = brand()
    item = await coupon_item(benefits, b, price=100)
    await benefits.grant(b, "acc", 99)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await benefits.api.RedeemMallItem(pb.RedeemMallItemRequest(
            request_id=rid(), brand_id=b, account_id="acc", item_id=item.item_id))
    assert remote_error(caught.value).reason == "INSUFFICIENT_POINTS"
    assert (await benefits.balance(b, "acc")).available_points == 99
    items = await benefits.api.ListMallItems(pb.ListMallItemsRequest(brand_id=b))
    assert items.items[0].stock_redeemed == 0


async def test_failed_step_after_spend_gives_the_points_back(benefits: Benefits) -> None:
    """When stock runs out between the spend and the issue, the points come back."""
    b = brand()
    item = await coupon_item(benefits, b, price=100, stock=1)
    await benefits.grant(b, "acc", 100)
    started = await mall.record(benefits.db, request_id="r-x", brand_id=b, account_id="acc",
                                item_id=item.item_id, quantity=1, shipping_address="",
                                level=0)
    spent = await mall.spend_step(benefits.db, b, started.redemption_id)
    assert spent.state.value == "points_spent"
    await benefits.db.execute("UPDATE mall_items SET stock_redeemed = stock_total "
                              "WHERE brand_id = $1", b)  # another redemption took the last one
    final = await mall.drive(benefits.db, b, started.redemption_id)
    assert (final.state.value, final.failure_reason) == ("failed", "OUT_OF_STOCK")
    assert final.refund_entry_id
    assert (await benefits.balance(b, "acc")).available_points == 100
    assert await benefits.consistent(b)


async def test_redemption_failing_after_the_spend_answers_an_error_not_success(
        benefits: Benefits) -> None:
    """A redemption whose last step fails after its spend (the stock went to someone else in
    between) is answered FAILED_PRECONDITION with the reason, the redemption and the refund,
    not a success that says FAILED; the points are back, the redemption is listed as failed,
    and a repeat of the request answers the same refusal."""
    b = brand()
    item = await coupon_item(benefits, b, price=40, stock=1)
    await benefits.grant(b, "acc", 100)
    started = await mall.record(benefits.db, request_id="r-late", brand_id=b, account_id="acc",
                                item_id=item.item_id, quantity=1, shipping_address="",
                                level=0)
    assert (await mall.spend_step(benefits.db, b, started.redemption_id)).state.value == \
        "points_spent"
    await benefits.db.execute("UPDATE mall_items SET stock_redeemed = stock_total "
                              "WHERE brand_id = $1", b)  # another redemption took the last one
    again = pb.RedeemMallItemRequest(request_id="r-late", brand_id=b, account_id="acc",
                                     item_id=item.item_id, quantity=1)
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await benefits.api.RedeemMallItem(again)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        error = remote_error(caught.value)
        assert error.reason == "OUT_OF_STOCK"
        assert error.metadata["redemption_id"] == started.redemption_id
        assert error.metadata["refund_entry_id"]
    listed = (await benefits.api.ListRedemptions(pb.ListRedemptionsRequest(
        brand_id=b, account_id="acc"))).redemptions
    assert [(r.redemption_id, r.state, r.refund_entry_id) for r in listed] == [
        (started.redemption_id, pb.REDEMPTION_STATE_FAILED, error.metadata["refund_entry_id"])]
    assert (await benefits.balance(b, "acc")).available_points == 100
    assert await benefits.consistent(b)


CRASH_MID_SAGA = textwrap.dedent("""
    import asyncio, os, signal, sys
    from libs.db import Database
    from services.benefits.usecases import mall

    async def main(url, brand_id, item_id, crash_after):
        db = await Database.connect(url, "benefits", min_size=1, max_size=2)
        started = await mall.record(db, request_id="crash-1", brand_id=brand_id,
                                    account_id="acc", item_id=item_id, quantity=1,
                                    shipping_address="", level=0)
        if crash_after == "spend":
            await mall.spend_step(db, brand_id, started.redemption_id)
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies mid-saga

    asyncio.run(main(*sys.argv[1:]))
""")


async def test_killed_process_mid_redemption_is_recovered(benefits: Benefits,
                                                          db_url: str) -> None:
    """A process killed right after the spend committed leaves the redemption POINTS_SPENT;
    recovery completes it, and a retry of the request returns it: no lost or double points."""
    b = brand()
    item = await coupon_item(benefits, b, price=70, stock=3)
    await benefits.grant(b, "acc", 100)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASH_MID_SAGA, db_url, b, item.item_id, "spend", cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, stderr = await process.communicate()
    assert process.returncode == -9, stderr.decode()
    assert (await benefits.balance(b, "acc")).available_points == 30
    state = await benefits.db.fetchval("SELECT state FROM redemptions WHERE brand_id = $1", b)
    assert state == "points_spent"
    assert await mall.recover(benefits.db, older_than_seconds=0) == 1
    assert await mall.recover(benefits.db, older_than_seconds=0) == 0
    retried = await benefits.api.RedeemMallItem(pb.RedeemMallItemRequest(
        request_id="crash-1", brand_id=b, account_id="acc", item_id=item.item_id, quantity=1))
    assert retried.redemption.state == pb.REDEMPTION_STATE_COMPLETED
    assert len(retried.redemption.coupon_ids) == 1
    assert (await benefits.balance(b, "acc")).available_points == 30
    assert await benefits.db.fetchval(
        "SELECT count(*) FROM points_entries WHERE brand_id = $1 AND kind = 'spend'", b) == 1
    assert await benefits.consistent(b)


async def test_killed_process_then_item_withdrawn_refunds(benefits: Benefits,
                                                          db_url: str) -> None:
    """When the item was withdrawn while a crashed redemption waited, recovery gives the points
    back instead."""
    b = brand()
    item = await coupon_item(benefits, b, price=70, stock=3)
    await benefits.grant(b, "acc", 100)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASH_MID_SAGA, db_url, b, item.item_id, "spend", cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    await process.communicate()
    assert process.returncode == -9
    item.state = pb.MALL_ITEM_STATE_OFF_SALE
    await benefits.admin.UpdateMallItem(pb.UpdateMallItemRequest(request_id=rid(), item=item))
    await mall.recover(benefits.db, older_than_seconds=0)
    redemption = (await benefits.api.ListRedemptions(pb.ListRedemptionsRequest(
        brand_id=b, account_id="acc"))).redemptions[0]
    assert redemption.state == pb.REDEMPTION_STATE_FAILED
    assert redemption.failure_reason == "MALL_ITEM_NOT_ON_SALE"
    assert (await benefits.balance(b, "acc")).available_points == 100
    assert await benefits.consistent(b)


async def test_physical_item_fulfilment_and_cancellation(benefits: Benefits) -> None:
    """A physical item awaits shipment; shipping needs a tracking number; cancelling before
    shipping returns the points and the stock."""
    b = brand()
    item = (await benefits.admin.CreateMallItem(pb.CreateMallItemRequest(
        request_id=rid(), item=pb.MallItem(
            brand_id=b, kind=pb.MALL_ITEM_KIND_PHYSICAL, title="Tote bag", price_points=300,
            stock_total=2, state=pb.MALL_ITEM_STATE_ON_SALE)))).item
    await benefits.grant(b, "acc", 700)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await benefits.api.RedeemMallItem(pb.RedeemMallItemRequest(
            request_id=rid(), brand_id=b, account_id="acc", item_id=item.item_id))
    assert remote_error(caught.value).metadata["field"] == "shipping_address"
    redeemed = []
    for _ in range(2):
        redeemed.append((await benefits.api.RedeemMallItem(pb.RedeemMallItemRequest(
            request_id=rid(), brand_id=b, account_id="acc", item_id=item.item_id,
            shipping_address="1 Road, Beijing"))).redemption)
    assert redeemed[0].fulfilment_status == pb.FULFILMENT_STATUS_AWAITING_SHIPMENT
    shipped = await benefits.admin.UpdateFulfilment(pb.UpdateFulfilmentRequest(
        request_id=rid(), brand_id=b, redemption_id=redeemed[0].redemption_id,
        status=pb.FULFILMENT_STATUS_SHIPPED, tracking_number="SF123"))
    assert shipped.redemption.tracking_number == "SF123"
    await benefits.admin.UpdateFulfilment(pb.UpdateFulfilmentRequest(
        request_id=rid(), brand_id=b, redemption_id=redeemed[1].redemption_id,
        status=pb.FULFILMENT_STATUS_CANCELLED))
    assert (await benefits.balance(b, "acc")).available_points == 400
    items = await benefits.admin.ListAllMallItems(pb.ListAllMallItemsRequest(brand_id=b))
    assert items.items[0].stock_redeemed == 1
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await benefits.admin.UpdateFulfilment(pb.UpdateFulfilmentRequest(
            request_id=rid(), brand_id=b, redemption_id=redeemed[0].redemption_id,
            status=pb.FULFILMENT_STATUS_CANCELLED))
    assert remote_error(late.value).reason == "FULFILMENT_TRANSITION_INVALID"
    assert await benefits.consistent(b)


async def test_killed_process_before_the_spend_is_recovered(benefits: Benefits,
                                                            db_url: str) -> None:
    """A process killed after recording the redemption but before spending leaves it STARTED;
    recovery spends exactly once and completes it."""
    b = brand()
    item = await coupon_item(benefits, b, price=70, stock=3)
    await benefits.grant(b, "acc", 100)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASH_MID_SAGA, db_url, b, item.item_id, "record", cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, stderr = await process.communicate()
    assert process.returncode == -9, stderr.decode()
    assert (await benefits.balance(b, "acc")).available_points == 100
    assert await mall.recover(benefits.db, older_than_seconds=0) == 1
    redemption = (await benefits.api.ListRedemptions(pb.ListRedemptionsRequest(
        brand_id=b))).redemptions[0]
    assert redemption.state == pb.REDEMPTION_STATE_COMPLETED
    assert (await benefits.balance(b, "acc")).available_points == 30
    assert await benefits.consistent(b)


async def test_what_the_last_step_would_refuse_is_refused_before_the_spend(
        benefits: Benefits) -> None:
    """The member's item limit and the item's coupon (its per-member limit, its stock) are
    checked before any point is spent: refused with the reason, balance and stock untouched,
    nothing recorded as failed."""
    b = brand()
    limited = await coupon_item(benefits, b, price=10, stock=10, limit=1)
    await benefits.grant(b, "acc", 100)
    await benefits.api.RedeemMallItem(pb.RedeemMallItemRequest(
        request_id=rid(), brand_id=b, account_id="acc", item_id=limited.item_id))
    template = await benefits.template(b, stock=1000, limit=1)
    held = (await benefits.admin.CreateMallItem(pb.CreateMallItemRequest(
        request_id=rid(), item=pb.MallItem(
            brand_id=b, kind=pb.MALL_ITEM_KIND_COUPON, title="One per member",
            price_points=10, stock_total=10, coupon_template_id=template.template_id,
            state=pb.MALL_ITEM_STATE_ON_SALE)))).item
    await benefits.api.RedeemMallItem(pb.RedeemMallItemRequest(
        request_id=rid(), brand_id=b, account_id="acc", item_id=held.item_id))
    for item_id, reason in ((limited.item_id, "MALL_LIMIT_REACHED"),
                            (held.item_id, "COUPON_LIMIT_REACHED")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await benefits.api.RedeemMallItem(pb.RedeemMallItemRequest(
                request_id=rid(), brand_id=b, account_id="acc", item_id=item_id))
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert remote_error(caught.value).reason == reason
    assert (await benefits.balance(b, "acc")).available_points == 80
    listed = (await benefits.api.ListRedemptions(pb.ListRedemptionsRequest(
        brand_id=b, account_id="acc"))).redemptions
    assert [r.state for r in listed] == [pb.REDEMPTION_STATE_COMPLETED] * 2
    assert await benefits.consistent(b)


@pytest.mark.parametrize("stuck_after", ["record", "spend"])
async def test_a_redemption_recovery_cannot_finish_is_bounded_then_refunded(
        benefits: Benefits, monkeypatch: pytest.MonkeyPatch, stuck_after: str) -> None:
    """A step that keeps failing with something other than a refusal (here the issue's
    connection drops every time) is retried by the recovery loop up to its bound, then the
    redemption ends 'failed' with RETRIES_EXHAUSTED and the points spent are given back."""
    monkeypatch.setattr(mall, "RECOVERY_RETRY", RetryPolicy(max_attempts=3, base_seconds=1.0,
                                                            cap_seconds=1.0))
    b = brand()
    item = await coupon_item(benefits, b, price=30)
    await benefits.grant(b, "acc", 100)
    started = await mall.record(benefits.db, request_id=rid(), brand_id=b, account_id="acc",
                                item_id=item.item_id, quantity=1, shipping_address="",
                                level=0)

    async def dropped(*args: object, **kwargs: object) -> None:
        raise ConnectionResetError("connection reset by peer")

    step = "spend_step" if stuck_after == "record" else "_take_and_issue"
    if stuck_after == "spend":
        await mall.spend_step(benefits.db, b, started.redemption_id)
    monkeypatch.setattr(mall, step, dropped)
    for _ in range(5):
        await mall.recover(benefits.db, older_than_seconds=-60)
    final = (await benefits.api.GetRedemption(pb.GetRedemptionRequest(
        brand_id=b, redemption_id=started.redemption_id))).redemption
    assert final.state == pb.REDEMPTION_STATE_FAILED
    assert final.failure_reason.startswith("RETRIES_EXHAUSTED: ConnectionResetError")
    assert bool(final.refund_entry_id) == (stuck_after == "spend")
    assert (await benefits.balance(b, "acc")).available_points == 100
    assert await benefits.consistent(b)

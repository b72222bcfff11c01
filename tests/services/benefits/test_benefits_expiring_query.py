"""ListPointsExpiringSoon: a brand's accounts with available points expiring within N days,
paged by account over one fixed window, checked against the lots read back from the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest

from brandclub.benefits.v1 import benefits_service_pb2 as pb
from libs.grpc_client import remote_error
from services.benefits.domain.points import ExpiryMode, PointsPolicy, Source
from services.benefits.usecases import config
from services.benefits.usecases.ledger import Ledger
from tests.services.benefits.conftest import Benefits, brand, rid


async def all_pages(benefits: Benefits, brand_id: str, within_days: int, size: int
                    ) -> tuple[list[pb.AccountPointsExpiring], int,
                               list[tuple[datetime, datetime]]]:
    accounts: list[pb.AccountPointsExpiring] = []
    windows = []
    token, pages = "", 0
    while True:
        page = await benefits.api.ListPointsExpiringSoon(pb.ListPointsExpiringSoonRequest(
            brand_id=brand_id, within_days=within_days, page_size=size, page_token=token))
        pages += 1
        accounts += page.accounts
        windows.append((page.window_start_time.ToDatetime(tzinfo=UTC),
                        page.window_end_time.ToDatetime(tzinfo=UTC)))
        token = page.next_page_token
        if not token:
            return accounts, pages, windows


async def test_points_expiring_soon_pages_the_right_accounts(benefits: Benefits) -> None:
    """Only accounts with unspent points expiring inside the window are listed, with the
    points inside it and the earliest expiry; spent, later, already-due, never-expiring lots
    and other brands' lots are not; pages share one window and cover each account once."""
    b, other = brand(), brand()
    now = datetime.now(UTC)
    async with benefits.db.transaction() as conn:
        await config.save_policy(conn, PointsPolicy(b, ExpiryMode.ROLLING_DAYS, 10,
                                                      time_zone="UTC"), now)
        await config.save_policy(conn, PointsPolicy(other, ExpiryMode.ROLLING_DAYS, 10,
                                                      time_zone="UTC"), now)
        ledger = Ledger(conn)

        async def grant(brand_id: str, account: str, amount: int, days_ago: float) -> None:
            await ledger.grant(brand_id, account, amount, reason_code="T",
                               source=Source.OPERATOR, request_id=rid(),
                               now=now - timedelta(days=days_ago))

        # Rolling 10 days: a lot granted d days ago expires at the start of the UTC day
        # (grant day + 11), i.e. within (10 - d) .. (11 - d) days from now.
        for i in range(23):  # enough accounts for several pages
            await grant(b, f"acc_bulk_{i:02d}", 10 + i, 8)
        await grant(b, "acc_mixed", 100, 8)      # inside
        await grant(b, "acc_mixed", 50, 1)       # outside: 9..10 days away
        await grant(b, "acc_two", 30, 7)         # inside
        await grant(b, "acc_two", 20, 6.5)       # inside
        await grant(b, "acc_spent", 40, 8)
        await ledger.spend(b, "acc_spent", 40, reason_code="S", source=Source.MALL,
                           request_id=rid(), now=now - timedelta(days=7))
        await grant(b, "acc_late", 100, 1)       # outside
        await grant(other, "acc_other_brand", 70, 8)
    async with benefits.db.transaction() as conn:
        await config.save_policy(conn, PointsPolicy(b, ExpiryMode.NEVER, 0), now)
        await Ledger(conn).grant(b, "acc_never", 80, reason_code="T", source=Source.OPERATOR,
                                 request_id=rid(), now=now - timedelta(days=30))

    accounts, pages, windows = await all_pages(benefits, b, 5, 10)
    listed = {a.account_id: (a.points, a.earliest_expire_time.ToDatetime(tzinfo=UTC))
              for a in accounts}
    assert len(listed) == len(accounts) == 25
    assert pages == 3 and len(set(windows)) == 1
    assert {"acc_mixed", "acc_two"} <= set(listed)
    assert not {"acc_spent", "acc_late", "acc_never", "acc_other_brand"} & set(listed)
    assert listed["acc_mixed"][0] == 100 and listed["acc_two"][0] == 50

    # Independently: the lots as stored, filtered to the window the pages answered for.
    start, end = windows[0]
    assert end - start == timedelta(days=5)
    async with benefits.db.connection() as conn:
        lots = await conn.fetch("SELECT account_id, remaining, expires_at FROM points_lots "
                                "WHERE brand_id = $1", b)
    expected: dict[str, tuple[int, datetime]] = {}
    for lot in lots:
        if lot["remaining"] > 0 and lot["expires_at"] and start < lot["expires_at"] <= end:
            points, earliest = expected.get(lot["account_id"], (0, lot["expires_at"]))
            expected[lot["account_id"]] = (points + lot["remaining"],
                                           min(earliest, lot["expires_at"]))
    assert listed == expected

    wider, _, _ = await all_pages(benefits, b, 12, 200)
    assert {"acc_mixed", "acc_late"} <= {a.account_id for a in wider}
    assert next(a.points for a in wider if a.account_id == "acc_mixed") == 150


async def test_points_expiring_soon_refuses_bad_input(benefits: Benefits) -> None:
    """A window outside 1..366 days, a missing brand and a forged page token are refused
    naming the field."""
    for request, field in (
            (pb.ListPointsExpiringSoonRequest(brand_id="brd_x", within_days=0), "within_days"),
            (pb.ListPointsExpiringSoonRequest(brand_id="brd_x", within_days=367),
             "within_days"),
            (pb.ListPointsExpiringSoonRequest(within_days=3), "brand_id"),
            (pb.ListPointsExpiringSoonRequest(brand_id="brd_x", within_days=3,
                                              page_token="bm90LWEtdG9rZW4="), "page_token")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await benefits.api.ListPointsExpiringSoon(request)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert remote_error(caught.value).metadata["field"] == field

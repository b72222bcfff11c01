"""The scale bench's generator (tools/bench_scale.py): every load statement runs against the
migrated schema, the distributions are the ones the bench claims, and the derived rows agree
with each other (order figures with orders, consents with card members, dormancy history with
dormant members)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from tools import bench_scale
from tools.bench_scale import Brand, load

MEMBERS = 4000


@pytest.fixture
async def loaded(db_url: str) -> AsyncIterator[tuple[asyncpg.Connection, str]]:
    conn = await asyncpg.connect(db_url)
    await conn.execute("INSERT INTO membership.brands (brand_id, display_name, mode, time_zone) "
                       "VALUES ('brd_scale', 'Scale', 'non_connected', 'Asia/Shanghai')")
    await conn.executemany(
        "INSERT INTO membership.shops (shop_id, brand_id, display_name) "
        "VALUES ($1, 'brd_scale', 'Shop')", [(f"shop_t_{s}",) for s in range(bench_scale.SHOPS)])
    seconds, rows = await load(db_url, Brand("brd_scale", "shop_t", "t", MEMBERS),
                               datetime.now(UTC))
    assert seconds > 0 and rows > MEMBERS
    yield conn, "brd_scale"
    await conn.close()


async def _share(conn: asyncpg.Connection, condition: str) -> float:
    return float(await conn.fetchval(
        f"SELECT avg(({condition})::int) FROM membership.members WHERE brand_id = 'brd_scale'"))


async def test_distributions_are_the_ones_claimed(
        loaded: tuple[asyncpg.Connection, str]) -> None:
    conn, _ = loaded
    assert abs(await _share(conn, "status = 'lv0'") - 0.70) < 0.03
    assert abs(await _share(conn, "status = 'card_member'") - 0.28) < 0.03
    assert abs(await _share(conn, "dormant") - 0.40 * 0.98) < 0.03
    assert abs(await _share(conn, "gender = 'female'") - 0.55) < 0.03
    levels = dict(await conn.fetch(
        "SELECT level, count(*) FROM membership.members "
        "WHERE brand_id = 'brd_scale' AND status = 'card_member' GROUP BY 1"))
    assert levels[1] > levels[2] > levels[3] > levels[4] > levels[5] > 0  # skewed low
    # Attributes are independent: female card members of tier >= 2 exist in proportion.
    both = await _share(conn, "gender = 'female' AND status = 'card_member' AND level >= 2")
    assert abs(both - 0.55 * 0.28 * 0.5) < 0.02


async def test_derived_rows_agree(loaded: tuple[asyncpg.Connection, str]) -> None:
    conn, brand = loaded
    mismatched = await conn.fetchval(
        """
        SELECT count(*) FROM membership.member_stats s
        FULL JOIN (SELECT account_id, count(*) AS n, sum(paid_cents) AS cents,
                          max(paid_at) AS last_at, min(paid_at) AS first_at
                   FROM membership.orders WHERE brand_id = $1 GROUP BY 1) o
               ON o.account_id = s.account_id
        WHERE s.brand_id = $1 AND (o.account_id IS NULL OR s.order_count <> o.n
              OR s.paid_cents <> o.cents OR s.last_order_at <> o.last_at
              OR s.first_order_at <> o.first_at)
        """, brand)
    assert mismatched == 0
    assert await conn.fetchval(
        "SELECT count(*) FROM membership.member_consents WHERE brand_id = $1", brand) == \
        await conn.fetchval("SELECT count(*) FROM membership.members WHERE brand_id = $1 "
                            "AND status <> 'lv0'", brand)
    assert await conn.fetchval(
        "SELECT count(*) FROM membership.member_dormancy_changes WHERE brand_id = $1",
        brand) == await conn.fetchval(
        "SELECT count(*) FROM membership.members WHERE brand_id = $1 AND dormant", brand)
    counted = await conn.fetchval(
        "SELECT sum(n) FROM membership.member_counts WHERE brand_id = $1", brand)
    assert counted == await conn.fetchval(
        "SELECT count(*) FROM membership.members WHERE brand_id = $1 AND status <> 'ended'",
        brand)


def test_members_below_the_small_brand_are_refused() -> None:
    with pytest.raises(SystemExit):
        bench_scale.main(["--members", "10"])

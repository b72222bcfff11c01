"""The overview's counters (migration 0105): after any write to members, whatever its shape
(bulk insert, single-row change, status/level/dormancy moves, ending, a no-op update, delete,
concurrent writers), the counters equal a count of the member rows, brand by brand."""

from __future__ import annotations

import asyncio
import random

import asyncpg

BRANDS = ("brand_a", "brand_b")
STATUSES = ("lv0", "card_member", "ended")

_COUNTED = """
    SELECT brand_id, status, level, dormant, sum(n)::bigint AS n
    FROM membership.member_counts GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0
"""
_ACTUAL = """
    SELECT brand_id, status, level, dormant, count(*) AS n FROM membership.members
    WHERE status <> 'ended' GROUP BY 1, 2, 3, 4
"""


async def _assert_counts_match(conn: asyncpg.Connection, after: str) -> None:
    counted = {tuple(r.values())[:4]: r["n"] for r in await conn.fetch(_COUNTED)}
    actual = {tuple(r.values())[:4]: r["n"] for r in await conn.fetch(_ACTUAL)}
    assert counted == actual, f"counters drifted after {after}"


async def _insert(conn: asyncpg.Connection, brand: str, first: int, last: int) -> None:
    await conn.execute(
        "INSERT INTO membership.members (member_id, brand_id, account_id, status, level, "
        "source_channel, member_since, dormant) "
        "SELECT $1 || '_m' || g, $1, $1 || '_a' || g, "
        "(ARRAY['lv0', 'card_member', 'ended'])[1 + g % 3], "
        "CASE WHEN g % 3 = 1 THEN g % 4 ELSE 0 END, 'test', now(), g % 5 = 0 "
        "FROM generate_series($2::int, $3::int) g", brand, first, last)


async def test_counters_follow_every_kind_of_write(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        for brand in BRANDS:
            await conn.execute(
                "INSERT INTO membership.brands (brand_id, display_name, mode, time_zone) "
                "VALUES ($1, $1, 'non_connected', 'UTC')", brand)
            await _insert(conn, brand, 1, 300)
        await _assert_counts_match(conn, "bulk inserts")
        await _insert(conn, "brand_a", 301, 301)
        await _assert_counts_match(conn, "a single-row insert")
        rng = random.Random(17)
        for step in range(40):
            brand, member = rng.choice(BRANDS), rng.randint(1, 300)
            change = rng.choice(("level", "dormant", "status", "noop", "bulk", "delete"))
            member_id = f"{brand}_m{member}"
            if change == "level":
                await conn.execute("UPDATE membership.members SET level = $2 "
                                   "WHERE member_id = $1", member_id, rng.randint(0, 5))
            elif change == "dormant":
                await conn.execute("UPDATE membership.members SET dormant = NOT dormant "
                                   "WHERE member_id = $1", member_id)
            elif change == "status":
                await conn.execute("UPDATE membership.members SET status = $2 "
                                   "WHERE member_id = $1", member_id, rng.choice(STATUSES))
            elif change == "noop":
                await conn.execute("UPDATE membership.members SET updated_at = now() "
                                   "WHERE brand_id = $1", brand)
            elif change == "bulk":
                await conn.execute("UPDATE membership.members SET level = level + 1 "
                                   "WHERE brand_id = $1 AND status = 'card_member' "
                                   "AND level < $2", brand, rng.randint(1, 4))
            else:
                await conn.execute("DELETE FROM membership.members WHERE member_id = $1",
                                   member_id)
            await _assert_counts_match(conn, f"step {step}: {change} of {member_id}")
    finally:
        await conn.close()


async def test_concurrent_writers_of_one_brand_neither_lose_counts_nor_deadlock(
        db_url: str) -> None:
    """Writers in separate transactions moving the same groups: every delta lands."""
    setup = await asyncpg.connect(db_url)
    try:
        await setup.execute(
            "INSERT INTO membership.brands (brand_id, display_name, mode, time_zone) "
            "VALUES ('brand_a', 'a', 'non_connected', 'UTC')")
        await _insert(setup, "brand_a", 1, 400)
        pool = await asyncpg.create_pool(db_url, min_size=4, max_size=4)
        try:
            async def writer(offset: int) -> None:
                for member in range(offset, 400, 4):
                    async with pool.acquire() as conn, conn.transaction():
                        await conn.execute(
                            "UPDATE membership.members SET dormant = NOT dormant, "
                            "level = level + 1 WHERE member_id = $1", f"brand_a_m{member}")

            await asyncio.wait_for(asyncio.gather(*(writer(i) for i in range(4))), 60)
        finally:
            await pool.close()
        await _assert_counts_match(setup, "concurrent writers")
    finally:
        await setup.close()

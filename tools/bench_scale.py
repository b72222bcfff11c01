"""`./dev bench --scale`: one brand of `--members` members (default 10,000,000), bulk-loaded
with realistic distributions, then the console's heavy reads beside hand-written SQL and the
hot paths beside the same at 10,000 members (issue 17). Not in CI: the 10M load takes minutes.

What is loaded, per brand, by set-based `INSERT ... SELECT generate_series` in chunks (one
transaction per chunk, one chunk per core at a time):
  - members: ~70% LV0 / ~28% card members / ~2% ended; card tiers 1-5 skewed low
    (50/25/13/8/4%); ~40% dormant; gender 55% female / 35% male / 10% unknown; 20% without
    a birthday; joined over three years from five source channels;
  - orders of ~45% of members (1-6 each over the last year) and their per-member figures
    (member_stats), consistent with each other;
  - the points projection (member_points) of ~40% of members, skewed low;
  - consent evidence of every card member; the dormancy history of every dormant member;
  - follows of five shops (each member follows one, a fifth of them a second).

Measured (each read repeated `--repeat` times; median and best reported):
  - PreviewSegment of three conditions and of a nested AND of three ORs (six conditions),
    each beside the same count written by hand in SQL;
  - GetMemberOverview and a 90-day GetDailyDashboard (first read computes and stores the
    closed days; the next reads them back), beside hand-written SQL;
  - GetMemberCard (first read from PostgreSQL, then cached) and GrantPoints, closed loop,
    in the big brand and in a brand of 10,000 members loaded the same way.
Prints a table and writes JSON (bench-results/scale-*.json).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from brandclub.benefits.v1 import benefits_service_pb2 as benefits_pb
from brandclub.benefits.v1 import benefits_service_pb2_grpc as benefits_grpc
from brandclub.membership.v1 import dashboard_service_pb2 as dashboard_pb
from brandclub.membership.v1 import dashboard_service_pb2_grpc as dashboard_grpc
from brandclub.membership.v1 import membership_service_pb2 as membership_pb
from brandclub.membership.v1 import membership_service_pb2_grpc as membership_grpc
from brandclub.membership.v1 import segment_service_pb2 as segment_pb
from brandclub.membership.v1 import segment_service_pb2_grpc as segment_grpc
from tools.bench_core import measure
from tools.bench_scenarios.segments import NESTED_RULE
from tools.stack import ROOT, Stack

SMALL_BRAND = 10_000
CHUNK = 200_000
SHOPS = 5

# One chunk of members [$2, $3] of brand $1, ids `mbr_<$4>_<n>` / `acc_<$4>_<n>`. Pseudo-random
# but reproducible attributes come from hashes of n with a different seed per attribute, so
# attributes are independent of each other and of n's order. (Multiplying n by a constant
# modulo 100 made every attribute a function of n mod 300: whole combinations never occurred.)
_MEMBERS = """
WITH m AS (
INSERT INTO membership.members (member_id, brand_id, account_id, status, level, source_channel,
    member_since, joined_at, level_since, ended_at, birthday, gender, dormant, has_phone,
    consent_terms_version, consent_purposes, consent_at, consent_channel, join_shop_id)
SELECT 'mbr_' || $4 || '_' || n, $1, 'acc_' || $4 || '_' || n, status,
       CASE WHEN status = 'lv0' THEN 0
            WHEN t < 50 THEN 1 WHEN t < 75 THEN 2 WHEN t < 88 THEN 3 WHEN t < 96 THEN 4
            ELSE 5 END,
       (ARRAY['follow', 'order', 'invite', 'live', 'crm'])[1 + h(n, 11) % 5],
       since, CASE WHEN status <> 'lv0' THEN since + (n % 30) * interval '1 day' END,
       CASE WHEN status <> 'lv0' THEN since + (n % 30) * interval '1 day' END,
       CASE WHEN status = 'ended' THEN since + interval '40 days' END,
       CASE WHEN h(n, 12) % 5 = 0 THEN NULL
            ELSE date '1960-01-01' + (h(n, 13) % 18000)::int END,
       CASE WHEN h(n, 14) % 20 < 11 THEN 'female'
            WHEN h(n, 14) % 20 < 18 THEN 'male' ELSE 'unknown' END,
       status <> 'ended' AND h(n, 15) % 10 < 4,
       status <> 'lv0',
       CASE WHEN status <> 'lv0' THEN 'v1' ELSE '' END,
       CASE WHEN status <> 'lv0' THEN ARRAY['marketing'] ELSE '{}'::text[] END,
       CASE WHEN status <> 'lv0' THEN since + (n % 30) * interval '1 day' END,
       CASE WHEN status <> 'lv0' THEN 'shop' ELSE '' END,
       $5 || '_' || (n % 5)
FROM (SELECT n, h(n, 16) % 100 AS t,
             CASE WHEN h(n, 17) % 100 < 70 THEN 'lv0'
                  WHEN h(n, 17) % 100 < 98 THEN 'card_member' ELSE 'ended' END AS status,
             $6::timestamptz - (h(n, 18) % 1095) * interval '1 day'
                 - (n % 86400) * interval '1 second' AS since
      FROM generate_series($2::bigint, $3::bigint) n) g
RETURNING member_id, brand_id, account_id, consent_at, dormant, member_since),
consents AS (
INSERT INTO membership.member_consents (member_id, brand_id, account_id, terms_version,
    purposes, channel, consented_at)
SELECT member_id, brand_id, account_id, 'v1', ARRAY['marketing'], 'shop', consent_at
FROM m WHERE consent_at IS NOT NULL)
INSERT INTO membership.member_dormancy_changes (brand_id, member_id, account_id, dormant,
    reason, changed_at)
SELECT brand_id, member_id, account_id, true, 'INACTIVE', member_since + interval '200 days'
FROM m WHERE dormant
"""
# Buyers: 1-6 orders each over the last year, every order of a member the same amount.
_BUYERS = """
    SELECT n, 'acc_' || $4 || '_' || n AS account_id, 1 + h(n, 19) % 6 AS orders,
           1000 + h(n, 20) % 60000 AS cents, h(n, 21) % 300 AS last_day
    FROM generate_series($2::bigint, $3::bigint) n WHERE h(n, 22) % 100 < 45
"""
_ORDERS = f"""
INSERT INTO membership.orders (brand_id, order_id, shop_id, account_id, paid_cents, paid_at)
SELECT $1, 'ord_' || $4 || '_' || b.n || '_' || k, $5 || '_' || (b.n % 5), b.account_id,
       b.cents, $6::timestamptz - (b.last_day + (k - 1) * 11) * interval '1 day'
FROM ({_BUYERS}) b CROSS JOIN LATERAL generate_series(1, b.orders) k
"""
_STATS = f"""
INSERT INTO membership.member_stats (brand_id, account_id, order_count, paid_cents,
    first_order_at, last_order_at)
SELECT $1, b.account_id, b.orders, b.orders * b.cents,
       $6::timestamptz - (b.last_day + (b.orders - 1) * 11) * interval '1 day',
       $6::timestamptz - b.last_day * interval '1 day'
FROM ({_BUYERS}) b
"""
_POINTS = """
INSERT INTO membership.member_points (brand_id, account_id, available, balance_version)
SELECT $1, 'acc_' || $4 || '_' || n, (h(n, 23) % 1000) * (h(n, 24) % 1000) / 50, 1
FROM generate_series($2::bigint, $3::bigint) n WHERE h(n, 25) % 10 < 4
"""
_FOLLOWS = """
INSERT INTO membership.follows (brand_id, shop_id, account_id, followed_at)
SELECT $1, $5 || '_' || s, 'acc_' || $4 || '_' || n, $6::timestamptz - (n % 900) * interval '1 day'
FROM generate_series($2::bigint, $3::bigint) n
CROSS JOIN LATERAL (SELECT n % 5 AS s UNION ALL
                    SELECT (n + 1) % 5 WHERE h(n, 26) % 5 = 0) f
"""


def _typed(sql: str) -> str:
    """Every statement takes the same six parameters; a CTE nobody reads declares their
    types, so a statement that leaves one unused still prepares. `h(n, seed)` in the text
    above is a non-negative hash of n, a different one per seed."""
    params = ("WITH params AS (SELECT $1::text, $2::bigint, $3::bigint, $4::text, $5::text, "
              "$6::timestamptz)")
    body = re.sub(r"\bh\(((?:b\.)?n), (\d+)\)", r"abs(hashint8extended(\1, \2))", sql.strip())
    return f"{params}, {body[len('WITH '):]}" if body.startswith("WITH ") else f"{params} {body}"


# Members with their consents and dormancy history (one statement), then the rest.
LOAD_STATEMENTS = tuple(_typed(sql) for sql in (_MEMBERS, _ORDERS, _STATS, _POINTS, _FOLLOWS))
LOADED_TABLES = ("members", "member_consents", "member_dormancy_changes", "orders",
                 "member_stats", "member_points", "follows")

# The bench's segments, written by hand against the same tables.
THREE_CONDITIONS = segment_pb.SegmentRule(group=segment_pb.RuleGroup(
    operator=segment_pb.RULE_GROUP_OPERATOR_AND, rules=[
        segment_pb.SegmentRule(condition=segment_pb.RuleCondition(
            field="tier", operator="gte", number=2)),
        segment_pb.SegmentRule(condition=segment_pb.RuleCondition(
            field="gender", operator="eq", values=["female"])),
        segment_pb.SegmentRule(condition=segment_pb.RuleCondition(
            field="order_amount", operator="gte", number=100_000)),
    ]))
THREE_BY_HAND = """
    SELECT count(*) FROM membership.members m
    JOIN membership.member_stats s ON s.brand_id = m.brand_id AND s.account_id = m.account_id
    WHERE m.brand_id = $1 AND m.status <> 'ended' AND NOT m.dormant
      AND m.level >= 2 AND m.gender = 'female' AND s.paid_cents >= 100000
"""
# NESTED_RULE: (tier >= 3 OR amount >= 200,000) AND (female OR age 25-40)
#              AND (order count >= 5 OR tier = 1); $2 / $3: the birthday bounds of age 25-40.
NESTED_BY_HAND = """
    SELECT count(*) FROM membership.members m
    LEFT JOIN membership.member_stats s
           ON s.brand_id = m.brand_id AND s.account_id = m.account_id
    WHERE m.brand_id = $1 AND m.status <> 'ended' AND NOT m.dormant
      AND (m.level >= 3 OR coalesce(s.paid_cents, 0) >= 200000)
      AND (m.gender = 'female' OR (m.birthday <= $2 AND m.birthday > $3))
      AND (coalesce(s.order_count, 0) >= 5 OR m.level = 1)
"""
OVERVIEW_BY_HAND = """
    SELECT status, level, dormant, count(*) FROM membership.members
    WHERE brand_id = $1 AND status <> 'ended' GROUP BY status, level, dormant
"""
DAILY_BY_HAND = """
    SELECT (member_since AT TIME ZONE 'Asia/Shanghai')::date, count(*),
           count(*) FILTER (WHERE joined_at IS NOT NULL)
    FROM membership.members WHERE brand_id = $1 AND member_since >= $2 AND member_since < $3
    GROUP BY 1
"""


@dataclass
class Timing:
    name: str
    runs: int
    median_ms: float
    best_ms: float
    answer: str = ""


@dataclass
class Throughput:
    name: str
    members: int
    operations: int
    errors: int
    throughput: float
    p50_ms: float
    p99_ms: float


@dataclass
class Brand:
    brand_id: str
    shop_prefix: str
    prefix: str
    members: int


def progress(label: str, done: int, total: int, started: float) -> None:
    """One line, rewritten in place: a bar, the count and the rate so far."""
    width = 30
    filled = int(width * done / total) if total else width
    rate = done / max(time.monotonic() - started, 1e-9)
    sys.stderr.write(f"\r{label:<22} [{'#' * filled}{'.' * (width - filled)}] "
                     f"{done:>12,}/{total:,} {rate:>10,.0f}/s")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


async def create_brand(stack: Stack, members: int, prefix: str) -> Brand:
    """The brand, its program and its shops through membership's rpcs (ids the services
    choose); the shops are `<prefix>_shop_<0..4>` too, so the bulk rows can name them."""
    async with stack.channel("membership") as channel:
        api = membership_grpc.MembershipServiceStub(channel)
        brand = (await api.CreateBrand(membership_pb.CreateBrandRequest(
            request_id=f"scale:brand:{prefix}", display_name=f"Scale {members:,}",
            mode=membership_pb.PROGRAM_MODE_NON_CONNECTED, time_zone="Asia/Shanghai"),
            timeout=30)).brand
    shop_prefix = f"shop_{prefix}"
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.executemany(
            "INSERT INTO membership.shops (shop_id, brand_id, display_name) "
            "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            [(f"{shop_prefix}_{s}", brand.brand_id, f"Shop {s}") for s in range(SHOPS)])
    finally:
        await conn.close()
    return Brand(brand.brand_id, shop_prefix, prefix, members)


async def load(database_url: str, brand: Brand, now: datetime) -> tuple[float, int]:
    """Bulk-load the brand's members in chunks, one chunk per core at a time; returns the
    seconds taken and the rows written (0 seconds when the brand was loaded before)."""
    conn = await asyncpg.connect(database_url)
    try:
        present = await conn.fetchval(
            "SELECT count(*) FROM membership.members WHERE brand_id = $1", brand.brand_id)
    finally:
        await conn.close()
    if present >= brand.members:
        return 0.0, 0
    chunks = [(start, min(start + CHUNK - 1, brand.members))
              for start in range(1, brand.members + 1, CHUNK)]
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=os.cpu_count() or 2,
                                      command_timeout=None)
    done = 0
    started = time.monotonic()
    label = f"loading {brand.members:,}"
    progress(label, 0, brand.members, started)

    async def load_chunk(first: int, last: int) -> None:
        nonlocal done
        async with pool.acquire() as chunk_conn, chunk_conn.transaction():
            for sql in LOAD_STATEMENTS:
                await chunk_conn.execute(sql, brand.brand_id, first, last, brand.prefix,
                                         brand.shop_prefix, now)
        done += last - first + 1
        progress(label, done, brand.members, started)

    try:
        lanes = os.cpu_count() or 2
        for index in range(0, len(chunks), lanes):
            await asyncio.gather(*(load_chunk(*chunk) for chunk in chunks[index:index + lanes]))
        seconds = time.monotonic() - started
        async with pool.acquire() as conn:
            rows = sum([await conn.fetchval(
                f"SELECT count(*) FROM membership.{table} WHERE brand_id = $1",
                brand.brand_id) for table in LOADED_TABLES])
            # What autovacuum does after a bulk load: statistics, and the visibility map that
            # index-only scans need. Timed apart from the load.
            for table in LOADED_TABLES:
                await conn.execute(f"VACUUM ANALYZE membership.{table}")
    finally:
        await pool.close()
    return seconds, rows


async def timed(name: str, call: Callable[[], Awaitable[Any]], repeat: int) -> Timing:
    """Median and best of `repeat` calls; a call that fails ends the series and is reported
    (a read that times out at scale is a finding, not a reason to lose the other figures)."""
    times: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            await call()
        except Exception as error:
            reason = error.details() if isinstance(error, grpc.aio.AioRpcError) else error
            return Timing(name, len(times), _median(times), round(min(times, default=0.0), 1),
                          f"failed after {time.perf_counter() - started:.1f} s: {reason}")
        times.append((time.perf_counter() - started) * 1000)
    return Timing(name, repeat, _median(times), round(min(times), 1))


def _median(times: list[float]) -> float:
    return round(statistics.median(times), 1) if times else 0.0


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


async def console_reads(stack: Stack, brand: Brand, repeat: int) -> list[Timing]:
    """Segment previews, the overview and a 90-day daily series, each beside its SQL."""
    size = _size(brand.members)
    today = datetime.now(UTC).date()
    async with stack.channel("membership") as channel:
        segments = segment_grpc.SegmentServiceStub(channel)
        dashboards = dashboard_grpc.DashboardServiceStub(channel)
        pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=2)
        try:
            three = segment_pb.PreviewSegmentRequest(brand_id=brand.brand_id,
                                                     rule=THREE_CONDITIONS)
            nested = segment_pb.PreviewSegmentRequest(brand_id=brand.brand_id, rule=NESTED_RULE)

            async def preview(request: segment_pb.PreviewSegmentRequest) -> int:
                return int((await segments.PreviewSegment(request, timeout=600)).member_count)

            end = today - timedelta(days=1)
            start = end - timedelta(days=89)
            daily = dashboard_pb.GetDailyDashboardRequest(
                brand_id=brand.brand_id, start_date=start.isoformat(),
                end_date=end.isoformat())
            bounds = (datetime.combine(start, datetime.min.time(), UTC),
                      datetime.combine(today, datetime.min.time(), UTC))
            results = [
                await timed(f"segment-3-conditions-{size}", lambda: preview(three), repeat),
                await timed(f"  hand-written SQL-{size}",
                            lambda: pool.fetchval(THREE_BY_HAND, brand.brand_id), repeat),
                await timed(f"segment-nested-6-{size}", lambda: preview(nested), repeat),
                await timed(f"  hand-written SQL-{size}", lambda: pool.fetchval(
                    NESTED_BY_HAND, brand.brand_id, _years_before(today, 25),
                    _years_before(today, 41)), repeat),
                await timed(f"overview-{size}", lambda: dashboards.GetMemberOverview(
                    dashboard_pb.GetMemberOverviewRequest(brand_id=brand.brand_id),
                    timeout=600), repeat),
                await timed(f"  hand-written SQL-{size}",
                            lambda: _rows(pool, OVERVIEW_BY_HAND, brand.brand_id), repeat),
                await timed(f"daily-90-days-first-{size}", lambda: _first_daily_read(
                    pool, dashboards, daily), 1),
                await timed(f"daily-90-days-{size}", lambda: dashboards.GetDailyDashboard(
                    daily, timeout=600), repeat),
                await timed(f"  hand-written SQL-{size}",
                            lambda: _rows(pool, DAILY_BY_HAND, brand.brand_id, *bounds), repeat),
            ]
        finally:
            await pool.close()
    return results


async def _first_daily_read(pool: asyncpg.Pool, dashboards: dashboard_grpc.DashboardServiceStub,
                            request: dashboard_pb.GetDailyDashboardRequest) -> None:
    """The series with no closed day stored yet (a kept --data-dir holds last run's days)."""
    await pool.execute("DELETE FROM membership.dashboard_daily WHERE brand_id = $1",
                       request.brand_id)
    await dashboards.GetDailyDashboard(request, timeout=600)


async def _rows(pool: asyncpg.Pool, sql: str, *args: Any) -> int:
    return len(await pool.fetch(sql, *args))


async def hot_paths(stack: Stack, brand: Brand, seconds: float,
                    concurrency: int) -> list[Throughput]:
    """GetMemberCard (the first read of each card from PostgreSQL, then cached) and
    GrantPoints over 10,000 of the brand's members."""
    size = _size(brand.members)
    accounts = [f"acc_{brand.prefix}_{n}" for n in range(1, min(brand.members, 10_000) + 1)]
    results = []
    async with stack.channel("membership") as channel, stack.channel("benefits") as bchannel:
        membership = membership_grpc.MembershipServiceStub(channel)
        benefits = benefits_grpc.BenefitsServiceStub(bchannel)
        results.append(await _one_pass(
            f"member-card-first-read-{size}", brand, len(accounts), concurrency,
            lambda n: _card(membership, brand.brand_id, accounts[n])))
        counter = itertools.count()

        async def read_card(_: int) -> None:
            await _card(membership, brand.brand_id, accounts[next(counter) % len(accounts)])

        results.append(await _throughput(f"member-card-cached-{size}", brand, read_card,
                                         seconds, concurrency))

        async def grant(_: int) -> None:
            n = next(counter)
            await benefits.GrantPoints(benefits_pb.GrantPointsRequest(
                request_id=f"scale:{brand.prefix}:{time.time_ns()}:{n}",
                brand_id=brand.brand_id, account_id=accounts[n % len(accounts)], amount=10,
                reason_code="BENCH", source=benefits_pb.POINTS_SOURCE_ACTIVITY), timeout=10)

        results.append(await _throughput(f"grant-points-{size}", brand, grant, seconds,
                                         concurrency))
    return results


async def _card(membership: membership_grpc.MembershipServiceStub, brand_id: str,
                account_id: str) -> None:
    try:
        await membership.GetMemberCard(membership_pb.GetMemberCardRequest(
            brand_id=brand_id, account_id=account_id), timeout=10)
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:  # ended members have no card: an answer
            raise


async def _throughput(name: str, brand: Brand, operation: Callable[[int], Awaitable[None]],
                      seconds: float, concurrency: int) -> Throughput:
    r = await measure(name, operation, concurrency=concurrency, seconds=seconds, warmup=0.5)
    return Throughput(name, brand.members, r.operations, r.errors, r.throughput, r.p50_ms,
                      r.p99_ms)


async def _one_pass(name: str, brand: Brand, count: int, concurrency: int,
                    operation: Callable[[int], Awaitable[None]]) -> Throughput:
    """Each of `count` operations once, `concurrency` at a time (first reads: no warm-up)."""
    latencies: list[float] = []
    errors = 0
    queue = iter(range(count))

    async def worker() -> None:
        nonlocal errors
        for n in queue:
            started = time.perf_counter()
            try:
                await operation(n)
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    done = len(latencies)
    return Throughput(name, brand.members, done, errors, round(done / elapsed, 1),
                      round(statistics.median(latencies) * 1000, 3) if done else 0.0,
                      round(latencies[min(done - 1, int(done * 0.99))] * 1000, 3)
                      if done else 0.0)


def _size(members: int) -> str:
    if members % 1_000_000 == 0:
        return f"{members // 1_000_000}M"
    return f"{members // 1000}k" if members % 1000 == 0 else str(members)


async def check_counts(stack: Stack, brand: Brand) -> None:
    """The service's previews answer what the hand-written SQL answers."""
    today = datetime.now(UTC).date()
    async with stack.channel("membership") as channel:
        segments = segment_grpc.SegmentServiceStub(channel)
        conn = await asyncpg.connect(stack.database_url)
        try:
            pairs = [
                (THREE_CONDITIONS, await conn.fetchval(THREE_BY_HAND, brand.brand_id)),
                (NESTED_RULE, await conn.fetchval(NESTED_BY_HAND, brand.brand_id,
                                                  _years_before(today, 25),
                                                  _years_before(today, 41))),
            ]
        finally:
            await conn.close()
        for rule, by_hand in pairs:
            counted = (await segments.PreviewSegment(segment_pb.PreviewSegmentRequest(
                brand_id=brand.brand_id, rule=rule), timeout=600)).member_count
            if counted != by_hand:
                raise RuntimeError(f"segment count {counted} != hand-written {by_hand}")


async def run(options: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="brandclub-scale-") as scratch:
        data_dir = options.data_dir or Path(scratch)
        stack = Stack.on_free_ports(data_dir, log_dir=data_dir / "logs",
                                    extra_env={"LOG_LEVEL": "warning"})
        try:
            await stack.start()
            assert stack.database_url is not None
            now = datetime.now(UTC)
            big = await create_brand(stack, options.members, f"big{options.members}")
            small = await create_brand(stack, SMALL_BRAND, f"small{SMALL_BRAND}")
            load_seconds, load_rows = await load(stack.database_url, big, now)
            await load(stack.database_url, small, now)
            await check_counts(stack, big)
            reads = await console_reads(stack, big, options.repeat)
            hot = [*await hot_paths(stack, small, options.seconds, options.concurrency),
                   *await hot_paths(stack, big, options.seconds, options.concurrency)]
        finally:
            stack.stop()
    return {"members": options.members, "load_seconds": round(load_seconds, 1),
            "load_rows": load_rows,
            "load_members_per_second": round(options.members / load_seconds)
            if load_seconds else None,
            "load_rows_per_second": round(load_rows / load_seconds) if load_seconds else None,
            "reads": [asdict(r) for r in reads], "hot_paths": [asdict(h) for h in hot]}


def report(result: dict[str, Any]) -> str:
    lines = [f"members {result['members']:,}: loaded in {result['load_seconds']} s, "
             f"{result['load_members_per_second'] or 0:,} members/s, "
             f"{result['load_rows'] or 0:,} rows ({result['load_rows_per_second'] or 0:,} "
             "rows/s)", "",
             f"{'read':<36} {'runs':>5} {'median ms':>10} {'best ms':>10}"]
    lines += [f"{r['name']:<36} {r['runs']:>5} {r['median_ms']:>10.1f} {r['best_ms']:>10.1f}"
              f" {r['answer']}" for r in result["reads"]]
    lines += ["", f"{'hot path':<36} {'ops':>8} {'err':>5} {'ops/s':>9} {'p50 ms':>8} "
                  f"{'p99 ms':>8}"]
    lines += [f"{h['name']:<36} {h['operations']:>8} {h['errors']:>5} {h['throughput']:>9.1f} "
              f"{h['p50_ms']:>8.2f} {h['p99_ms']:>8.2f}" for h in result["hot_paths"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="./dev bench --scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=10_000_000,
                        help="members of the big brand (default 10,000,000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each console read")
    parser.add_argument("--seconds", type=float, default=5.0, help="per hot-path window")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the stack's data here: the brand is loaded once and reused")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    options = parser.parse_args(argv)
    if options.members < SMALL_BRAND:
        parser.error(f"--members must be at least {SMALL_BRAND:,} (the small brand's size)")
    result = asyncio.run(run(options))
    print(report(result))
    path = options.json or ROOT / "bench-results" / (
        datetime.now(UTC).strftime("scale-%Y%m%dT%H%M%SZ.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"bench --scale: wrote {path}")


if __name__ == "__main__":
    main()

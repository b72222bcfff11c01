"""Redis Cluster: every multi-key command and Lua script keeps its keys in one slot.

Two proofs. A sweep finds every multi-key call site in libs/ and services/ (scripts, MGET,
MULTI pipelines, XREADGROUP, ...) and runs each site's keys, built by its own key functions
from ids that try to break the hash tag, through redis-py's slot function; a new call site
without an entry here fails the sweep. Then the scripts and multi-key calls run on a real
three-master Redis Cluster (the one `./dev test --redis-cluster` uses, or one started here).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from redis.crc import key_slot
from redis.exceptions import RedisClusterException

from brandclub.events.v1 import envelope_pb2, membership_events_pb2
from libs.db import Connection, Database
from libs.embedded import start_redis_cluster
from libs.eventbus import EventConsumer
from libs.outbox import OutboxRelay, add_event, stream_name
from libs.redis import Redis, connect_redis, is_cluster_url, key
from services.engagement.adapters.redis_lottery import LotteryCache, PrizeSlot
from services.gateway.adapters.limits import RateLimiter, ReplayStore, Window, sliding_window_keys
from services.membership.adapters.card_cache import CardCache, card_key, version_key

ROOT = Path(__file__).resolve().parents[2]

# Ids that try to open, close or empty a hash tag of their own.
HOSTILE_IDS = ["brd_1", "}", "{", "{}", "a}b{c", "%7D", ""]
WINDOWS = [Window("minute", 60, 3), Window("hour", 3600, 100), Window("day", 86400, 1000)]
TOPICS = ["membership", "benefits", "engagement", "messaging", "odd}topic{"]

# What makes a call site use several keys at once.
MULTI_KEY_CALL = re.compile(
    r"register_script\(|\.eval(?:sha)?\(|\.mget\(|\.mset(?:nx)?\(|pipeline\(transaction=True\)"
    r"|xreadgroup\(|\.(?:s|z)(?:inter|union|diff)(?:store)?\(|\.rename(?:nx)?\(|\.smove\("
    r"|\.lmove\(|\.blmove\(|rpoplpush\(|\.copy\(")


def _lottery_keys(brand: str, activity: str, account: str) -> list[str]:
    return LotteryCache._keys(brand or "b", activity or "a", account)


# Per call site (file): the groups of keys one of its commands or scripts uses together.
MULTI_KEY_SITES: dict[str, Callable[[str], list[list[str]]]] = {
    "services/engagement/adapters/redis_lottery.py":
        lambda i: [_lottery_keys(i, i + "x", i), _lottery_keys("b", i or "a", "")[:2]],
    "services/membership/adapters/card_cache.py":
        lambda i: [[card_key(i or "b", i or "a"), version_key(i or "b", i or "a")]],
    "services/gateway/adapters/limits.py":
        lambda i: [sliding_window_keys(i or "s", WINDOWS)],
    "libs/eventbus.py":
        lambda i: [[stream_name(t) for t in [*TOPICS, i or "t"]]],
}


def _multi_key_files() -> set[str]:
    found = set()
    for directory in ("libs", "services"):
        for path in (ROOT / directory).rglob("*.py"):
            if MULTI_KEY_CALL.search(path.read_text()):
                found.add(path.relative_to(ROOT).as_posix())
    return found


def test_every_multi_key_call_site_is_swept() -> None:
    """A file gaining a script or multi-key command needs an entry in MULTI_KEY_SITES."""
    assert _multi_key_files() == set(MULTI_KEY_SITES)


@pytest.mark.parametrize("site", sorted(MULTI_KEY_SITES))
@pytest.mark.parametrize("hostile_id", HOSTILE_IDS)
def test_keys_used_together_share_one_slot(site: str, hostile_id: str) -> None:
    for group in MULTI_KEY_SITES[site](hostile_id):
        slots = {key_slot(k.encode()) for k in group}
        assert len(slots) == 1, f"{site}: {group} span slots {slots}"


def test_a_key_names_its_family_with_the_tag_and_escapes_braces() -> None:
    assert key("eng", "brd_1", tag="act_1", rest=["stock"]) == "eng:brd_1:{act_1}:stock"
    assert key("p", "a{b", tag="x}y", rest=["r"]) == "p:a%7Bb:{x%7Dy}:r"
    assert key("p", tag="100%") != key("p", tag="100%25")  # the escape is reversible
    assert key("p", tag=("brd_1", "acc_1")) == "p:{brd_1:acc_1}"
    assert key("p", tag=("a:b", "c")) != key("p", tag=("a", "b:c"))


def test_a_key_without_a_tag_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty hash tag"):
        key("membership", "card", tag="")
    with pytest.raises(ValueError, match="non-empty hash tag"):
        key("membership", "card", tag=("brd_1", ""))


@pytest.fixture(scope="module")
def cluster_url(redis_server_url: str) -> Iterator[str]:
    """The session's Redis when it is a cluster; otherwise a cluster for this module."""
    if is_cluster_url(redis_server_url):
        yield redis_server_url
        return
    cluster = start_redis_cluster(Path(tempfile.mkdtemp(prefix="brandclub-test-cluster-")))
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
async def cluster(cluster_url: str) -> AsyncIterator[Redis]:
    client = connect_redis(cluster_url)
    await client.flushall()
    yield client
    await client.aclose()


async def test_the_cluster_refuses_keys_of_two_slots(cluster: Redis) -> None:
    """The control: were this a single Redis, the tests below could not fail."""
    assert key_slot(b"a") != key_slot(b"b")
    with pytest.raises(RedisClusterException, match="same key slot"):
        await cluster.mget("a", "b")


@pytest.mark.parametrize("brand, activity", [("brd_1", "act_1"), ("b}1", "{act}")])
async def test_lottery_scripts_run_on_the_cluster(cluster: Redis, brand: str,
                                                  activity: str) -> None:
    lottery = LotteryCache(cluster)
    prizes = [PrizeSlot("prz_1", 100, True)]
    await lottery.rebuild(brand_id=brand, activity_id=activity, remaining={"prz_1": 1},
                          ttl_seconds=600)

    async def draw(draw_id: str) -> tuple[str, str]:
        result = await lottery.draw(
            brand_id=brand, activity_id=activity, account_id="acc_1", draw_id=draw_id,
            local_date="2026-12-02", daily_limit=5, total_limit=5, random_value=0,
            prizes=prizes, member_counts=(0, 0), ttl_seconds=600)
        return result.status, result.won_prize_id

    assert await draw("d1") == ("OK", "prz_1")
    assert await draw("d1") == ("REPLAY", "prz_1")
    assert await draw("d2") == ("OK", "")  # the one unit is gone
    assert await lottery.stock(brand, activity) == {"prz_1": 0}
    await lottery.undo(brand_id=brand, activity_id=activity, account_id="acc_1", draw_id="d1",
                       local_date="2026-12-02")
    assert await lottery.stock(brand, activity) == {"prz_1": 1}
    await lottery.return_prize(brand_id=brand, activity_id=activity, prize_id="prz_1")
    assert await lottery.stock(brand, activity) == {"prz_1": 2}


async def test_card_cache_reads_and_writes_on_the_cluster(cluster: Redis) -> None:
    cards = CardCache(cluster)
    for brand in ("brd_1", "brd_2", "x}", "brd_*"):
        for account in ("acc_1", "acc_2", "a:b}%"):
            _, version = await cards.get(brand, account)
            await cards.put(brand, account, f"{brand}/{account}".encode(), version)
            assert (await cards.get(brand, account))[0] == f"{brand}/{account}".encode()
    await cards.forget("brd_1", ["acc_1"])
    assert (await cards.get("brd_1", "acc_1"))[0] is None
    await cards.forget_brand("brd_2")
    assert [(await cards.get("brd_2", a))[0] for a in ("acc_1", "a:b}%")] == [None, None]
    assert (await cards.get("brd_2", "acc_2"))[0] is None
    assert (await cards.get("brd_1", "acc_2"))[0] == b"brd_1/acc_2"
    await cards.forget_brand("brd_*")  # its own cards only, not every brd_ brand's
    assert (await cards.get("brd_*", "acc_1"))[0] is None
    assert (await cards.get("brd_1", "acc_2"))[0] == b"brd_1/acc_2"


async def test_rate_limits_and_replays_run_on_the_cluster(cluster: Redis) -> None:
    limiter = RateLimiter(cluster, clock=lambda: 1_700_000_000.0)
    for subject in ("app:k1", "sf:follow:dev:}{"):
        assert [await limiter.hit(subject, WINDOWS) for _ in range(3)] == [None] * 3
        assert await limiter.hit(subject, WINDOWS) == WINDOWS[0]
    replays = ReplayStore(cluster)
    assert await replays.claim("app_1", "sig") is None
    await replays.store("app_1", "sig", b"answer")
    assert await replays.claim("app_1", "sig") == b"answer"


async def test_the_event_bus_reads_several_topics_on_the_cluster(cluster: Redis,
                                                                 db_url: str) -> None:
    db = await Database.connect(db_url, "membership", min_size=1, max_size=4)
    handled: list[str] = []

    async def record(_conn: Connection, envelope: envelope_pb2.EventEnvelope) -> None:
        handled.append(envelope.event_id)

    try:
        sent = []
        for topic in TOPICS[:3]:
            async with db.transaction() as conn:
                sent.append((await add_event(
                    conn, topic=topic, brand_id="brd_1", producer="membership",
                    payload=membership_events_pb2.MemberFollowed(
                        brand_id="brd_1", shop_id="shp_1", account_id="acc_1"))).event_id)
        assert await OutboxRelay(db, cluster).publish_once() == 3
        consumer = EventConsumer(db=db, redis=cluster, group="cluster-readers",
                                 topics=TOPICS[:3], handler=record, consumer_name="c1",
                                 block_ms=10)
        await consumer.ensure_groups()
        assert await consumer.poll_once(block_ms=10) == 3
        assert sorted(handled) == sorted(sent)
    finally:
        await db.close()

"""Redis through redis-py's asyncio client: one Redis, or a Redis Cluster when the URL says so.

Keys that one command or Lua script uses together must live in one Redis Cluster slot; `key`
builds them (its docstring is the rule).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

Redis = aioredis.Redis

# Connections one process may open to Redis. A burst beyond it waits for a free connection
# (up to POOL_WAIT_SECONDS) instead of failing: redis-py's default pool refuses the 101st
# concurrent command with MaxConnectionsError, which a load of 64 callers in flight (each
# call doing a pipeline or a script, plus background loops) reached.
MAX_CONNECTIONS = 256
POOL_WAIT_SECONDS = 5.0

# A URL with this scheme (or its TLS twin) names any node of a Redis Cluster:
# redis+cluster://10.0.0.5:6379. The client discovers the other nodes from it.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

# Braces and the escape character itself are percent-encoded in key parts, so no id can open
# or close a hash tag of its own (Redis hashes what lies between the first "{" and the first
# "}" after it; an id holding "}" would shorten or empty the tag and scatter the family). In a
# tag of several parts ":" is encoded too, so ("a:b", "c") and ("a", "b:c") stay apart;
# urllib.parse.unquote reverses it.
_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D"})
_TAG_PART_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D", ":": "%3A"})


def key(*parts: str, tag: str | tuple[str, ...], rest: Iterable[str] = ()) -> str:
    """`part:part:{tag}:rest:rest`, the one way to name a Redis key; a tuple tag is one tag of
    several ids, `{brand:account}`.

    The rule (Redis Cluster): every key that one multi-key command (MGET, a MULTI pipeline,
    XREADGROUP over several streams) or one Lua script touches must hash to the same slot, so
    such keys carry the same hash tag, `{tag}`: the thing they are about together (a lottery's
    activity id, a member's card and its version, a rate-limit subject, the event bus), and
    nothing wider: a tag of a whole brand would put a ten-million-member brand's hot keys on
    one node. Keys only ever used alone still get a tag, of the entity they belong to.
    Everything after the tag (`rest`) may vary freely within the family.
    tests/libs/test_libs_redis_cluster.py runs every script and multi-key call site's keys
    through the slot function, and runs them on a real cluster.
    """
    if not tag or not all(tag):
        raise ValueError("a Redis key needs a non-empty hash tag (an empty {} tags nothing)")
    tag_text = (tag.translate(_ESCAPES) if isinstance(tag, str)
                else ":".join(part.translate(_TAG_PART_ESCAPES) for part in tag))
    escaped = [part.translate(_ESCAPES) for part in parts]
    return ":".join([*escaped, "{" + tag_text + "}", *rest])


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0] in CLUSTER_SCHEMES


def connect_redis(url: str, *, max_connections: int = MAX_CONNECTIONS) -> Redis:
    """A client with short timeouts so a dead Redis shows up as an error, not a hang, and a
    bounded pool that queues bursts; a Redis Cluster client for a redis+cluster:// URL."""
    if is_cluster_url(url):
        return _connect_cluster(url, max_connections=max_connections)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_SECONDS,
        socket_timeout=5.0, socket_connect_timeout=2.0, health_check_interval=15)
    return aioredis.Redis.from_pool(pool)


class _QueueingRedisCluster(RedisCluster):
    """redis-py's cluster client refuses a command with MaxConnectionsError once a node's
    connections are all busy, where connect_redis's single-Redis pool queues it: commands
    (scripts included) here wait for one of `max_connections` permits instead, up to
    POOL_WAIT_SECONDS, and each node's own limit is lifted so it never refuses."""

    def __init__(self, *args: Any, max_in_flight: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_flight = asyncio.Semaphore(max_in_flight)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        # The topology is read before any command runs: a fresh client's burst of first
        # commands otherwise failed with ConnectionError (146 of 150 concurrent BLPOPs).
        await self.initialize()
        try:
            async with asyncio.timeout(POOL_WAIT_SECONDS):
                await self._in_flight.acquire()
        except TimeoutError:
            raise RedisConnectionError(
                f"no Redis Cluster connection came free within {POOL_WAIT_SECONDS} s") from None
        try:
            return await super().execute_command(*args, **kwargs)
        finally:
            self._in_flight.release()


def _connect_cluster(url: str, *, max_connections: int) -> Redis:
    scheme, address = url.split("://", 1)
    cluster = _QueueingRedisCluster.from_url(
        f"{CLUSTER_SCHEMES[scheme]}://{address}", max_in_flight=max_connections,
        max_connections=2**31, socket_timeout=5.0, socket_connect_timeout=2.0,
        health_check_interval=15)
    # RedisCluster answers the commands, pipelines and scripts we use as Redis does (slot
    # routing aside), which tests/libs/test_libs_redis_cluster.py proves on a real cluster;
    # redis-py does not type it as a Redis, hence the cast.
    return cast(Redis, cluster)


async def ping_redis(client: Redis) -> None:
    """Raise unless Redis answers."""
    if not await client.ping():
        raise ConnectionError("redis did not answer PING")

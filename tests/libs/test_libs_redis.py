"""libs.redis: a burst of concurrent commands beyond the pool waits for a connection; replies
are parsed by hiredis (C) rather than redis-py's pure-Python parser."""

from __future__ import annotations

import asyncio

from redis._parsers import _AsyncHiredisParser
from redis.asyncio.cluster import RedisCluster

from libs.redis import connect_redis


async def test_a_burst_beyond_the_pool_waits_instead_of_failing(redis_url: str) -> None:
    """150 commands that each hold a connection for 0.2 s, on a pool of 50: all complete (the
    pool queues them), where redis-py's default pool raised MaxConnectionsError past its
    size."""
    client = connect_redis(redis_url, max_connections=50)
    try:
        results = await asyncio.gather(*(client.blpop([f"empty:{n}"], timeout=0.2)
                                         for n in range(150)))
        assert results == [None] * 150
        assert await client.ping()
    finally:
        await client.aclose()


async def test_replies_are_parsed_by_hiredis(redis_url: str) -> None:
    """redis-py picks hiredis when it is installed (a locked dependency); a connection of the
    pool connect_redis builds parses with it, so a missing or broken hiredis fails here."""
    client = connect_redis(redis_url, max_connections=2)
    try:
        assert await client.ping()
        if isinstance(client, RedisCluster):  # ./dev test --redis-cluster: a node's connection
            node = client.get_default_node()
            connection = node.acquire_connection()
            assert isinstance(connection._parser, _AsyncHiredisParser)
            node.release(connection)
            return
        connection = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            assert isinstance(connection._parser, _AsyncHiredisParser)
        finally:
            await client.connection_pool.release(connection)
    finally:
        await client.aclose()

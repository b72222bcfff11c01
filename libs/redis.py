"""Redis through redis-py's asyncio client."""

from __future__ import annotations

import redis.asyncio as aioredis

Redis = aioredis.Redis


def connect_redis(url: str) -> Redis:
    """A client with short timeouts so a dead Redis shows up as an error, not a hang."""
    return aioredis.Redis.from_url(
        url, socket_timeout=5.0, socket_connect_timeout=2.0, health_check_interval=15
    )


async def ping_redis(client: Redis) -> None:
    """Raise unless Redis answers."""
    if not await client.ping():
        raise ConnectionError("redis did not answer PING")

"""Redis through redis-py's asyncio client."""

from __future__ import annotations

import redis.asyncio as aioredis

Redis = aioredis.Redis

# Connections one process may open to Redis. A burst beyond it waits for a free connection
# (up to POOL_WAIT_SECONDS) instead of failing: redis-py's default pool refuses the 101st
# concurrent command with MaxConnectionsError, which a load of 64 callers in flight (each
# call doing a pipeline or a script, plus background loops) reached.
MAX_CONNECTIONS = 256
POOL_WAIT_SECONDS = 5.0


def connect_redis(url: str, *, max_connections: int = MAX_CONNECTIONS) -> Redis:
    """A client with short timeouts so a dead Redis shows up as an error, not a hang, and a
    bounded pool that queues bursts."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_SECONDS,
        socket_timeout=5.0, socket_connect_timeout=2.0, health_check_interval=15)
    return aioredis.Redis.from_pool(pool)


async def ping_redis(client: Redis) -> None:
    """Raise unless Redis answers."""
    if not await client.ping():
        raise ConnectionError("redis did not answer PING")

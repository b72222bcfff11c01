"""The member card cache in Redis: the hottest read of the system.

Keys are hash-tagged by member (`membership:card:{<brand>:<account>}`): a card and its version
share a Redis Cluster slot, and a big brand's cards spread over every node. A read is one MGET
of the card and its version; a miss reads
PostgreSQL and stores the card only if the version has not moved meanwhile (a Lua compare and
set), so a write that commits during the read can never be overwritten by the stale card.
Writers bump the version and delete the card after their transaction commits. Non-members are
cached too (the marker "-"), because most shop-page visitors are not members.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

from libs.logging import get_logger
from libs.redis import Redis, key

TTL_SECONDS = 300
VERSION_TTL_SECONDS = 86_400
NOT_A_MEMBER = b"-"
log = get_logger(__name__)

_SET_IF_VERSION = """
local current = redis.call('GET', KEYS[2])
if (current or '') == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
  return 1
end
return 0
"""


def _as_bytes(value: bytes | str | None) -> bytes | None:
    if value is None:
        return None
    return value.encode() if isinstance(value, str) else value


def card_key(brand_id: str, account_id: str) -> str:
    return key("membership", "card", tag=(brand_id, account_id))


def version_key(brand_id: str, account_id: str) -> str:
    return key("membership", "cardver", tag=(brand_id, account_id))


class CardCache:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._set_if_version = redis.register_script(_SET_IF_VERSION)

    async def get(self, brand_id: str, account_id: str) -> tuple[bytes | None, bytes]:
        """(cached value or None, version to pass to `put`). Redis trouble reads as a miss."""
        try:
            value, version = await self._redis.mget(card_key(brand_id, account_id),
                                                    version_key(brand_id, account_id))
        except Exception as exc:  # the cache fails open: the database answers
            log.warning("card_cache_unavailable", error=repr(exc))
            return None, b"?"
        return _as_bytes(value), _as_bytes(version) or b""

    async def put(self, brand_id: str, account_id: str, value: bytes, version: bytes) -> None:
        if version == b"?":
            return
        try:
            await self._set_if_version(
                keys=[card_key(brand_id, account_id), version_key(brand_id, account_id)],
                args=[value, version, TTL_SECONDS])
        except Exception as exc:
            log.warning("card_cache_unavailable", error=repr(exc))

    async def forget(self, brand_id: str, accounts: Iterable[str]) -> None:
        """After a commit that changed these cards. If Redis is unreachable the cards it holds
        are stale for at most TTL_SECONDS (it cannot serve them while unreachable either)."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for account_id in accounts:
                    pipe.incr(version_key(brand_id, account_id))
                    pipe.expire(version_key(brand_id, account_id), VERSION_TTL_SECONDS)
                    pipe.delete(card_key(brand_id, account_id))
                await pipe.execute()
        except Exception as exc:
            log.error("card_cache_invalidation_failed", brand_id=brand_id, error=repr(exc))

    async def forget_brand(self, brand_id: str) -> None:
        """After a brand-wide change (program, gift pack): every cached card of the brand (a
        SCAN of every cluster node: rare, and the price of spreading the cards)."""
        prefix = key("membership", "card", tag=(brand_id, "?")).removesuffix("?}")
        batch: list[str] = []
        pattern = re.sub(r"([\\*?\[\]])", r"\\\1", prefix) + "*}"  # the brand's own glob
        async for found in self._redis.scan_iter(match=pattern, count=1000):
            name = found.decode() if isinstance(found, bytes) else found
            batch.append(unquote(name[len(prefix):-1]))
            if len(batch) >= 500:
                await self.forget(brand_id, batch)
                batch = []
        if batch:
            await self.forget(brand_id, batch)

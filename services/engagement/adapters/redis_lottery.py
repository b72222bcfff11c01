"""The lottery's hot path in Redis: one atomic Lua script per draw.

Keys are hash-tagged by activity (one Redis Cluster slot per lottery) and carry the brand:
  eng:<brand>:{<activity>}:ready        set by reconciliation; missing after a restart or flush
  eng:<brand>:{<activity>}:stock        hash prize_id -> remaining stock
  eng:<brand>:{<activity>}:m:<account>  hash total, d:<local date> -> the member's draws
  eng:<brand>:{<activity>}:draws        hash draw_id -> "picked|won|random" (replays a draw)

Redis is a fast, disposable front: PostgreSQL holds every recorded draw and win, and
reconciliation rebuilds these keys from it (stock = stock - wins recorded there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from libs.redis import Redis, key

_DRAW = """
local prev = redis.call('HGET', KEYS[4], ARGV[1])
if prev then return {'REPLAY', prev} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'NOT_READY', ''} end
local n = tonumber(ARGV[6])
local base = 6 + 3 * n
local ttl = tonumber(ARGV[base + 3])
if redis.call('EXISTS', KEYS[3]) == 0 then
  if ARGV[base + 1] == '' then return {'LOAD_MEMBER', ''} end
  redis.call('HSET', KEYS[3], 'total', ARGV[base + 1], ARGV[2], ARGV[base + 2])
  redis.call('EXPIRE', KEYS[3], ttl)
end
local today = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
local total = tonumber(redis.call('HGET', KEYS[3], 'total') or '0')
local daily_limit = tonumber(ARGV[3])
local total_limit = tonumber(ARGV[4])
if daily_limit > 0 and today >= daily_limit then return {'DAILY_LIMIT', ''} end
if total_limit > 0 and total >= total_limit then return {'TOTAL_LIMIT', ''} end
local r = tonumber(ARGV[5])
local cumulative = 0
local picked = ''
local limited = '0'
for i = 0, n - 1 do
  cumulative = cumulative + tonumber(ARGV[8 + 3 * i])
  if r < cumulative then
    picked = ARGV[7 + 3 * i]
    limited = ARGV[9 + 3 * i]
    break
  end
end
local won = ''
if limited == '1' then
  local left = tonumber(redis.call('HGET', KEYS[2], picked) or '0')
  if left > 0 then
    redis.call('HINCRBY', KEYS[2], picked, -1)
    won = picked
  end
end
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
redis.call('HINCRBY', KEYS[3], 'total', 1)
local result = picked .. '|' .. won .. '|' .. ARGV[5]
redis.call('HSET', KEYS[4], ARGV[1], result)
redis.call('EXPIRE', KEYS[4], ttl)
return {'OK', result}
"""

# Undo a draw that PostgreSQL refused to record (so the member's counters and stock stay
# true); does nothing when the draw is not (or no longer) in Redis.
_UNDO = """
local prev = redis.call('HGET', KEYS[4], ARGV[1])
if not prev then return 0 end
local sep = string.find(prev, '|', 1, true)
local rest = string.sub(prev, sep + 1)
local won = string.sub(rest, 1, string.find(rest, '|', 1, true) - 1)
if won ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], won, 1)
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HINCRBY', KEYS[3], ARGV[2], -1)
  redis.call('HINCRBY', KEYS[3], 'total', -1)
end
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
"""

# Give one unit of a prize back to the stock (a win that could not be delivered); when the
# lottery is not ready, reconciliation rebuilds the stock from PostgreSQL anyway.
_RETURN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
return 1
"""


@dataclass(frozen=True)
class RedisDraw:
    status: str  # OK, REPLAY, NOT_READY, LOAD_MEMBER, DAILY_LIMIT, TOTAL_LIMIT
    picked_prize_id: str = ""
    won_prize_id: str = ""
    random_value: int = 0


@dataclass(frozen=True)
class PrizeSlot:
    prize_id: str
    weight: int
    limited: bool  # stock-limited (False for thanks-for-playing)


class LotteryCache:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._redis = redis
        self._draw = redis.register_script(_DRAW)
        self._undo = redis.register_script(_UNDO)
        self._return = redis.register_script(_RETURN)

    @staticmethod
    def _keys(brand_id: str, activity_id: str, account_id: str) -> list[str]:
        def lottery_key(*rest: str) -> str:
            return key("eng", brand_id, tag=activity_id, rest=rest)

        return [lottery_key("ready"), lottery_key("stock"), lottery_key("m", account_id),
                lottery_key("draws")]

    async def draw(self, *, brand_id: str, activity_id: str, account_id: str, draw_id: str,
                   local_date: str, daily_limit: int, total_limit: int, random_value: int,
                   prizes: Sequence[PrizeSlot], member_counts: tuple[int, int] | None,
                   ttl_seconds: int) -> RedisDraw:
        args: list[str | int] = [draw_id, f"d:{local_date}", daily_limit, total_limit,
                                 random_value, len(prizes)]
        for slot in prizes:
            args += [slot.prize_id, slot.weight, "1" if slot.limited else "0"]
        if member_counts is None:
            args += ["", "", ttl_seconds]
        else:
            args += [member_counts[0], member_counts[1], ttl_seconds]
        reply = await self._draw(keys=self._keys(brand_id, activity_id, account_id), args=args)
        status = _text(reply[0])
        if status not in ("OK", "REPLAY"):
            return RedisDraw(status)
        picked, won, random_text = _text(reply[1]).split("|")
        return RedisDraw(status, picked, won, int(float(random_text)))

    async def undo(self, *, brand_id: str, activity_id: str, account_id: str, draw_id: str,
                   local_date: str) -> None:
        await self._undo(keys=self._keys(brand_id, activity_id, account_id),
                         args=[draw_id, f"d:{local_date}"])

    async def return_prize(self, *, brand_id: str, activity_id: str, prize_id: str) -> None:
        await self._return(keys=self._keys(brand_id, activity_id, "")[:2], args=[prize_id])

    async def rebuild(self, *, brand_id: str, activity_id: str, remaining: Mapping[str, int],
                      ttl_seconds: int) -> None:
        """Replace the stock with PostgreSQL's remaining counts and mark the lottery ready."""
        ready, stock, _, _ = self._keys(brand_id, activity_id, "")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(stock)
            fields: dict[Any, Any] = dict(remaining)
            if fields:
                pipe.hset(stock, mapping=fields)
            pipe.expire(stock, ttl_seconds)
            pipe.set(ready, "1", ex=ttl_seconds)
            await pipe.execute()

    async def stock(self, brand_id: str, activity_id: str) -> dict[str, int]:
        _, stock, _, _ = self._keys(brand_id, activity_id, "")
        raw = await self._redis.hgetall(stock)
        return {_text(k): int(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

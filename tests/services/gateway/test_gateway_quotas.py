"""Quotas and rate limits are sliding windows in Redis (one atomic script): never more than the
limit in any window-long span, refused calls consume nothing, tested on the boundaries."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from libs.redis import Redis, connect_redis
from services.gateway.adapters.limits import RateLimiter, Window


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect_redis(redis_url)
    yield client
    await client.aclose()


MINUTE = Window("minute", 60, 3)


async def admitted(limiter: RateLimiter, windows: list[Window], count: int,
                   subject: str = "app:a") -> int:
    return sum([await limiter.hit(subject, windows) is None for _ in range(count)])


async def test_the_limit_holds_across_a_calendar_minute(redis: Redis) -> None:
    """Three calls at 59.5 s fill the window: at 60.5 s (a new calendar minute, where a fixed
    window let three more through) the next call is refused."""
    clock = Clock(1_000_059.5)
    limiter = RateLimiter(redis, clock)
    assert await admitted(limiter, [MINUTE], 3) == 3
    clock.now = 1_000_060.5
    assert await limiter.hit("app:a", [MINUTE]) == MINUTE


async def test_slots_free_up_on_the_window_boundary(redis: Redis) -> None:
    """Calls made in second 100 still count at 160.999 s and free up at 161 s (the window plus
    at most one one-second bucket)."""
    clock = Clock(2_000_100.0)
    limiter = RateLimiter(redis, clock)
    assert await admitted(limiter, [MINUTE], 4) == 3
    clock.now = 2_000_160.999
    assert await limiter.hit("app:a", [MINUTE]) == MINUTE
    clock.now = 2_000_161.0
    assert await admitted(limiter, [MINUTE], 4) == 3


async def test_refused_calls_consume_nothing(redis: Redis) -> None:
    """A client hammering a full window does not push its own recovery further out."""
    clock = Clock(3_000_000.0)
    limiter = RateLimiter(redis, clock)
    assert await admitted(limiter, [MINUTE], 3) == 3
    for second in range(1, 60):
        clock.now = 3_000_000.0 + second
        assert await admitted(limiter, [MINUTE], 20) == 0
    clock.now = 3_000_061.0
    assert await admitted(limiter, [MINUTE], 5) == 3


async def test_a_call_refused_by_one_window_counts_in_none(redis: Redis) -> None:
    """With a minute and an hour window, a call refused by the hour leaves the minute's count
    untouched (both are decided in one atomic step)."""
    clock = Clock(4_000_000.0)
    limiter = RateLimiter(redis, clock)
    hour = Window("hour", 3600, 4)
    assert await admitted(limiter, [MINUTE, hour], 3) == 3
    clock.now += 61
    assert await limiter.hit("app:a", [MINUTE, hour]) is None
    assert await limiter.hit("app:a", [MINUTE, hour]) == hour
    assert await limiter.hit("app:a", [MINUTE, hour]) == hour
    # Only the one admitted call is in the minute window: two more fit under a roomier hour.
    assert await admitted(limiter, [MINUTE, Window("hour", 3600, 100)], 5) == 2


async def test_no_span_of_the_window_ever_admits_more_than_the_limit(redis: Redis) -> None:
    """Random bursts over ten minutes: in every 60-second span ending at an admitted call there
    are at most `limit` admitted calls, and each subject is limited on its own."""
    rng = random.Random(11)
    clock = Clock(5_000_000.0)
    limiter = RateLimiter(redis, clock)
    window = Window("minute", 60, 7)
    times: dict[str, list[float]] = {"app:x": [], "app:y": []}
    while clock.now < 5_000_600.0:
        clock.now += rng.choice((0.01, 0.3, 2.0, 9.0))
        for subject in times:
            for _ in range(rng.randint(0, 4)):
                if await limiter.hit(subject, [window]) is None:
                    times[subject].append(clock.now)
    for subject, admitted_at in times.items():
        assert len(admitted_at) > 40, subject
        for moment in admitted_at:
            in_span = [t for t in admitted_at if moment - 60 < t <= moment]
            assert len(in_span) <= window.limit, (subject, moment)

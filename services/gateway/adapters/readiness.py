"""Readiness of the services behind the gateway, from their standard gRPC health.

Each upstream process is asked `grpc.health.v1.Health/Check` (overall status) over the
gateway's own channel to it, all at once and within one overall time limit, so a hung upstream
reads as not serving instead of hanging the probe. The answer is kept for `cache_seconds`, and
concurrent probes share one check: load balancers may probe often, upstreams see at most one
health call per process per period.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = "SERVING"
UNREACHABLE = "UNREACHABLE"


class UpstreamHealth:
    def __init__(self, channels: Mapping[str, grpc.aio.Channel], *, timeout_seconds: float = 1.0,
                 cache_seconds: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._stubs = {name: health_pb2_grpc.HealthStub(channel)
                       for name, channel in channels.items()}
        self._timeout = timeout_seconds
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._checked_at = float("-inf")
        self._last: dict[str, str] = {}
        self._running: asyncio.Task[dict[str, str]] | None = None

    async def statuses(self) -> dict[str, str]:
        """Each upstream's health (SERVING, NOT_SERVING, ..., UNREACHABLE), at most
        `cache_seconds` old."""
        if self._clock() - self._checked_at < self._cache_seconds:
            return self._last
        if self._running is None:
            self._running = asyncio.create_task(self._check())
        running = self._running
        try:
            return await asyncio.shield(running)
        finally:
            if running.done() and self._running is running:
                self._running = None

    async def ready(self) -> tuple[bool, dict[str, str]]:
        statuses = await self.statuses()
        return all(status == SERVING for status in statuses.values()), statuses

    async def _check(self) -> dict[str, str]:
        names = list(self._stubs)
        tasks = [asyncio.create_task(self._one(self._stubs[name])) for name in names]
        # One overall limit: whatever has not answered by then is UNREACHABLE.
        done, pending = await asyncio.wait(tasks, timeout=self._timeout)
        for task in pending:
            task.cancel()
        statuses = {name: task.result() if task in done else UNREACHABLE
                    for name, task in zip(names, tasks, strict=True)}
        self._last, self._checked_at = statuses, self._clock()
        return statuses

    async def _one(self, stub: health_pb2_grpc.HealthStub) -> str:
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""),
                                     timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            return UNREACHABLE if error.code() in (grpc.StatusCode.UNAVAILABLE,
                                                   grpc.StatusCode.DEADLINE_EXCEEDED) \
                else error.code().name
        except Exception:  # a closed channel, say: the probe answers, the upstream is not ready
            return UNREACHABLE
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

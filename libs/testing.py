"""Helpers for testing services built on libs: settings for a test database and in-process
servers on port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from libs.config import Settings, load_settings
from libs.service import Compose, RunningService, start_service


def service_settings(service: str, database_url: str, redis_url: str,
                  **overrides: str) -> Settings:
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "HEALTH_INTERVAL_SECONDS": "0.2", **overrides}
    return load_settings(service, env)


@asynccontextmanager
async def running_service(settings: Settings, compose: Compose) -> AsyncIterator[RunningService]:
    """Serve the composition on a free loopback port for the duration of the block."""
    service = await start_service(settings, compose, port=0, host="127.0.0.1")
    try:
        yield service
    finally:
        await service.stop(grace_seconds=0.2)

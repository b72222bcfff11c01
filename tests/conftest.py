"""Shared fixtures: a real PostgreSQL and Redis for the whole session.

Embedded servers are started unless TEST_DATABASE_URL / TEST_REDIS_URL point at external ones.
With --redis-cluster (`./dev test --redis-cluster`) the embedded Redis is a three-master Redis
Cluster instead, reached through libs.redis's cluster client.
Each test gets its own database, cloned from a template migrated once, and an empty Redis.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from libs.embedded import env_or_none, start_postgres, start_redis, start_redis_cluster
from libs.migrations import migrate, service_migrations
from libs.redis import connect_redis
from tools.migrate import SERVICES_WITH_DATA

TEMPLATE_DB = "brandclub_test_template"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of the PostgreSQL server's maintenance database."""
    external = env_or_none("TEST_DATABASE_URL")
    if external:
        yield external
        return
    # Not under pytest's basetemp: pytest prunes old basetemp directories, and a concurrent
    # session pruning ours would delete a live server's data directory and socket.
    root = Path(tempfile.mkdtemp(prefix="brandclub-test-pg-"))
    server = start_postgres(root / "data")
    try:
        yield server.url("postgres")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--redis-cluster", action="store_true",
                     help="run against an embedded three-master Redis Cluster")


@pytest.fixture(scope="session")
def redis_server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    external = env_or_none("TEST_REDIS_URL")
    if external:
        yield external
        return
    root = Path(tempfile.mkdtemp(prefix="brandclub-test-redis-"))
    server = (start_redis_cluster(root) if request.config.getoption("--redis-cluster")
              else start_redis(root, persist=False))
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def database_url(server_url: str, name: str) -> str:
    base, _, query = server_url.partition("?")
    base = base.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
async def template_database(postgres_server_url: str) -> str:
    """A database with every service's migrations applied, to clone per test."""
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        await admin.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(database_url(postgres_server_url, TEMPLATE_DB))
    try:
        for service in SERVICES_WITH_DATA:
            await migrate(conn, service, service_migrations(service))
    finally:
        await conn.close()
    return TEMPLATE_DB


@pytest.fixture
async def db_url(postgres_server_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    finally:
        await admin.close()
    yield database_url(postgres_server_url, name)
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def redis_url(redis_server_url: str) -> AsyncIterator[str]:
    """The shared Redis (every node of a cluster), emptied before the test."""
    client = connect_redis(redis_server_url)
    await client.flushall()
    await client.aclose()
    yield redis_server_url


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(autouse=True)
async def _fail_on_loop_errors() -> AsyncIterator[None]:
    """An exception nobody awaited in the event loop fails the test that caused it."""
    errors: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield
    loop.set_exception_handler(previous)
    assert not errors, f"unhandled event-loop errors: {errors}"

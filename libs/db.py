"""PostgreSQL through asyncpg: one pool per service, bound to the service's own schema."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlsplit

import asyncpg

Connection: TypeAlias = asyncpg.Connection
Record: TypeAlias = asyncpg.Record
PING_TIMEOUT_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 10.0


class DatabaseUnreachable(RuntimeError):
    """No session could be opened at a configured URL; the message names the variable, the
    host (never the password) and the reason, in one line."""


def describe_location(url: str) -> str:
    """`host:port/database` of a PostgreSQL URL, without credentials (a `host=` query
    parameter, as for a Unix socket directory, counts as the host)."""
    try:
        parts = urlsplit(url)
        query_host = parse_qs(parts.query).get("host", [""])[0]
        host = parts.hostname or query_host or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "an unparsable URL"
    database = parts.path.lstrip("/") or "(default database)"
    return f"{host}:{port}/{database}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running there?)"
    if isinstance(exc, socket.gaierror):
        return "unknown host name"
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_SECONDS:g} s"
    if isinstance(exc, FileNotFoundError):
        return "no PostgreSQL socket at that path"
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return detail


async def connect(url: str, *, variable: str = "DATABASE_URL", **kwargs: Any) -> Connection:
    """One session (migrations, tools); a failure to reach or log in is DatabaseUnreachable,
    one line naming `variable` and the host instead of a driver traceback."""
    try:
        return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS, **kwargs)
    except (OSError, TimeoutError, ValueError, asyncpg.PostgresError,
            asyncpg.InterfaceError) as exc:
        raise DatabaseUnreachable(
            f"{variable}: cannot connect to PostgreSQL at {describe_location(url)}: "
            f"{_reason(exc)}") from None


class _PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """Skips the reset query on release: one round trip saved per acquire.

    Nothing here leaves session state on a pooled connection (no session-level SET, advisory
    locks are transaction-scoped, LISTEN is undone by remove_listener), and asyncpg still rolls
    back an open transaction on release regardless of this query.
    """

    def get_reset_query(self) -> str:
        return ""


class Database:
    """A pool whose connections see only their service's schema (search_path)."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema

    @classmethod
    async def connect(cls, url: str, schema: str, *, min_size: int = 2,
                      max_size: int = 20) -> Database:
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            server_settings={"search_path": schema, "application_name": f"brandclub-{schema}"},
            command_timeout=30,
            connection_class=_PooledConnection,
        )
        return cls(pool, schema)

    async def close(self, grace_seconds: float = 5.0) -> None:
        """Close gracefully; connections still busy after `grace_seconds` are cut."""
        try:
            await asyncio.wait_for(self.pool.close(), grace_seconds)
        except TimeoutError:
            self.pool.terminate()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        async with self.pool.acquire() as conn:
            yield conn

    async def fetchrow(self, query: str, *args: Any) -> Record | None:
        return await self.pool.fetchrow(query, *args)

    async def fetch(self, query: str, *args: Any) -> list[Record]:
        return await self.pool.fetch(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.pool.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        return await self.pool.execute(query, *args)

    async def ping(self) -> None:
        """Raise unless PostgreSQL answers within a second, acquire and release included
        (a query timeout alone does not bound them: a hung server holds the release)."""
        async with asyncio.timeout(PING_TIMEOUT_SECONDS):
            await self.pool.fetchval("SELECT 1")
